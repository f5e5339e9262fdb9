"""Wall time of part of the smoke workflow run locally vs through a loopback SLURM cluster.

The same targets (cohort, splits, the clinical experiments ``--experiments`` with their
predictions and metrics, and the tiling of the first ``--slides`` slides) run three times in
fresh working folders: locally with ``--cores 2``; through ``--profile workflow/profiles/slurm``
on a one-node SLURM cluster on loopback (:mod:`mmsurv.slurm_loopback`, 2 CPUs) with the
profile's batches (``--batch`` slides per tiling job); and the same without batches (one SLURM
job per slide). The scheduler's overhead per SLURM job is (SLURM wall - local wall) / SLURM
jobs. Status polling is shortened to 2 s (the profile's 20 s is for a busy real cluster).

Usage: python benchmarks/slurm.py [--slides 12] [--batch 6] [--no-doc]   (as root, with
Debian's slurmctld slurmd slurm-client munge installed)
Writes the table to docs/benchmarks.md (section "Local vs SLURM").
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

from mmsurv.slurm_loopback import LoopbackSlurm, unavailable_reason

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
SECTION = "## Local vs SLURM"
POLL = [  # multi-value options first: the targets follow the last one
    "--resources", "batch_slot=1", "mem_mb=8000",
    "--slurm-init-seconds-before-status-checks", "2",
    "--seconds-between-status-checks", "2",
    "--latency-wait", "5",
    "--cores", "2",
]  # fmt: skip


def _workdir(root: Path, name: str) -> Path:
    work = root / name
    work.mkdir()
    config = {"results": "results", "demo": {"preset": "smoke", "folder": "resources/demo"}}
    (work / "smoke.yaml").write_text(yaml.safe_dump(config))
    return work


def _run(work: Path, targets: list[str], *args: str, env=None) -> tuple[float, str]:
    """Run snakemake on ``targets``; wall seconds and its output."""
    cmd = [
        "timeout", "-k", "10", "3600", SNAKEMAKE, "-s", str(ROOT / "Snakefile"),
        "--directory", str(work), "--configfile", str(work / "smoke.yaml"), *args, *targets,
    ]  # fmt: skip
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    return wall, res.stdout + res.stderr


def _targets(experiments: list[str]) -> list[str]:
    return ["results/cohort/cohort.tsv", *(f"results/metrics/{e}.tsv" for e in experiments)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=int, default=12)
    parser.add_argument("--batch", type=int, default=6)
    parser.add_argument(
        "--experiments", nargs="+", default=["clinical_small_coxph", "clinical_small_rsf"]
    )
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        sys.exit(f"cannot start a loopback SLURM cluster: {reason}")
    profile = str(ROOT / "workflow" / "profiles" / "slurm")
    with tempfile.TemporaryDirectory(prefix="mmsurv-slurm-bench-") as tmp:
        root = Path(tmp)
        local = _workdir(root, "local")
        base = _targets(args.experiments)
        _run(local, ["results/cohort/cohort.tsv"], "--cores", "2")  # writes the demo cohort
        slides = pd.read_csv(next((local / "resources").rglob("slides.tsv")), sep="\t")
        tiles = [f"results/wsi/tiles/{s}.h5" for s in slides["slide_id"].head(args.slides)]
        targets = [*base, *tiles]
        runs = {}
        local = _workdir(root, "local2")
        runs["local (--cores 2)"] = (*_run(local, targets, "--cores", "2"), None)
        # munged (user munge) must reach its socket folder: not under the private tmp folder
        with (
            tempfile.TemporaryDirectory(prefix="mmsurv-slurm-") as cluster_dir,
            LoopbackSlurm(cluster_dir, cpus=2, memory_mb=12000) as cluster,
        ):
            for name, batch in (
                (f"SLURM, {args.batch} slides per tiling job", args.batch),
                ("SLURM, one tiling job per slide", 1),
            ):
                extra = ["--profile", profile, "--group-components", f"wsi_tile={batch}", *POLL]
                work = _workdir(root, f"slurm{len(runs)}")
                wall, out = _run(work, targets, *extra, env=cluster.env)
                runs[name] = (wall, out, len(re.findall(r"submitted with SLURM jobid", out)))
    local_wall = runs["local (--cores 2)"][0]
    rows = []
    for name, (wall, out, n_sbatch) in runs.items():
        jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", out)
        n_jobs = jobs[-1][1] if jobs else "?"
        overhead = f"{(wall - local_wall) / n_sbatch:.1f}" if n_sbatch else ""
        rows.append(f"| {name} | {n_jobs} | {n_sbatch or ''} | {wall:.0f} | {overhead} |")
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            SECTION,
            "",
            f"`python benchmarks/slurm.py --slides {args.slides} --batch {args.batch}` on "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d')}: the smoke cohort's cohort, splits, "
            f"{', '.join(args.experiments)} (train, predictions, evaluate) and the tiling of "
            f"{args.slides} slides, each run in a fresh folder; SLURM is a one-node loopback "
            "cluster on the same 2 CPUs (status polled every 2 s). Overhead per SLURM job = "
            "(SLURM wall - local wall) / SLURM jobs.",
            "",
            "| run | Snakemake jobs | SLURM jobs | wall (s) | overhead per SLURM job (s) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Each SLURM job starts Snakemake twice (the batch script, then `srun` of the job "
            "step, which starts it again per job inside a batch), on top of sbatch, the "
            "scheduler's start and the status polls. Batching removes the sbatch/queue part; "
            "the plugin still runs a batch's jobs one after another, each with its own "
            "Snakemake start.",
            "",
        ]
    )
    if not args.no_doc:
        replace_section(SECTION, table)


if __name__ == "__main__":
    main()
