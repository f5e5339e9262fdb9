"""Radiomics seconds per patient (two sequences) on a full-size MRI volume, single thread.

Builds a BraTS-sized patient: 240 x 240 x 155 voxels of 1 mm, a head ellipsoid with z-scored
intensities (what mmsurv's preprocessing writes), and a spherical tumour (necrotic core,
enhancing rim, edema; BraTS labels 1, 4, 2) of a given diameter, in two textured sequences
(t1ce, t2) written as NIfTI. Then times ``mmsurv.mri.radiomics.extract_patient`` with
``config/radiomics.yaml`` (reading the files included), best and median of ``--repeats`` runs,
and how much of one sequence's time is PyRadiomics' work common to every feature class.

Usage: OMP_NUM_THREADS=1 python benchmarks/radiomics.py [--diameters 30 60] [--repeats 3]
       [--no-doc]
Writes the table to docs/benchmarks.md (section "Radiomics"), replacing an older one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

# This script is benchmarks/radiomics.py: take its folder off the import path again, so that
# `import radiomics` (inside mmsurv) finds PyRadiomics and not this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _HERE]

from mmsurv.mri.radiomics import _extractor, extract_patient, tumor_binary_mask  # noqa: E402

SECTION = "## Radiomics"
SIZE = (240, 240, 155)  # x, y, z voxels of 1 mm
SEQUENCES = ["t1ce", "t2"]
PARAMS = Path(__file__).resolve().parents[1] / "config" / "radiomics.yaml"

_log = logging.getLogger("benchmarks.radiomics")


def _smooth(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise (SimpleITK), rescaled to unit standard deviation."""
    noise = sitk.GetImageFromArray(rng.normal(size=shape).astype(np.float32))
    out = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(noise, sigma))
    return (out - out.mean()) / out.std()


def make_patient(folder: Path, diameter_mm: float, seed: int = 0) -> dict[str, Path]:
    """Write t1ce, t2 and mask NIfTI files of one synthetic patient into ``folder``."""
    rng = np.random.default_rng(seed)
    nx, ny, nz = SIZE
    z, y, x = np.ogrid[:nz, :ny, :nx]
    head = ((x - nx / 2) / 80) ** 2 + ((y - ny / 2) / 100) ** 2 + ((z - nz / 2) / 70) ** 2 <= 1
    cx, cy, cz = nx / 2 + 25, ny / 2 - 10, nz / 2 + 5
    r = np.sqrt((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
    radius = diameter_mm / 2
    labels = np.zeros((nz, ny, nx), np.uint8)
    labels[r <= radius] = 2  # edema
    labels[r <= 0.7 * radius] = 4  # enhancing
    labels[r <= 0.4 * radius] = 1  # necrosis
    shift = {"t1ce": {1: -1.0, 2: 0.3, 4: 2.5}, "t2": {1: 1.5, 2: 2.0, 4: 0.8}}
    paths = {}
    for seq in SEQUENCES:
        tissue = 0.7 * _smooth((nz, ny, nx), 3.0, rng) + 0.3 * rng.normal(size=(nz, ny, nx))
        vol = np.where(head, tissue, 0.0)
        for label, value in shift[seq].items():
            vol[labels == label] += value
        inside = vol[head]
        vol[head] = (inside - inside.mean()) / inside.std()  # z-scored inside the head
        img = sitk.GetImageFromArray(vol.astype(np.float32))
        img.SetSpacing((1.0, 1.0, 1.0))
        paths[seq] = folder / f"{seq}.nii.gz"
        sitk.WriteImage(img, str(paths[seq]))
    mask = sitk.GetImageFromArray(labels)
    mask.SetSpacing((1.0, 1.0, 1.0))
    paths["mask"] = folder / "mask.nii.gz"
    sitk.WriteImage(mask, str(paths["mask"]))
    return paths


def measure(paths: dict[str, Path], repeats: int) -> tuple[list[float], int]:
    """Seconds of each ``extract_patient`` run and the number of features."""
    images = {s: paths[s] for s in SEQUENCES}
    seconds, n = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        row = extract_patient("BENCH", images, paths["mask"], PARAMS, SEQUENCES)
        seconds.append(time.perf_counter() - start)
        n = len(row)
    return seconds, n


def split_seconds(paths: dict[str, Path], repeats: int) -> tuple[float, float]:
    """Best seconds (of ``repeats``) of one PyRadiomics extraction on the t1ce volume (already
    in memory) with all feature classes and with none (mask check, bounding box, cropping)."""
    image = sitk.ReadImage(str(paths["t1ce"]))
    mask = tumor_binary_mask(sitk.ReadImage(str(paths["mask"])))

    def run(enabled: bool) -> float:
        extractor = _extractor(PARAMS)
        if not enabled:
            extractor.disableAllFeatures()
        start = time.perf_counter()
        extractor.execute(image, mask, label=1)
        return time.perf_counter() - start

    common = min(run(False) for _ in range(repeats))
    full = min(run(True) for _ in range(repeats))
    return common, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--diameters", type=float, nargs="+", default=[30.0, 60.0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("mmsurv").setLevel(logging.WARNING)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    threads = os.environ.get("OMP_NUM_THREADS", "unset")

    rows, splits = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for diameter in args.diameters:
            folder = Path(tmp) / f"d{diameter:g}"
            folder.mkdir()
            paths = make_patient(folder, diameter)
            voxels = int((sitk.GetArrayViewFromImage(sitk.ReadImage(str(paths["mask"]))) > 0).sum())
            seconds, n = measure(paths, args.repeats)
            best, median = min(seconds), statistics.median(seconds)
            rows.append(
                f"| {diameter:g} | {voxels:,} | {n} | {best:.2f} | {median:.2f} "
                f"| {median / len(SEQUENCES):.2f} |"
            )
            print(rows[-1], flush=True)
            common, full = split_seconds(paths, args.repeats)
            splits.append(
                f"{diameter:g} mm tumour: {full:.2f} s with all 7 classes, {common:.2f} s "
                f"({common / full:.0%}) with none"
            )
            print(splits[-1], flush=True)

    if args.no_doc:
        return
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    import radiomics

    command = " ".join(["python", "benchmarks/radiomics.py", *sys.argv[1:]])
    table = "\n".join(
        [
            SECTION,
            "",
            f"`OMP_NUM_THREADS={threads} {command}` on {time.strftime('%Y-%m-%d')}: {cpu}, "
            f"{os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} at the end: other "
            "processes share the machine when it is above 1), one thread (SimpleITK global "
            "threads 1), PyRadiomics "
            f"{radiomics.__version__}. One synthetic patient per row: 240 x 240 x 155 voxels of "
            "1 mm, z-scored inside a head ellipsoid, a spherical tumour (necrosis, enhancing rim, "
            "edema) of the given diameter; sequences t1ce and t2 read from NIfTI; "
            "`mmsurv.mri.radiomics.extract_patient` with `config/radiomics.yaml` (Original "
            f"image, 7 feature classes, binWidth 0.1). {args.repeats} runs each (best and "
            "median seconds per patient; per sequence from the median).",
            "",
            "| tumour diameter (mm) | tumour voxels | features | best (s) | median (s) "
            "| per sequence (s) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "Where one sequence's time goes: PyRadiomics `execute` on the t1ce image already in "
            f"memory, best of {args.repeats}, with all feature classes and with none enabled "
            "(then it still checks the mask and finds and crops the tumour's bounding box on "
            "the whole 240 x 240 x 155 grid): "
            + "; ".join(splits)
            + ". The rest of a patient's time is reading the gzipped NIfTI files and "
            "binarising the mask.",
            "",
        ]
    )
    replace_section(SECTION, table)


if __name__ == "__main__":
    main()
