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

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Workflow run time"


def _run(preset: str, cores: int) -> tuple[float, float, int]:
    """Cold run (cohort written by the workflow) then a no-op rerun; returns seconds and jobs."""
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
    return cold, noop, jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["smoke", "demo"])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        cold, noop, jobs = _run(preset, args.cores)
        rows.append(f"| {preset} | {args.cores} | {jobs} | {cold:.0f} | {noop:.1f} |")
        print(rows[-1], flush=True)
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
        ]
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if SECTION in text:
        head, _, tail = text.partition(SECTION)
        nxt = tail.find("\n## ")
        text = head + table + (tail[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + table
    DOC.write_text(text)


if __name__ == "__main__":
    main()
