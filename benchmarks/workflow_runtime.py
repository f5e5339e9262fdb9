"""Wall time of the whole workflow on the demo presets (cold: cohort generation included).

Usage: python benchmarks/workflow_runtime.py [--presets smoke demo] [--cores 2]
Writes the table to docs/benchmarks.md (section "Workflow run time"), replacing an older one.
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

import yaml
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Workflow run time"


def stage_times(results: Path) -> dict[str, tuple[int, float]]:
    """Jobs and summed job seconds per rule from a run's ``benchmark:`` files.

    ``results/benchmarks/{stage}/...`` (train) or ``results/benchmarks/wsi/{rule}/...``.
    """
    out: dict[str, list[float]] = {}
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        parts = tsv.relative_to(results / "benchmarks").parts
        rule = "/".join(parts[:2]) if parts[0] == "wsi" else parts[0]
        seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
        out.setdefault(rule, []).append(seconds)
    return {rule: (len(v), sum(v)) for rule, v in out.items()}


def _run(preset: str, cores: int) -> tuple[float, float, int, dict[str, tuple[int, float]]]:
    """Cold run (cohort written by the workflow) then a no-op rerun; returns seconds, jobs and
    the per-rule job times."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "bench.yaml").write_text(yaml.safe_dump({"demo": {"preset": preset}}))
        cmd = [
            str(Path(sys.executable).parent / "snakemake"),
            "-s",
            str(ROOT / "Snakefile"),
            "--directory",
            str(work),
            "--configfile",
            str(work / "bench.yaml"),
            "--cores",
            str(cores),
        ]
        start = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        cold = time.perf_counter() - start
        jobs = int(re.findall(r"(\d+) of \d+ steps \(100%\) done", res.stderr)[-1])
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        noop = time.perf_counter() - start
        stages = stage_times(work / "results")
    return cold, noop, jobs, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["smoke", "demo"])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    rows, stage_rows = [], []
    for preset in args.presets:
        cold, noop, jobs, stages = _run(preset, args.cores)
        rows.append(f"| {preset} | {args.cores} | {jobs} | {cold:.0f} | {noop:.1f} |")
        print(rows[-1], flush=True)
        for rule, (n, total) in stages.items():
            stage_rows.append(f"| {preset} | {rule} | {n} | {total:.0f} | {total / n:.1f} |")
    table = "\n".join(
        [
            SECTION,
            "",
            f"`python benchmarks/workflow_runtime.py --cores {args.cores}` on "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{time.strftime('%Y-%m-%d')}. Cold run: the demo cohort is written by the "
            "workflow, then every job runs; no-op: the same command again (nothing to do).",
            "",
            "| preset | cores | jobs | cold run (s) | no-op rerun (s) |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Job time per rule (from the rules' `benchmark:` files; jobs run in parallel, so the "
            "sum exceeds the wall time; a per-slide job's seconds are mostly Python, torch and "
            "MONAI start-up):",
            "",
            "| preset | rule | jobs | summed job time (s) | per job (s) |",
            "|---|---|---|---|---|",
            *stage_rows,
            "",
        ]
    )
    replace_section(SECTION, table)


if __name__ == "__main__":
    main()
