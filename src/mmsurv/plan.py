"""What the workflow will run: modalities the cohort provides, experiments kept or left out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "configured_modalities",
    "plan_experiments",
    "fold_ids",
    "slides_table",
    "images_table",
    "INPUT_MODALITY",
]

_SHEET_MODALITIES = {
    "slides": ("wsi",),
    "images": ("mri", "dti"),
    "rna": ("rna",),
    "scna": ("scna",),
}


def _has_rows(path: str | Path) -> bool:
    """A sheet or matrix exists and has more than its header line."""
    path = Path(path)
    if not path.is_file():
        return False
    if path.suffix in {".parquet", ".h5ad"}:
        return path.stat().st_size > 0
    with open(path) as fh:
        fh.readline()
        return bool(fh.readline().strip())


#: Experiment input key -> the modality (cohort.tsv column) it needs, where they differ.
INPUT_MODALITY = {"radiomics": "mri"}


def configured_modalities(config: Mapping[str, Any]) -> set[str]:
    """Modalities the configured cohort provides at all (cheap: no file is parsed in full).

    ``clinical`` when clinical variables are declared; ``wsi`` for a non-empty slides sheet;
    ``mri`` and ``dti`` for a non-empty images sheet (per-patient availability is decided by the
    cohort stage); ``rna`` / ``scna`` for a non-empty matrix.
    """
    found: set[str] = set()
    clinical = config["clinical"]
    if clinical["numeric"] or clinical["categorical"]:
        found.add("clinical")
    for key, modalities in _SHEET_MODALITIES.items():
        path = config["cohort"].get(key)
        if path and _has_rows(path):
            found.update(modalities)
    if "dti" in found and not _has_dti_rows(config["cohort"]["images"]):
        found.discard("dti")  # an MRI-only images sheet
    return found


def _has_dti_rows(path: str | Path) -> bool:
    """Whether the images sheet has a DTI map or raw diffusion row."""
    import pandas as pd

    channels = pd.read_csv(path, sep="\t", usecols=["channel"], dtype=str)["channel"]
    return bool(channels.isin(["fa", "md", "ad", "rd", "dwi"]).any())


def plan_experiments(config: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Split the configured experiments into those to run and those left out (with reason):
    an experiment needs every modality of its inputs and, for a classifier, its label."""
    available = configured_modalities(config)
    active, excluded = [], {}
    for name, spec in config["experiments"].items():
        needs = {INPUT_MODALITY.get(key, key) for key in spec["inputs"]}
        missing = sorted(needs - available)
        label = spec.get("label")
        if missing:
            excluded[name] = f"the cohort has no {', '.join(missing)} data"
        elif label is not None and label not in config.get("labels", {}):
            excluded[name] = f"its label {label!r} is not configured (labels)"
        else:
            active.append(name)
    return active, excluded


def fold_ids(config: Mapping[str, Any]) -> list[int]:
    """Fold numbers the split method produces."""
    spec = config["splits"]
    return list(range(int(spec["folds"]))) if spec["method"] == "kfold" else [0]


def slides_table(config: Mapping[str, Any]) -> pd.DataFrame:
    """The slides sheet as the workflow plans it: ``slide_id``, ``patient_id``, ``path``, ``mpp``.

    Read without validation (the cohort stage validates and reports every problem); paths are
    resolved against the sheet's folder; ``mpp`` is a float (NaN when empty). Empty when no
    slides sheet is configured.
    """
    from mmsurv.cohort.sheets import read_sheet, resolve_path

    sheet = config["cohort"].get("slides")
    columns = ["slide_id", "patient_id", "path", "mpp"]
    df = read_sheet(sheet, []) if sheet and _has_rows(sheet) else None
    if df is None or "slide_id" not in df.columns:
        return pd.DataFrame(columns=columns)
    df = df.dropna(subset=["slide_id"]).drop_duplicates("slide_id")
    df["path"] = [str(resolve_path(sheet, p)) if isinstance(p, str) else "" for p in df["path"]]
    df["mpp"] = pd.to_numeric(df.get("mpp", pd.Series(index=df.index, dtype=float)), "coerce")
    return df[columns].reset_index(drop=True)


def images_table(config: Mapping[str, Any]) -> pd.DataFrame:
    """The images sheet as the workflow plans it: ``patient_id``, ``channel``, ``path``.

    Read without validation (the cohort stage reports every problem); paths resolved against
    the sheet's folder; the first row of a duplicated (patient, channel) is kept. Empty when
    no images sheet is configured.
    """
    from mmsurv.cohort.sheets import read_sheet, resolve_path

    sheet = config["cohort"].get("images")
    columns = ["patient_id", "channel", "path"]
    df = read_sheet(sheet, []) if sheet and _has_rows(sheet) else None
    if df is None or not set(columns) <= set(df.columns):
        return pd.DataFrame(columns=columns)
    df = df.dropna(subset=["patient_id", "channel"]).drop_duplicates(["patient_id", "channel"])
    df["path"] = [str(resolve_path(sheet, p)) if isinstance(p, str) else "" for p in df["path"]]
    return df[columns].astype(str).reset_index(drop=True)
