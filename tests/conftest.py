"""Shared fixtures: a small, valid, hand-made cohort and its configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mmsurv.config import validate_config

N_PATIENTS = 60


def _write_cohort(root: Path, seed: int = 0) -> dict[str, Any]:
    """Write samples/slides/images/rna/scna under ``root``; return the matching raw config."""
    rng = np.random.default_rng(seed)
    ids = [f"TCGA-AA-{i:04d}" for i in range(N_PATIENTS)]
    age = rng.normal(55, 12, N_PATIENTS).round(1)
    grade = rng.choice(["G2", "G3", "G4"], N_PATIENTS)
    risk = 0.05 * (age - 55) + (grade == "G4") * 1.0
    t = rng.exponential(700 * np.exp(-risk))
    c = rng.exponential(1500, N_PATIENTS)
    samples = pd.DataFrame(
        {
            "patient_id": ids,
            "os_days": np.minimum(t, c).round(1),
            "os_event": (t <= c).astype(int),
            "age": age,
            "kps": rng.choice([60, 70, 80, 90, 100], N_PATIENTS).astype(float),
            "sex": rng.choice(["M", "F"], N_PATIENTS),
            "grade": grade,
            "idh": rng.integers(0, 2, N_PATIENTS),
        }
    )
    samples.loc[[3, 7], "age"] = np.nan
    samples.to_csv(root / "samples.tsv", sep="\t", index=False)
    (root / "slides").mkdir()
    slide_rows = []
    for pid in ids[:10]:
        (root / "slides" / f"{pid}.svs").write_bytes(b"not a real slide")
        slide_rows.append(
            {"slide_id": f"{pid}-01Z", "patient_id": pid, "path": f"slides/{pid}.svs"}
        )
    pd.DataFrame(slide_rows).to_csv(root / "slides.tsv", sep="\t", index=False)
    (root / "images").mkdir()
    image_rows = []
    for pid in ids[:5]:
        for ch in ("t1", "t2", "mask"):
            (root / "images" / f"{pid}_{ch}.nii.gz").write_bytes(b"x")
            image_rows.append(
                {"patient_id": pid, "channel": ch, "path": f"images/{pid}_{ch}.nii.gz"}
            )
    pd.DataFrame(image_rows).to_csv(root / "images.tsv", sep="\t", index=False)
    genes = [f"G{i}" for i in range(20)]
    rna = pd.DataFrame(
        rng.poisson(20, (20, 30)), index=genes, columns=[f"{p}-01A" for p in ids[:30]]
    )
    rna.rename_axis("gene").to_csv(root / "rna.tsv", sep="\t")
    return {
        "demo": None,
        "cohort": {
            "samples": str(root / "samples.tsv"),
            "slides": str(root / "slides.tsv"),
            "images": str(root / "images.tsv"),
            "rna": str(root / "rna.tsv"),
            "id_pattern": r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})",
        },
        "endpoints": {"os": {"time": "os_days", "event": "os_event"}},
        "clinical": {
            "numeric": ["age", "kps"],
            "categorical": ["sex", "grade", "idh"],
            "sets": {"small": ["age", "grade"]},
        },
        "labels": {"idh": "idh"},
        "experiments": {
            "cox_small": {
                "model": "coxph",
                "inputs": {"clinical": "small"},
                "params": {"penalizer": [0.01, 1.0]},
            },
            "rsf_all": {
                "model": "rsf",
                "inputs": {"clinical": "all"},
                "params": {"n_estimators": 30, "min_samples_leaf": 5},
            },
        },
        "evaluation": {"bootstrap": 50},
    }


@pytest.fixture
def cohort_dir(tmp_path: Path) -> Path:
    """A folder with a small valid cohort (sheets, dummy files, an RNA matrix)."""
    root = tmp_path / "cohort"
    root.mkdir()
    return root


@pytest.fixture
def raw_config(cohort_dir: Path) -> dict[str, Any]:
    """The raw (unvalidated) configuration of the small cohort."""
    return _write_cohort(cohort_dir)


@pytest.fixture
def config(raw_config: dict[str, Any]) -> dict[str, Any]:
    """The validated configuration (defaults filled) of the small cohort."""
    return validate_config(raw_config)


@pytest.fixture
def one_torch_thread():
    """Torch on one CPU thread for the test (repeatable fits), the previous count restored."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _mri_study(folder: Path, seed: int) -> dict[str, str]:
    """Write a 32^3 head (ellipsoid, 2 mm voxels) with a spherical tumour: the 4 sequences
    (``t1``, ``t1ce``, ``t2``, ``flair``, a bias along x) and a BraTS mask; channel -> path."""
    import SimpleITK as sitk

    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:32, :32, :32].astype(float)
    head = ((x - 16) / 13) ** 2 + ((y - 16) / 12) ** 2 + ((z - 16) / 12) ** 2 <= 1
    r = np.sqrt((x - 18) ** 2 + (y - 15) ** 2 + (z - 16) ** 2)
    labels = np.where(r < 2.5, 1, np.where(r < 4, 4, np.where(r < 6, 2, 0))).astype(np.uint8)
    files = {}
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(("t1", "t1ce", "t2", "flair")):
        img = np.where(head, 400.0 + 50 * k, 0.0) + np.where(labels > 0, 150.0 * (k + 1), 0.0)
        img = img * np.exp(0.2 * (x - 16) / 16) + rng.normal(0, 5, img.shape)
        files[name] = str(folder / f"{name}.nii.gz")
        vol = sitk.GetImageFromArray(np.clip(img, 0, None).astype(np.float32))
        vol.SetSpacing((2.0, 2.0, 2.0))
        sitk.WriteImage(vol, files[name])
    mask = sitk.GetImageFromArray(labels)
    mask.SetSpacing((2.0, 2.0, 2.0))
    files["mask"] = str(folder / "mask.nii.gz")
    sitk.WriteImage(mask, files["mask"])
    return files


@pytest.fixture(scope="session")
def mri_study():
    """:func:`_mri_study`: writes one synthetic MRI study (folder, seed) -> channel paths."""
    return _mri_study
