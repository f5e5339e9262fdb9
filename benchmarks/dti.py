"""Seed-4 timings: the dipy tensor fit of one raw DWI and the DLS (ResNet-34) training epoch.

1. Tensor fit (``mmsurv.dti.maps.fit_tensor``: dipy ``TensorModel`` inside a ``median_otsu``
   brain mask) of a synthetic DWI from a known axially symmetric tensor field: one b = 0 volume
   plus ``--directions`` directions at b = 1000 s/mm^2, for the demo grid (64 x 64 x 48) and a
   clinical one (``--clinical-grid``, default 128 x 128 x 60). Median of ``--repeats`` fits, with
   the median absolute FA error inside the brain against the tensor the DWI came from.
2. DLS training: ``DTIDLSModel.fit`` for ``--epochs`` epochs on random (16, H, W) stacks for the
   demo's split (``--n-train`` 108, ``--n-val`` 16 patients), reported per epoch.

Usage: python benchmarks/dti.py [--threads 2] [--size 64] [--epochs 2] [--no-doc]
Writes the table to docs/benchmarks.md (section "DTI tensor fit and DLS training").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)

from mmsurv.dti.maps import fit_tensor
from mmsurv.models.dti_model import DTIDLSModel

SECTION = "## DTI tensor fit and DLS training"


def _directions(n: int, seed: int) -> np.ndarray:
    """``n`` unit gradient directions spread over a hemisphere (a seeded Fibonacci set)."""
    k = np.arange(n) + 0.5
    z = 1.0 - k / n  # upper hemisphere
    phi = k * np.pi * (3.0 - np.sqrt(5.0)) + np.random.default_rng(seed).uniform(0, 2 * np.pi)
    r = np.sqrt(1.0 - z**2)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def write_dwi(folder: Path, shape: tuple[int, int, int], n_dirs: int, seed: int) -> np.ndarray:
    """A DWI of an ellipsoidal brain (FA 0.2-0.7, MD 0.8e-3 mm^2/s, main axis along x) with
    Rician noise; writes dwi.nii.gz, dwi.bval, dwi.bvec; returns the true FA (z, y, x)."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z, y, x = np.mgrid[:nz, :ny, :nx]
    brain = ((x - nx / 2) / (0.42 * nx)) ** 2 + ((y - ny / 2) / (0.42 * ny)) ** 2 + (
        (z - nz / 2) / (0.42 * nz)
    ) ** 2 <= 1
    fa = np.where(brain, 0.2 + 0.5 * (x / nx), 0.0)
    md = 0.8e-3
    d = md * fa * np.sqrt(3.0 / (9.0 - 6.0 * fa**2))
    l1, l2 = md + 2 * d, md - d  # axial along x, radial in y and z
    g = np.vstack([np.zeros(3), _directions(n_dirs, seed)])
    b = np.r_[0.0, np.full(n_dirs, 1000.0)]
    s0 = np.where(brain, 1000.0, 0.0)
    adc = l1[None] * g[:, 0, None, None, None] ** 2 + l2[None] * (
        1 - g[:, 0, None, None, None] ** 2
    )
    signal = s0[None] * np.exp(-b[:, None, None, None] * adc)
    noise = rng.normal(0, 10, (2, *signal.shape))
    signal = np.sqrt((signal + noise[0]) ** 2 + noise[1] ** 2).astype(np.float32)
    image = sitk.JoinSeries([sitk.GetImageFromArray(v) for v in signal])
    sitk.WriteImage(image, str(folder / "dwi.nii.gz"))
    (folder / "dwi.bval").write_text(" ".join(f"{v:g}" for v in b) + "\n")
    (folder / "dwi.bvec").write_text(
        "\n".join(" ".join(f"{v:.6f}" for v in g[:, axis]) for axis in range(3)) + "\n"
    )
    return fa


def time_tensor_fit(shape: tuple[int, int, int], n_dirs: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fa = write_dwi(folder, shape, n_dirs, seed=0)
        seconds, maps = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            maps, brain = fit_tensor(
                folder / "dwi.nii.gz", folder / "dwi.bval", folder / "dwi.bvec"
            )
            seconds.append(time.perf_counter() - start)
        fitted = sitk.GetArrayFromImage(maps["fa"])
        inside = (sitk.GetArrayFromImage(brain) > 0) & (fa > 0)
    return {
        "grid (x y z)": f"{shape[2]} x {shape[1]} x {shape[0]}",
        "volumes": 1 + n_dirs,
        "seconds": statistics.median(seconds),
        "median abs. FA error": float(np.median(np.abs(fitted[inside] - fa[inside]))),
    }


def time_dls(n_train: int, n_val: int, size: int, epochs: int, threads: int) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for i in range(n_train + n_val):
            path = Path(tmp) / f"P{i}.npy"
            np.save(path, rng.normal(size=(16, size, size)).astype(np.float32))
            paths[f"P{i}"] = str(path)
        X = pd.DataFrame({"dti": paths})
        time_ = rng.exponential(600.0, n_train + n_val)
        event = np.ones(n_train + n_val, int)
        model = DTIDLSModel(epochs=epochs, threads=threads, device="cpu")
        start = time.perf_counter()
        tr, va = slice(0, n_train), slice(n_train, None)
        model.fit(X.iloc[tr], time_[tr], event[tr], validation=(X.iloc[va], time_[va], event[va]))
        seconds = time.perf_counter() - start
    return {
        "patients (train / val)": f"{n_train} / {n_val}",
        "input": f"16 x {size} x {size}",
        "epochs": epochs,
        "seconds per epoch": seconds / epochs,
        "parameters (M)": sum(p.numel() for p in model.net_.parameters()) / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--directions", type=int, default=12)
    ap.add_argument("--clinical-grid", type=int, nargs=3, default=[128, 128, 60])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=108)
    ap.add_argument("--n-val", type=int, default=16)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cx, cy, cz = args.clinical_grid
    fits = pd.DataFrame(
        [
            time_tensor_fit((48, 64, 64), args.directions, args.repeats),
            time_tensor_fit((cz, cy, cx), 30, args.repeats),
        ]
    )
    dls = pd.DataFrame([time_dls(args.n_train, args.n_val, args.size, args.epochs, args.threads)])
    cmd = "python benchmarks/dti.py " + " ".join(argv if argv is not None else sys.argv[1:])
    table = (
        f"{SECTION}\n\n`{cmd.strip()}` ({args.threads} torch threads; dipy WLS fit on one "
        "core).\n\nTensor fit of one raw DWI (b = 0 + directions at b = 1000 s/mm^2, "
        "median_otsu brain mask):\n\n"
        + fits.to_markdown(index=False, floatfmt=".3f")
        + "\n\nDLS training (ResNet-34, 16 input channels, batch 16, validation loss each "
        "epoch):\n\n" + dls.to_markdown(index=False, floatfmt=".2f") + "\n"
    )
    print(table)
    if not args.no_doc:
        replace_section(SECTION, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
