"""How fast Snakemake builds the mmsurv DAG for large cohorts (no job runs, placeholder files).

Usage: python benchmarks/dag_scale.py [--slides 500 2000 5000] [--slides-per-patient 4]
       [--touch snakemake|mtime] [--repeats 1] [--profile 2000] [--no-doc]

For each size a synthetic cohort is written to a temporary folder: ``samples.tsv`` (the smoke
demo's columns, endpoints, clinical variables and labels), ``slides.tsv`` and a zero-byte
``.svs`` file per slide (a dry run never opens them); no MRI, DTI, RNA or SCNA, so only the
clinical and WSI experiments are in the DAG. Timed, with the workflow's own Snakefile:
``snakemake --list-rules`` (parsing alone), ``snakemake -n`` and ``snakemake -n --quiet``
(full DAG, nothing exists), and, once every output exists and is up to date, ``snakemake -n``
and ``snakemake --cores 2`` (both must find nothing to do; if a job is still planned, its
reasons are printed). ``--repeats R`` keeps the best of R runs of each timing. ``--profile N``
also runs the dry run of N slides under cProfile, prints the top functions by cumulative time
and adds where the time goes to the doc.
Writes the table to docs/benchmarks.md (section "DAG build time for large cohorts").
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import os
import platform
import pstats
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import yaml
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

from mmsurv.demo.clinical import SAMPLE_COLUMNS
from mmsurv.demo.generate import ID_PATTERN, SHEET_KEYS

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## DAG build time for large cohorts"
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


@dataclass
class Result:
    """Seconds and job counts of one cohort size."""

    slides: int
    patients: int
    load: float
    parse_s: float
    dry_s: float
    dry_quiet_s: float
    jobs: int
    touch_s: float
    noop_dry_s: float
    noop_dry_jobs: int
    noop_run_s: float
    noop_run_jobs: int


def patient_ids(n: int) -> list[str]:
    """``n`` TCGA-style patient ids (``TCGA-D0-0001``...), as the demo writes them."""
    if n > 9999:
        raise ValueError("at most 9999 patients (4-digit TCGA ids)")
    return [f"TCGA-D0-{i:04d}" for i in range(1, n + 1)]


def write_tsv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    """A tab-separated sheet; ``None`` is an empty cell."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh, delimiter="\t", lineterminator="\n")
        out.writerow(header)
        out.writerows([["" if v is None else v for v in row] for row in rows])


def samples_rows(patients: list[str], seed: int) -> list[list[object]]:
    """Plausible clinical rows (values only need to be valid: nothing is trained here)."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in patients:
        os_days = int(rng.integers(30, 3000))
        pfs_days = int(rng.integers(10, os_days + 1))
        idh, codel = int(rng.integers(2)), int(rng.integers(2))
        subtype = "IDHwt" if not idh else ("IDHmut-codel" if codel else "IDHmut-non-codel")
        rows.append(
            [
                pid,
                os_days,
                int(rng.integers(2)),
                pfs_days,
                int(rng.integers(2)),
                int(rng.integers(20, 85)),
                int(rng.choice([60, 70, 80, 90, 100])),
                rng.choice(["F", "M"]),
                rng.choice(["G2", "G3", "G4"]),
                rng.choice(["GTR", "STR", "biopsy"]),
                rng.choice(["yes", "no"]),
                rng.choice(["yes", "no"]),
                idh,
                codel if idh else 0,
                subtype,
            ]
        )
    return rows


def write_cohort(folder: Path, n_slides: int, per_patient: int, seed: int = 0) -> Path:
    """Sheets, zero-byte slides and the config of a cohort of ``n_slides``; returns the config."""
    patients = patient_ids(-(-n_slides // per_patient))
    header = list(SAMPLE_COLUMNS)
    write_tsv(folder / "samples.tsv", header, samples_rows(patients, seed))
    (folder / "slides").mkdir()
    slides = []
    for i in range(n_slides):
        pid = patients[i // per_patient]
        slide_id = f"{pid}-01Z-00-DX{i % per_patient + 1}"
        path = f"slides/{slide_id}.svs"
        (folder / path).touch()
        slides.append([slide_id, pid, path, 0.25])
    write_tsv(folder / "slides.tsv", ["slide_id", "patient_id", "path", "mpp"], slides)
    config = {
        "cohort": {
            "samples": str(folder / "samples.tsv"),
            "slides": str(folder / "slides.tsv"),
            "id_pattern": ID_PATTERN,
        },
        **SHEET_KEYS,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_cmd(folder: Path, *args: str) -> list[str]:
    """The venv's snakemake on this repository's Snakefile, working in ``folder``."""
    return [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(folder / "config.yaml"),
        *args,
    ]


def snakemake(folder: Path, *args: str) -> tuple[float, str]:
    """Run snakemake; returns wall seconds and stdout + stderr (exits on failure)."""
    start = time.perf_counter()
    res = subprocess.run(snakemake_cmd(folder, *args), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode:
        sys.exit(f"snakemake {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return seconds, res.stdout + res.stderr


def job_total(output: str) -> int:
    """Jobs planned, from the ``total N`` line of the job stats (0: nothing to be done)."""
    found = re.findall(r"^total\s+(\d+)", output, flags=re.MULTILINE)
    if found:
        return int(found[-1])
    if "Nothing to be done" in output:
        return 0
    raise ValueError(f"no job stats in snakemake output:\n{output[-2000:]}")


def summary_outputs(folder: Path) -> list[tuple[str, str]]:
    """Every output file of the DAG with its rule, from ``snakemake --summary``."""
    _, text = snakemake(folder, "--summary")
    lines = [line.split("\t") for line in text.splitlines() if "\t" in line]
    header = lines[0]
    file_col, rule_col = header.index("output_file"), header.index("rule")
    return [(row[file_col], row[rule_col]) for row in lines[1:] if len(row) > rule_col]


def rule_depths(folder: Path) -> dict[str, int]:
    """Depth of every rule in the rule graph (0: no upstream rule), from ``--rulegraph``."""
    _, text = snakemake(folder, "--rulegraph")
    names = dict(re.findall(r'^\s*(\d+)\[label = "([^"]+)"', text, flags=re.MULTILINE))
    edges = re.findall(r"^\s*(\d+) -> (\d+)", text, flags=re.MULTILINE)
    depth = dict.fromkeys(names, 0)
    for _ in names:  # longest path by relaxation; the rule graph is small
        for src, dst in edges:
            depth[dst] = max(depth[dst], depth[src] + 1)
    return {names[n]: d for n, d in depth.items()}


def make_up_to_date(folder: Path, how: str) -> float:
    """Create every output as an empty file and order the mtimes along the DAG.

    ``snakemake``: ``snakemake --touch --cores 1`` (Snakemake's own touch; it sleeps 0.1 s
    per job it has to touch); ``mtime``: set each file's mtime to its rule's depth in the rule
    graph (every job of a rule is at the same depth in this workflow). Returns the seconds.
    """
    start = time.perf_counter()
    files = summary_outputs(folder)
    for name, _ in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    if how == "snakemake":
        snakemake(folder, "--touch", "--cores", "1")
    else:
        depths = rule_depths(folder)
        base = time.time() + 1
        for name, rule in files:
            stamp = base + depths[rule]
            os.utime(folder / name, (stamp, stamp))
    return time.perf_counter() - start


def report_reasons(output: str, label: str) -> None:
    """Print the jobs a no-op run still wants to run, with Snakemake's reasons."""
    reasons = re.findall(r"^\s*reason: (.+)$", output, flags=re.MULTILINE)
    print(f"  {label}: jobs still planned; reasons (first 10 of {len(reasons)}):")
    for reason in reasons[:10]:
        print(f"    {reason}")
    print(output[-3000:])


def best_of(repeats: int, folder: Path, *args: str) -> tuple[float, str]:
    """The fastest of ``repeats`` runs of snakemake with ``args``, and its output."""
    return min((snakemake(folder, *args) for _ in range(repeats)), key=lambda r: r[0])


def measure(n_slides: int, per_patient: int, touch: str, repeats: int) -> Result:
    """Parse, dry-run, and no-op times of one cohort size (each the best of ``repeats``)."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="mmsurv-dag-") as tmp:
        folder = Path(tmp)
        write_cohort(folder, n_slides, per_patient)
        parse_s, _ = best_of(repeats, folder, "--list-rules")
        dry_s, dry = best_of(repeats, folder, "-n")
        dry_quiet_s, _ = best_of(repeats, folder, "-n", "--quiet")
        touch_s = make_up_to_date(folder, touch)
        noop_dry_s, noop_dry = best_of(repeats, folder, "-n")
        noop_run_s, noop_run = best_of(repeats, folder, "--cores", "2")
        planned, ran = job_total(noop_dry), job_total(noop_run)
        if planned:
            report_reasons(noop_dry, f"{n_slides} slides, snakemake -n after {touch}")
        if ran:
            report_reasons(noop_run, f"{n_slides} slides, snakemake --cores 2 after {touch}")
        return Result(
            slides=n_slides,
            patients=-(-n_slides // per_patient),
            load=load,
            parse_s=parse_s,
            dry_s=dry_s,
            dry_quiet_s=dry_quiet_s,
            jobs=job_total(dry),
            touch_s=touch_s,
            noop_dry_s=noop_dry_s,
            noop_dry_jobs=planned,
            noop_run_s=noop_run_s,
            noop_run_jobs=ran,
        )


#: Where a dry run's time goes: label -> (file suffix, function) whose cumulative time is shown.
PHASES = {
    "whole dry run (`snakemake.cli.main`)": ("snakemake/cli.py", "main"),
    "parsing the Snakefile and its includes": ("/Snakefile", "<module>"),
    "config validation (`mmsurv/config.py` `validate_config`)": (
        "mmsurv/config.py",
        "validate_config",
    ),
    "model modules imported to check `params` (`registry.py` `tunable_parameters`)": (
        "models/registry.py",
        "tunable_parameters",
    ),
    "DAG build (`snakemake/dag.py` `DAG.init`)": ("snakemake/dag.py", "init"),
    "job `params` of every job (`snakemake/rules.py` `expand_params`)": (
        "snakemake/rules.py",
        "expand_params",
    ),
    "input functions of every job (`snakemake/rules.py` `apply_input_function`)": (
        "snakemake/rules.py",
        "apply_input_function",
    ),
    "`slide_params` (`common.smk`, `SLIDES.loc` per job)": ("rules/common.smk", "slide_params"),
    "`slide_input` (`common.smk`, one `stat` per job)": ("rules/common.smk", "slide_input"),
    "`slides_table` (`mmsurv/plan.py`, sheet read once)": ("mmsurv/plan.py", "slides_table"),
}


def profile_dry_run(n_slides: int, per_patient: int) -> pstats.Stats:
    """cProfile of ``snakemake -n --quiet`` of ``n_slides`` run in this process."""
    from snakemake.cli import main as snakemake_main

    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="mmsurv-dag-prof-") as tmp:
        folder = Path(tmp)
        write_cohort(folder, n_slides, per_patient)
        argv = sys.argv
        sys.argv = [str(SNAKEMAKE), *snakemake_cmd(folder, "-n", "--quiet")[1:]]
        try:
            profiler.runcall(snakemake_main)
        except SystemExit:
            pass
        finally:
            sys.argv = argv
    return pstats.Stats(profiler)


def phase_seconds(stats: pstats.Stats) -> dict[str, tuple[int, float]]:
    """Calls and cumulative seconds of each function of ``PHASES`` in a profile."""
    found = {}
    for label, (suffix, func) in PHASES.items():
        hits = [
            (calls, cumulative)
            for (file, _, name), (_, calls, _, cumulative, _) in stats.stats.items()
            if file.endswith(suffix) and name == func
        ]
        if hits:
            found[label] = (sum(h[0] for h in hits), sum(h[1] for h in hits))
    return found


def row(r: Result) -> str:
    """One table row."""
    return (
        f"| {r.slides} | {r.patients} | {r.load:.1f} | {r.parse_s:.1f} | {r.dry_s:.1f} | "
        f"{r.dry_quiet_s:.1f} | {r.jobs} | "
        f"{r.touch_s:.0f} | {r.noop_dry_s:.1f} | {r.noop_dry_jobs} | {r.noop_run_s:.1f} | "
        f"{r.noop_run_jobs} |"
    )


def git_head() -> str:
    """The short commit of this repository's HEAD (read only)."""
    res = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return res.stdout.strip() or "unknown"


def command(args: argparse.Namespace) -> str:
    """The command line that produced the section."""
    sizes = " ".join(str(n) for n in args.slides)
    profile = f" --profile {args.profile}" if args.profile else ""
    return (
        f"python benchmarks/dag_scale.py --slides {sizes} --slides-per-patient "
        f"{args.slides_per_patient} --touch {args.touch} --repeats {args.repeats}{profile}"
    )


def profile_lines(n_slides: int, phases: dict[str, tuple[int, float]]) -> list[str]:
    """The profile table of the section."""
    return [
        f"Where the dry run of {n_slides} slides spends its time (`--profile {n_slides}`: "
        "`snakemake -n --quiet` under cProfile in one process; the profiler's overhead makes "
        "the seconds larger than unprofiled; cumulative, so a row includes the rows nested "
        "in it):",
        "",
        "| part | calls | cumulative (s) |",
        "|---|---|---|",
        *[f"| {label} | {calls} | {secs:.2f} |" for label, (calls, secs) in phases.items()],
        "",
    ]


def method_text(args: argparse.Namespace) -> str:
    """The paragraph saying what was run and measured."""
    touch = (
        "`snakemake --touch --cores 1`"
        if args.touch == "snakemake"
        else "each file's mtime set to its rule's depth in `--rulegraph`"
    )
    return " ".join(
        [
            f"`{command(args)}` on {platform.processor() or platform.machine()},",
            f"{os.cpu_count()} CPUs, Python {platform.python_version()},",
            f"Snakemake {version('snakemake')}, workflow at commit {git_head()} (with the",
            f"working tree's changes), {time.strftime('%Y-%m-%d')}. Other jobs shared the",
            "2-core machine (*load*: the 1-minute load average when a size started), so",
            "the seconds are upper bounds (each the best of the repeats).",
            "Cohort: synthetic sheets in the demo's format (`samples.tsv` with the smoke",
            "demo's endpoints, clinical variables and labels; `slides.tsv`) and a zero-byte",
            "`.svs` per slide, never opened; no MRI, DTI, RNA or SCNA, so the DAG holds the",
            "clinical and WSI experiments (4 clinical models and `wsi_abmil`).",
            "*Parse*: `snakemake --list-rules` (the Snakefile alone, no DAG);",
            "*dry run*: `snakemake -n` with nothing built (the whole DAG, default target;",
            "it also prints every job); *quiet*: `snakemake -n --quiet` (the same DAG,",
            "nothing printed); then every output of `snakemake --summary` was created empty",
            f"and its mtime ordered along the DAG (`--touch {args.touch}`: {touch});",
            "*no-op*: `snakemake -n` and `snakemake --cores 2` once more, which must plan",
            "and run 0 jobs. Snakemake keeps provenance records (`.snakemake/metadata`) only",
            "for the jobs `--touch` touched (not those whose empty outputs were already newer",
            "than their inputs), so this no-op reads fewer records than one after a real run",
            "would (one small JSON file per output, to compare params, code and inputs).",
        ]
    )


def table(
    results: list[Result],
    args: argparse.Namespace,
    phases: dict[str, tuple[int, float]],
) -> str:
    """The docs/benchmarks.md section."""
    return "\n".join(
        [
            SECTION,
            "",
            method_text(args),
            "",
            "| slides | patients | load | parse (s) | dry run (s) | dry run, quiet (s) | jobs | "
            "make up to date (s) | no-op dry run (s) | jobs planned | no-op run (s) | "
            "jobs run |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *[row(r) for r in results],
            "",
            *(profile_lines(args.profile, phases) if phases else []),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slides", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--slides-per-patient", type=int, default=4)
    parser.add_argument("--touch", choices=["snakemake", "mtime"], default="snakemake")
    parser.add_argument("--profile", type=int, default=0, help="profile the dry run of N slides")
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs per timing")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    results = []
    for n in args.slides:
        results.append(measure(n, args.slides_per_patient, args.touch, args.repeats))
        print(row(results[-1]), flush=True)
    phases = {}
    if args.profile:
        stats = profile_dry_run(args.profile, args.slides_per_patient)
        stats.sort_stats("cumulative").print_stats(25)
        phases = phase_seconds(stats)
    section = table(results, args, phases)
    print(section)
    if not args.no_doc:
        replace_section(SECTION, section)


if __name__ == "__main__":
    main()
