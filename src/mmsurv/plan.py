"""What the workflow will run: modalities the cohort provides, experiments kept or left out."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["configured_modalities", "plan_experiments", "fold_ids"]

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
    return found


def plan_experiments(config: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Split the configured experiments into those to run and those left out (with reason)."""
    available = configured_modalities(config)
    active, excluded = [], {}
    for name, spec in config["experiments"].items():
        missing = sorted(set(spec["inputs"]) - available)
        if missing:
            excluded[name] = f"the cohort has no {', '.join(missing)} data"
        else:
            active.append(name)
    return active, excluded


def fold_ids(config: Mapping[str, Any]) -> list[int]:
    """Fold numbers the split method produces."""
    spec = config["splits"]
    return list(range(int(spec["folds"]))) if spec["method"] == "kfold" else [0]
