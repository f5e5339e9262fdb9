"""Resources in the DAG. GPU requests: with ``device: cuda`` the rules that run networks
(feature extraction, the weak-label segmenter, neural training) declare ``gpu=1`` (what the
SLURM executor turns into a GPU request); with ``device: auto`` or ``cpu`` no job asks for one.
The SLURM profile's batches: the whole smoke DAG builds with it (no batch depends on itself)
and the per-slide and per-patient rules are batched."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("gpu")
    config = {"results": "results", "demo": {"preset": "smoke", "folder": "resources/demo"}}
    (workdir / "smoke.yaml").write_text(yaml.safe_dump(config))
    return workdir


def _dry_run(workdir: Path, *args: str) -> str:
    """The output of ``snakemake -n`` on the smoke cohort with ``args``."""
    res = subprocess.run(
        [
            SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(workdir / "smoke.yaml"), "-n", *args,
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _gpu_jobs(workdir: Path, device: str) -> dict[str, set[int]]:
    """Rule -> the gpu values its jobs declare in a dry run with ``device``."""
    out: dict[str, set[int]] = {}
    rule = None
    for line in _dry_run(workdir, "--config", f"device={device}").splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            out.setdefault(rule, set())
        m = re.search(r"resources: .*\bgpu=(\d+)", line)
        if m and rule:
            out[rule].add(int(m.group(1)))
    return out


def test_cuda_makes_the_network_rules_request_a_gpu(workdir):
    jobs = _gpu_jobs(workdir, "cuda")
    wanting = {rule for rule, values in jobs.items() if 1 in values}
    assert wanting == {"extract", "mri_segmenter", "train"}
    assert jobs["train"] == {0, 1}  # neural experiments only; the Cox and forest fits need none
    assert not jobs["tile"] - {0}


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_without_cuda_no_job_requests_a_gpu(workdir, device):
    jobs = _gpu_jobs(workdir, device)
    assert {"extract", "train"} <= set(jobs)
    assert all(values <= {0} for values in jobs.values()), jobs


def test_the_slurm_profile_batches_the_per_slide_and_per_patient_rules(workdir):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    profile = str(ROOT / "workflow" / "profiles" / "slurm")
    output = _dry_run(workdir, "--profile", profile)
    batches = re.findall(r"Group job (\w+) \(jobs", output)
    # smoke: 44 slides (one batch per rule), 34 radiomics patients, 31 DTI patients (2 x 20)
    assert sorted(batches) == sorted(
        ["wsi_tile", "wsi_extract", "mri_radiomics", "dti_patient", "dti_patient"]
    )
