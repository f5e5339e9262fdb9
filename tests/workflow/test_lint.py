"""Style gates that are part of the test command: ruff, snakefmt and snakemake --lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, encoding="utf-8", timeout=300
    )


def test_ruff_check_and_format():
    check = _run(str(BIN / "ruff"), "check", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_snakefmt_check():
    res = _run(str(BIN / "snakefmt"), "--check", "Snakefile", "workflow/rules")
    assert res.returncode == 0, res.stdout + res.stderr


def test_snakemake_lint(config, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**config, "results": str(tmp_path / "results")}))
    res = _run(
        str(BIN / "snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--lint",
        "--configfile",
        str(cfg),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_rule_has_a_log_and_a_conda_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in text.split("\nrule ")[1:]:
            name = block.split(":")[0]
            assert "\n    log:" in block, f"{smk.name}: rule {name} has no log"
            assert "\n    conda:" in block, f"{smk.name}: rule {name} has no conda env"
