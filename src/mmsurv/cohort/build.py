"""The cohort stage: validate every input and tabulate which patient has which modality."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from mmsurv.cohort.matrices import check_matrix
from mmsurv.cohort.problems import CohortError, Problem
from mmsurv.cohort.sheets import check_images, check_samples, check_slides, read_sheet

__all__ = ["build_cohort", "load_samples", "MRI_CHANNELS", "DTI_CHANNELS"]

log = logging.getLogger(__name__)

MRI_CHANNELS = ("t1", "t1ce", "t2", "flair")
DTI_CHANNELS = ("fa", "md", "ad", "rd")


def build_cohort(config: Mapping[str, Any]) -> pd.DataFrame:
    """Validate the cohort inputs named in ``config`` and return patient x modality table.

    Columns: ``patient_id``; ``clinical`` (any clinical value present); one boolean per endpoint
    (``endpoint_{name}``: time and event present); ``n_slides`` and ``wsi``; ``mri_channels``
    (comma-separated sequences present), ``mri`` (any sequence), ``mask``; ``dti`` (all four
    maps or raw ``dwi``); ``rna``; ``scna``.

    Raises
    ------
    CohortError
        With every problem found (file, line, reason), after checking all inputs.
    """
    cohort = config["cohort"]
    problems: list[Problem] = []
    samples = read_sheet(cohort["samples"], problems)
    if samples is not None:
        samples = check_samples(samples, str(cohort["samples"]), config, problems)
    # Without usable patient ids the other inputs are still checked, minus cross-references.
    patients = (
        set(samples["patient_id"].dropna())
        if samples is not None and "patient_id" in samples.columns
        else None
    )
    slides = images = None
    if cohort.get("slides"):
        slides = read_sheet(cohort["slides"], problems)
        if slides is not None:
            slides = check_slides(slides, str(cohort["slides"]), patients, problems)
    if cohort.get("images"):
        images = read_sheet(cohort["images"], problems)
        if images is not None:
            images = check_images(
                images, str(cohort["images"]), patients, list(cohort["channels"]), problems
            )
    covered = {
        modality: check_matrix(cohort[modality], cohort["id_pattern"], patients, problems)
        for modality in ("rna", "scna")
        if cohort.get(modality)
    }
    if problems:
        raise CohortError(problems)
    table = _tabulate(config, samples, slides, images, covered)
    log.info("cohort: %d patients; %s", len(table), _summary(table))
    return table


def _tabulate(
    config: Mapping[str, Any],
    samples: pd.DataFrame,
    slides: pd.DataFrame | None,
    images: pd.DataFrame | None,
    covered: Mapping[str, set[str]],
) -> pd.DataFrame:
    """The patient x modality table from validated inputs (see :func:`build_cohort`)."""
    by_patient = samples.drop_duplicates("patient_id").set_index("patient_id")
    table = pd.DataFrame(index=by_patient.index)
    clinical_cols = [*config["clinical"]["numeric"], *config["clinical"]["categorical"]]
    table["clinical"] = by_patient[clinical_cols].notna().any(axis=1) if clinical_cols else False
    for name, ep in config["endpoints"].items():
        table[f"endpoint_{name}"] = by_patient[[ep["time"], ep["event"]]].notna().all(axis=1)
    counts = slides.groupby("patient_id").size() if slides is not None else pd.Series(dtype=int)
    table["n_slides"] = counts.reindex(table.index, fill_value=0).astype(int)
    table["wsi"] = table["n_slides"] > 0
    chans = pd.Series([set() for _ in table.index], index=table.index, dtype=object)
    if images is not None:
        found = images.groupby("patient_id")["channel"].apply(set)
        chans.loc[found.index] = found
    mri_names = [c for c in config["cohort"]["channels"] if c in MRI_CHANNELS]
    table["mri_channels"] = chans.apply(lambda s: ",".join(c for c in mri_names if c in s))
    table["mri"] = table["mri_channels"] != ""
    table["mask"] = chans.apply(lambda s: "mask" in s)
    table["dti"] = chans.apply(lambda s: set(DTI_CHANNELS) <= s or {"dwi", "bval", "bvec"} <= s)
    for modality in ("rna", "scna"):
        table[modality] = table.index.isin(sorted(covered.get(modality, set())))
    return table.reset_index()


def load_samples(config: Mapping[str, Any]) -> pd.DataFrame:
    """The validated samples sheet (endpoint and numeric clinical columns as floats).

    Raises
    ------
    CohortError
        With every problem of the samples sheet.
    """
    problems: list[Problem] = []
    path = config["cohort"]["samples"]
    samples = read_sheet(path, problems)
    if samples is not None:
        samples = check_samples(samples, str(path), config, problems)
    if problems or samples is None:
        raise CohortError(problems)
    return samples


def _summary(table: pd.DataFrame) -> str:
    mods = ["clinical", "wsi", "mri", "dti", "rna", "scna"]
    return ", ".join(f"{m} {int(table[m].sum())}" for m in mods)
