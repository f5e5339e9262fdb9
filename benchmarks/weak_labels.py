"""Quality of the weak tumour masks: Dice against the masks the demo cohort withheld.

The demo cohort lists no mask for a quarter of its scans but still writes it as
``images/{patient}/mask_withheld.nii.gz`` (no stage reads it). After a run, this script puts
each withheld mask on the patient's preprocessed grid (the same reorientation and nearest
resampling as a real mask) and compares it with the weak mask the workflow produced
(``results/mri/preprocessed/{patient}/mask.nii.gz`` of a ``weak_network`` record): Dice of the
whole tumour (labels 1, 2, 4 vs background), per patient, and the segmenter's own held-out Dice
on masked scans (``results/mri/weak/segmenter.json``).

Usage: python benchmarks/weak_labels.py --workdir DIR [--demo resources/demo/demo-seed0]
       [--no-doc]
Writes the table to docs/benchmarks.md (section "Weak tumour masks"), replacing an older one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

from mmsurv.mri.io import read_mask
from mmsurv.mri.preprocess import reorient, resample_to

SECTION = "## Weak tumour masks"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean arrays (NaN when both are empty)."""
    total = a.sum() + b.sum()
    return float(2 * (a & b).sum() / total) if total else float("nan")


def score(workdir: Path, demo: Path) -> tuple[list[tuple[str, float, int, int]], dict]:
    """(patient, Dice, weak voxels, true voxels) per weak-labelled patient, and the segmenter's
    training log."""
    results = workdir / "results"
    rows = []
    for record_path in sorted((results / "mri/preprocessed").glob("*/preprocess.json")):
        record = json.loads(record_path.read_text())
        if record.get("mask_source") != "weak_network":
            continue
        pid = record["patient_id"]
        weak = read_mask(record_path.parent / "mask.nii.gz")
        truth = reorient(read_mask(demo / "images" / pid / "mask_withheld.nii.gz"), "LPS")
        truth = resample_to(truth, weak, "nearest")
        w = sitk.GetArrayFromImage(weak) > 0
        t = sitk.GetArrayFromImage(truth) > 0
        rows.append((pid, dice(w, t), int(w.sum()), int(t.sum())))
    log = json.loads((results / "mri/weak/segmenter.json").read_text())
    return rows, log


def table(rows: list[tuple[str, float, int, int]], log: dict, command: str) -> str:
    """The markdown section."""
    d = np.array([r[1] for r in rows])
    ratio = np.array([r[2] / r[3] for r in rows if r[3]])
    held_out = log.get("best_val_dice")
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (after the default demo run).",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| weak-labelled scans | {len(rows)} |",
        f"| segmenter trained on (masked scans) | {len(log['train_patients'])} "
        f"(+ {len(log['val_patients'])} held out) |",
        f"| segmenter epochs, best | {log['epochs']}, {log['best_epoch']} |",
        f"| held-out Dice on masked scans | {held_out:.3f} |" if held_out else "",
        f"| Dice vs the withheld masks: median (IQR) | {np.median(d):.3f} "
        f"({np.quantile(d, 0.25):.3f}-{np.quantile(d, 0.75):.3f}) |",
        f"| Dice: min | {d.min():.3f} |",
        f"| weak / true tumour volume: median | {np.median(ratio):.2f} |",
        f"| segmenter training time | {log.get('seconds', float('nan')):.0f} s |",
        "",
        "The weak mask is the network's whole-tumour prediction on the whole-brain input "
        "(`mri.brain_size`), largest component, put back on the patient's grid; Dice is "
        "computed there against the withheld BraTS mask (labels 1, 2, 4 merged).",
        "",
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--demo", type=Path, default=Path("resources/demo/demo-seed0"))
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    demo = args.demo if args.demo.is_absolute() else args.workdir / args.demo
    rows, log = score(args.workdir, demo)
    if not rows:
        print("no weak-labelled scan in this run", file=sys.stderr)
        return 1
    text = table(rows, log, "python benchmarks/weak_labels.py --workdir WORKDIR")
    print(text)
    if not args.no_doc:
        replace_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
