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
    if samples is None:
        raise CohortError(problems)
    samples = check_samples(samples, str(cohort["samples"]), config, problems)
    if "patient_id" not in samples.columns:
        raise CohortError(problems)
    patients = set(samples["patient_id"].dropna())
    table = pd.DataFrame({"patient_id": samples["patient_id"]}).drop_duplicates("patient_id")
    table = table.set_index("patient_id")

    clinical_cols = [
        c
        for c in [*config["clinical"]["numeric"], *config["clinical"]["categorical"]]
        if c in samples.columns
    ]
    by_patient = samples.drop_duplicates("patient_id").set_index("patient_id")
    table["clinical"] = by_patient[clinical_cols].notna().any(axis=1) if clinical_cols else False
    for name, ep in config["endpoints"].items():
        cols = [ep["time"], ep["event"]]
        present = all(c in by_patient.columns for c in cols)
        table[f"endpoint_{name}"] = by_patient[cols].notna().all(axis=1) if present else False

    table["n_slides"] = 0
    if cohort.get("slides"):
        slides = read_sheet(cohort["slides"], problems)
        if slides is not None:
            slides = check_slides(slides, str(cohort["slides"]), patients, problems)
            if "patient_id" in slides.columns:
                counts = slides.groupby("patient_id").size()
                table["n_slides"] = counts.reindex(table.index, fill_value=0).astype(int)
    table["wsi"] = table["n_slides"] > 0

    table["mri_channels"] = ""
    table["mask"] = False
    table["dti"] = False
    if cohort.get("images"):
        images = read_sheet(cohort["images"], problems)
        if images is not None:
            images = check_images(
                images, str(cohort["images"]), patients, list(cohort["channels"]), problems
            )
            if {"patient_id", "channel"} <= set(images.columns):
                chans = images.groupby("patient_id")["channel"].apply(set)
                chans = chans.reindex(table.index).apply(
                    lambda s: s if isinstance(s, set) else set()
                )
                mri_names = [c for c in cohort["channels"] if c in MRI_CHANNELS]
                table["mri_channels"] = chans.apply(
                    lambda s: ",".join(c for c in mri_names if c in s)
                )
                table["mask"] = chans.apply(lambda s: "mask" in s)
                table["dti"] = chans.apply(
                    lambda s: set(DTI_CHANNELS) <= s or {"dwi", "bval", "bvec"} <= s
                )
    table["mri"] = table["mri_channels"] != ""

    for modality in ("rna", "scna"):
        table[modality] = False
        if cohort.get(modality):
            covered = check_matrix(cohort[modality], cohort["id_pattern"], patients, problems)
            table[modality] = table.index.isin(sorted(covered))

    if problems:
        raise CohortError(problems)
    order = [
        "clinical",
        *[c for c in table.columns if c.startswith("endpoint_")],
        "n_slides",
        "wsi",
        "mri_channels",
        "mri",
        "mask",
        "dti",
        "rna",
        "scna",
    ]
    table = table[order].reset_index()
    log.info("cohort: %d patients; %s", len(table), _summary(table))
    return table


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
