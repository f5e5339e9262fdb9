"""The SLURM profile against a real scheduler: a one-node SLURM cluster on loopback runs part of
the smoke workflow (cohort, splits, a clinical Cox experiment, the tiling of 6 slides) through
``--profile workflow/profiles/slurm``; its jobs must go through sbatch, the per-slide rules must
be batched (and sized for the plugin's one-after-another batches), and the results must equal
a local run's.

Skipped, with the reason, where the cluster cannot start (not root, Debian's ``slurmctld slurmd
slurm-client munge`` or the executor plugin not installed): install.sh installs them where it
can.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from mmsurv.slurm_loopback import SYSTEM_CONF, LoopbackSlurm, is_running, unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
#: The part of the smoke workflow run twice: the cohort, the splits, a clinical Cox experiment
#: (train, predictions, evaluate) and the tiling of N_SLIDES slides in batches of BATCH.
TARGETS = ["results/cohort/cohort.tsv", "results/metrics/clinical_small_coxph.tsv"]
N_SLIDES, BATCH = 6, 3
TILE_RUNTIME_MIN = 5  # the profile's per-slide tiling runtime; a batch asks for the sum
#: Outputs compared between the local and the SLURM run.
COMPARED = [
    "results/cohort/cohort.tsv",
    "results/splits/os.tsv",
    "results/predictions/clinical_small_coxph.tsv",
    "results/metrics/clinical_small_coxph.tsv",
]
#: Settings of the test cluster that differ from a site's: 2 CPUs, short polls, small batches.
CLUSTER_ARGS = [
    "--cores", "2",
    "--resources", "batch_slot=1", "mem_mb=8000",
    "--group-components", f"wsi_tile={BATCH}",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--latency-wait", "5",
]  # fmt: skip

REASON = unavailable_reason()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(REASON is not None, reason=f"no loopback SLURM: {REASON}"),
]


def _workdir(root: Path, name: str) -> Path:
    workdir = root / name
    workdir.mkdir()
    (workdir / "smoke.yaml").write_text(
        yaml.safe_dump(
            {"results": "results", "demo": {"preset": "smoke", "folder": "resources/demo"}}
        )
    )
    return workdir


def _snakemake(workdir: Path, targets: list[str], *args: str, env=None, timeout: int = 900):
    cmd = [
        "timeout", "-k", "10", str(timeout),  # the plugin can hang past SIGTERM (notes/slurm.md)
        SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "smoke.yaml"), *args, *targets,
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-6000:]
    return res


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The local workdir, the SLURM workdir, the SLURM run's output, the cluster's jobs (as
    squeue lists them at the end), the daemons' pids and the tiled slides."""
    root = tmp_path_factory.mktemp("slurm")
    local = _workdir(root, "local")
    _snakemake(local, TARGETS, "--cores", "2")
    slides = pd.read_csv(next((local / "resources").rglob("slides.tsv")), sep="\t")
    tiles = [f"results/wsi/tiles/{s}.h5" for s in slides["slide_id"].head(N_SLIDES)]
    _snakemake(local, tiles, "--cores", "2")
    remote = _workdir(root, "slurm")
    # munged wants a world-traversable socket folder: not under pytest's private tmp
    with tempfile.TemporaryDirectory(prefix="mmsurv-slurm-", ignore_cleanup_errors=True) as folder:
        cluster = LoopbackSlurm(folder, cpus=2, memory_mb=12000)
        with cluster:
            pids = dict(cluster.pids)
            profile = str(ROOT / "workflow" / "profiles" / "slurm")
            res = _snakemake(
                remote, [*TARGETS, *tiles], "--profile", profile, *CLUSTER_ARGS, env=cluster.env
            )
            jobs = cluster.jobs()
    return local, remote, res.stdout + res.stderr, jobs, pids, tiles


def _submitted(output: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", output)


def test_jobs_went_through_sbatch(runs):
    _, remote, output, jobs, *_ = runs
    ids = _submitted(output)
    assert ids, output[-3000:]
    assert all(jobs[i]["state"] == "COMPLETED" for i in ids), (ids, jobs)
    logs = {p.stem for p in (remote / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert set(ids) <= logs  # every job's SLURM log is kept, named by its job id


def test_per_slide_jobs_are_batched_and_sized_for_running_in_series(runs):
    _, remote, output, jobs, _, tiles = runs
    batch_logs = list((remote / ".snakemake" / "slurm_logs").glob("group_wsi_tile*/**/*.log"))
    assert len(batch_logs) == N_SLIDES // BATCH
    for log in batch_logs:
        job = jobs[log.stem]
        # the plugin runs a batch's jobs one after another: one job's memory and CPU, the
        # sum of the runtimes
        assert job["time_limit"] == f"{BATCH * TILE_RUNTIME_MIN}:00", job
        assert job["min_memory"] == "4000M" and job["cpus"] == "1", job
    # cohort, 2 splits, the tiling batches, train, predictions, evaluate
    assert len(_submitted(output)) == 6 + N_SLIDES // BATCH
    assert all((remote / t).is_file() for t in tiles)


def _datasets(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.update({name: obj[()]}) if hasattr(obj, "shape") else 0)
    return out


def test_results_equal_a_local_run(runs):
    local, remote, *_, tiles = runs
    for rel in COMPARED:
        a = pd.read_csv(local / rel, sep="\t")
        b = pd.read_csv(remote / rel, sep="\t")
        pd.testing.assert_frame_equal(a, b, obj=rel)
    for rel in tiles:  # what the batches wrote: the same tile grid as locally
        a, b = _datasets(local / rel), _datasets(remote / rel)
        assert a.keys() == b.keys() and a, rel
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{rel}:{name}")


def test_rule_logs_are_written_under_slurm(runs):
    _, remote, *_ = runs
    tile_logs = list((remote / "results" / "logs" / "wsi").rglob("*.log"))
    assert len(tile_logs) == N_SLIDES and all(p.stat().st_size > 0 for p in tile_logs)


def test_exactly_the_started_daemons_are_stopped(runs):
    pids = runs[4]
    assert set(pids) == {"munged", "slurmctld", "slurmd"}
    for name, pid in pids.items():
        assert not is_running(pid), f"{name} (pid {pid}) still runs"
    assert not SYSTEM_CONF.exists()  # the cluster's /etc/slurm/slurm.conf is removed
