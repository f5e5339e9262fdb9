"""The ``samples.tsv`` sheet: endpoints, clinical variables with missing values, and labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import rng_for

__all__ = ["MISSING_FRACTION", "SAMPLE_COLUMNS", "make_samples"]

#: Fraction of patients whose value is blanked, per clinical column (missing completely at
#: random; the true value still drives the hazard).
MISSING_FRACTION: dict[str, float] = {
    "age": 0.07,
    "kps": 0.08,
    "resection": 0.07,
    "grade": 0.04,
    # seed 2: IDH status is known for about 70 % of patients (the subtype column stays complete)
    "idh_mutant": 0.3,
}

#: Column order of ``samples.tsv``.
SAMPLE_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "os_days",
    "os_event",
    "pfs_days",
    "pfs_event",
    "age",
    "kps",
    "sex",
    "grade",
    "resection",
    "radiotherapy",
    "chemotherapy",
    "idh_mutant",
    "codel_1p19q",
    "who_subtype",
)


def _blank(values: pd.Series, fraction: float, rng: np.random.Generator) -> pd.Series:
    """Return ``values`` with ``max(1, round(fraction * n))`` random entries set to NA."""
    n = len(values)
    k = min(n, max(1, round(fraction * n)))
    out = values.copy()
    out.iloc[rng.choice(n, size=k, replace=False)] = pd.NA
    return out


def make_samples(traits: pd.DataFrame, survival: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Assemble the patient sheet.

    Parameters
    ----------
    traits
        (n, ...) output of :func:`mmsurv.demo.traits.draw_traits`.
    survival
        (n, 4) output of :func:`mmsurv.demo.hazard.draw_survival`, same row order.
    seed
        Cohort seed (drives which cells are blanked).

    Returns
    -------
    pandas.DataFrame
        (n, 15) columns :data:`SAMPLE_COLUMNS`. ``age`` in whole years and ``kps`` (40..100,
        step 10) are nullable integers; string columns hold ``pd.NA`` where missing; endpoints,
        ``codel_1p19q`` and ``who_subtype`` are complete, ``idh_mutant`` (nullable integer)
        is missing for :data:`MISSING_FRACTION` of the patients.
    """
    rng = rng_for(seed, "missing")
    df = pd.DataFrame({"patient_id": traits["patient_id"].to_numpy()})
    for col in survival.columns:
        df[col] = survival[col].to_numpy().astype(int)
    df["age"] = pd.array(np.floor(traits["age"].to_numpy()).astype(int), dtype="Int64")
    df["kps"] = pd.array(traits["kps"].to_numpy().astype(int), dtype="Int64")
    for col in ("sex", "grade", "resection", "radiotherapy", "chemotherapy"):
        df[col] = pd.array(traits[col].to_numpy(), dtype="string")
    for col in ("idh_mutant", "codel_1p19q"):
        df[col] = pd.array(traits[col].to_numpy().astype(int), dtype="Int64")
    df["who_subtype"] = traits["who_subtype"].to_numpy()
    for col, fraction in MISSING_FRACTION.items():
        df[col] = _blank(df[col], fraction, rng)
    return df[list(SAMPLE_COLUMNS)]
