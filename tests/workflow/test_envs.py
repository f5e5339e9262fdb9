"""Conda envs parse and pin the same versions as the pip install (checked statically: conda
channels are not reachable from the machines this is developed on)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENVS = sorted((ROOT / "workflow" / "envs").glob("*.yaml"))
#: conda package name -> pip distribution name, where they differ
CONDA_TO_PIP = {"matplotlib-base": "matplotlib", "pytorch": "torch"}


def _pip_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.lower()] = version
    # torch (a local CPU wheel) and pyradiomics (built without isolation) are installed first
    # by install.sh, not from requirements.txt
    install = (ROOT / "install.sh").read_text()
    for name in ("torch", "pyradiomics"):
        pins[name] = re.search(rf'"{name}==([0-9.]+)"', install).group(1)
    return pins


def test_envs_exist():
    assert ENVS


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_env_is_pinned_like_requirements(env):
    spec = yaml.safe_load(env.read_text())
    assert "nodefaults" in spec["channels"]
    pins = _pip_pins()
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for req in dep.get("pip", []):
                if "==" in req:
                    name, version = req.split("==")
                    assert pins.get(name.lower()) == version, f"{env.name}: {req}"
            continue
        if dep == "pip":
            continue
        name, _, version = dep.partition("=")
        assert re.fullmatch(r"[0-9][0-9.]*", version), f"{env.name}: {dep} is not pinned"
        if name == "python":
            assert version == "3.11"
            continue
        pip_name = CONDA_TO_PIP.get(name, name).lower()
        assert pins.get(pip_name) == version, f"{env.name}: {dep} vs requirements.txt"


def test_every_rule_names_an_existing_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for rel in re.findall(r'conda:\n\s+"([^"]+)"', smk.read_text()):
            assert (smk.parent / rel).resolve().is_file(), f"{smk.name}: {rel}"


def test_every_rule_that_runs_code_names_an_env():
    """Each rule with a script, shell or run block declares its conda env (only the target
    rule ``all`` runs nothing)."""
    rules = {}
    for smk in [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]:
        for block in re.split(r"\n(?=rule |checkpoint )", "\n" + smk.read_text()):
            m = re.match(r"\s*(?:rule|checkpoint) (\w+):", block)
            if m:
                rules[m.group(1)] = block
    assert len(rules) > 20
    runs_code = {name for name, b in rules.items() if re.search(r"\n\s+(script|shell|run):", b)}
    assert set(rules) - runs_code == {"all"}
    missing = sorted(name for name in runs_code if "\n    conda:" not in rules[name])
    assert not missing, f"rules without conda: {missing}"
