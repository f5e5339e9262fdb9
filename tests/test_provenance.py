"""The reproducibility record: package versions, git commit, seeds, config and record files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mmsurv.config import validate_config
from mmsurv.provenance import (
    INVOCATION_ENV,
    PACKAGES,
    config_digest,
    describe_invocation,
    git_commit,
    git_revision,
    invocation_from_env,
    package_versions,
    seeds,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit of one file."""
    folder = tmp_path / "repo"
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / "a.txt").write_text("a\n")
    _git(folder, "add", "a.txt")
    _git(folder, "commit", "-q", "-m", "first")
    return folder


@pytest.mark.parametrize(
    ("name", "installed"),
    [("numpy", True), ("pandas", True), ("mmsurv", True), ("no-such-package-xyz", False)],
)
def test_package_versions_of_installed_and_missing_packages(name, installed):
    found = package_versions([name])[name]
    assert (found != "not installed") is installed
    if installed:
        assert found[0].isdigit()


def test_packages_cover_the_pinned_requirements():
    pinned = {
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line.split("#")[0]
    }
    dev_tools = {"snakefmt", "ruff", "pytest", "tqdm"}
    assert pinned - dev_tools <= {p.lower() for p in PACKAGES}
    assert {"torch", "pyradiomics", "mmsurv"} <= set(PACKAGES)


@needs_git
def test_git_commit_of_a_repository_clean_then_dirty(repo):
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    info = git_commit(repo)
    assert info == {
        "commit": head,
        "short": head[:12],
        "dirty": False,
        "changes": [],
        "untracked": 0,
    }
    assert git_revision(repo) == head
    (repo / "new.txt").write_text("untracked\n")
    assert git_commit(repo)["untracked"] == 1 and not git_commit(repo)["dirty"]
    (repo / "a.txt").write_text("changed\n")
    info = git_commit(repo)
    assert info["dirty"] is True and info["changes"] == [" M a.txt"]
    assert git_revision(repo) == f"{head}-dirty"
    sub = repo / "sub"
    sub.mkdir()
    assert git_commit(sub)["commit"] == head  # any folder of the checkout


@needs_git
def test_git_commit_of_a_folder_outside_any_repository(tmp_path, monkeypatch):
    folder = tmp_path / "plain"
    folder.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # git stops looking upwards
    info = git_commit(folder)
    assert info["commit"] == "unknown" and info["reason"]
    assert git_revision(folder) == "unknown"


def test_git_commit_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on the path
    assert git_commit(tmp_path) == {"commit": "unknown", "reason": "git is not installed"}
    assert git_revision(tmp_path) == "unknown"


@pytest.mark.parametrize(
    ("splits", "training"),
    [
        ({"method": "holdout"}, {"fold0": 7}),
        ({"method": "kfold", "folds": 3}, {"fold0": 7, "fold1": 8, "fold2": 9}),
    ],
)
def test_seeds_of_a_config(config, splits, training):
    cfg = {**config, "seed": 7, "splits": {**config["splits"], **splits}}
    found = seeds(cfg)
    assert found["seed"] == 7 and found["splits"] == 7 and found["training"] == training
    assert "demo_cohort" not in found  # the cohort is not the demo's


def test_seeds_list_nested_seed_keys_and_the_demo_cohort(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = tmp_path / "resources/demo/smoke-seed3"
    cfg = {
        "seed": 3,
        "demo": {"preset": "smoke", "folder": "resources/demo"},
        "cohort": {"samples": str(demo / "samples.tsv")},
        "splits": {"method": "holdout"},
        "experiments": {"x": {"params": {"seed": 11}}},
        "wsi": {"sampling_seed": 5},
    }
    found = seeds(cfg)
    assert found["demo_cohort"] == 3 and found["training"] == {"fold0": 3}
    assert found["experiments.x.params.seed"] == 11 and found["wsi.sampling_seed"] == 5


def test_invocation_is_handed_over_through_the_environment():
    call = describe_invocation(["snakemake", "--cores", "2"], ["config/config.yaml"], "/w")
    assert call == {"command": "snakemake --cores 2", "configfiles": ["config/config.yaml"],
                    "workdir": "/w"}  # fmt: skip
    assert invocation_from_env({INVOCATION_ENV: json.dumps(call)}) == call
    assert invocation_from_env({}) is None
    assert invocation_from_env({INVOCATION_ENV: "not json"}) is None


def test_config_digest_ignores_key_order():
    assert config_digest({"a": 1, "b": [1, 2]}) == config_digest({"b": [1, 2], "a": 1})
    assert config_digest({"a": 1}) != config_digest({"a": 2})


def test_write_record_round_trip(config, tmp_path):
    out_config, out_json = tmp_path / "run/config.yaml", tmp_path / "run/record.json"
    call = describe_invocation(["snakemake", "-n"], [], tmp_path)
    returned = write_record(config, ROOT, out_config, out_json, invocation=call)
    assert yaml.safe_load(out_config.read_text()) == config  # the config actually used
    assert validate_config(yaml.safe_load(out_config.read_text())) == config  # usable as is
    record = json.loads(out_json.read_text())
    assert record == returned
    keys = {"created", "mmsurv", "python", "platform", "hostname", "git", "packages", "seeds"}
    assert keys | {"device", "invocation", "config", "config_sha256"} <= set(record)
    assert record["created"].endswith("+00:00")  # UTC
    assert record["config"] == str(out_config)
    assert record["config_sha256"] == config_digest(config)
    assert record["seeds"]["seed"] == config["seed"]
    assert record["device"]["requested"] == config["device"]
    assert set(record["packages"]) == set(PACKAGES)
    assert record["invocation"]["command"] == "snakemake -n"
    assert record["git"]["commit"] == "unknown" or len(record["git"]["commit"]) == 40
    assert not list(out_json.parent.glob(".*.tmp"))  # atomic writes leave no temporary file
    write_record(config, ROOT, out_config, out_json)
    assert "invocation" not in json.loads(out_json.read_text())  # omitted when unknown
