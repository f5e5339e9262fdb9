"""Hazard model of the demo cohort: risk components, total log-hazard and survival times.

Each modality's component is a fixed function of what that modality shows (see
:func:`risk_components`), standardised over the cohort and weighted by :data:`WEIGHTS`; the
total log-hazard ``risk`` is their sum. Overall survival follows a Weibull proportional-hazards
model ``h(t) = LAMBDA * K * t**(K - 1) * exp(risk)`` (t in days) with independent censoring;
progression-free survival uses the same risk plus noise and a higher baseline hazard, and
counts death as an event, so PFS <= OS.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._util import rng_for, zscore

__all__ = [
    "WEIGHTS",
    "WEIBULL_SHAPE",
    "WEIBULL_MEDIAN_DAYS",
    "WEIBULL_SCALE",
    "PFS_HAZARD_RATIO",
    "PFS_NOISE_SD",
    "COMPONENTS",
    "risk_components",
    "total_risk",
    "draw_survival",
]

#: Weight of each standardised modality component in the total log-hazard.
WEIGHTS: dict[str, float] = {
    "clinical": 0.45,
    "wsi": 0.35,
    "mri": 0.35,
    "dti": 0.30,
    "rna": 0.35,
    "scna": 0.35,
}
#: Column names of the components in ``truth.tsv``.
COMPONENTS: tuple[str, ...] = tuple(f"risk_{m}" for m in WEIGHTS)
#: Weibull shape ``K`` (>1: hazard rises with time).
WEIBULL_SHAPE: float = 1.2
#: Median OS in days of a patient with ``risk == 0``.
WEIBULL_MEDIAN_DAYS: float = 700.0
#: Weibull baseline scale ``LAMBDA`` in days**-K, set by the median: ``log 2 / median**K``.
WEIBULL_SCALE: float = math.log(2.0) / WEIBULL_MEDIAN_DAYS**WEIBULL_SHAPE
#: Baseline hazard ratio of progression relative to death.
PFS_HAZARD_RATIO: float = 2.5
#: SD of the patient-level noise added to ``risk`` for progression.
PFS_NOISE_SD: float = 0.5
#: Administrative censoring: follow-up uniform on this interval, in days.
_FOLLOW_UP_DAYS: tuple[float, float] = (180.0, 3650.0)
#: Mean of the exponential loss-to-follow-up time, in days.
_DROPOUT_MEAN_DAYS: float = 4000.0

_GRADE_EFFECT = {"G2": 0.0, "G3": 0.4, "G4": 0.9}
_RESECTION_EFFECT = {"GTR": 0.0, "STR": 0.25, "biopsy": 0.5}


def _clinical_score(traits: pd.DataFrame) -> np.ndarray:
    """Raw clinical log-hazard from the true (complete) clinical values, shape (n,)."""
    return (
        0.035 * (traits["age"].to_numpy() - 55.0)
        - 0.025 * (traits["kps"].to_numpy() - 80.0)
        + traits["grade"].map(_GRADE_EFFECT).to_numpy()
        + traits["resection"].map(_RESECTION_EFFECT).to_numpy()
        - 0.35 * (traits["radiotherapy"] == "yes").to_numpy()
        - 0.25 * (traits["chemotherapy"] == "yes").to_numpy()
    )


def risk_components(traits: pd.DataFrame) -> pd.DataFrame:
    """Standardised, weighted risk component of each modality.

    Raw scores (before z-scoring over the cohort and multiplying by :data:`WEIGHTS`):

    - clinical: ``0.035 (age - 55) - 0.025 (kps - 80) + grade + resection - 0.35 RT - 0.25 chemo``
      with grade G2/G3/G4 = 0/0.4/0.9 and resection GTR/STR/biopsy = 0/0.25/0.5;
    - wsi: ``nuclei_per_mm2 / 5500 + 0.5 necrosis_fraction / 0.30``;
    - mri: ``ring_mm / 5 + edema_mm / 20 + necrosis_radius_mm / 11``;
    - dti: ``tumour_fa / 0.30 - tumour_md / 0.65e-3``;
    - rna: planted module activity;
    - scna: ``chr7gain_chr10loss + 0.8 CDKN2A_homdel + 0.4 EGFR_amp - 0.8 codel``.

    Parameters
    ----------
    traits
        Output of :func:`mmsurv.demo.traits.draw_traits`, n rows.

    Returns
    -------
    pandas.DataFrame
        (n, 6) columns :data:`COMPONENTS`, in log-hazard units, same row order as ``traits``.
    """
    raw = {
        "clinical": _clinical_score(traits),
        "wsi": traits["wsi_nuclei_per_mm2"] / 5500.0 + 0.5 * traits["wsi_necrosis_fraction"] / 0.30,
        "mri": traits["mri_ring_mm"] / 5.0
        + traits["mri_edema_mm"] / 20.0
        + traits["mri_necrosis_radius_mm"] / 11.0,
        "dti": traits["dti_tumour_fa"] / 0.30 - traits["dti_tumour_md"] / 0.65e-3,
        "rna": traits["rna_module_activity"],
        "scna": traits["scna_chr7_gain_chr10_loss"]
        + 0.8 * traits["scna_cdkn2a_homdel"]
        + 0.4 * traits["scna_egfr_amp"]
        - 0.8 * traits["scna_codel"],
    }
    return pd.DataFrame(
        {f"risk_{m}": WEIGHTS[m] * zscore(np.asarray(raw[m], dtype=np.float64)) for m in WEIGHTS},
        index=traits.index,
    )


def total_risk(components: pd.DataFrame) -> np.ndarray:
    """True log-hazard: the sum of the weighted components, shape (n,)."""
    return components[list(COMPONENTS)].sum(axis=1).to_numpy()


def _weibull_times(log_hazard: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Invert the Weibull PH survival function at a uniform draw; days, shape (n,)."""
    e = rng.standard_exponential(log_hazard.size)
    return (e / (scale * np.exp(log_hazard))) ** (1.0 / WEIBULL_SHAPE)


def draw_survival(risk: np.ndarray, seed: int) -> pd.DataFrame:
    """Draw OS and PFS for patients with true log-hazard ``risk``.

    OS event time ``T ~ Weibull-PH(risk)``; censoring ``C = min(U(180, 3650), Exp(4000))`` days,
    independent of everything else; ``os_days = min(T, C)``. Progression time
    ``P ~ Weibull-PH(risk + log 2.5 + N(0, 0.5^2))``; ``pfs_days = min(P, T, C)`` with an event
    when progression or death is observed.

    Parameters
    ----------
    risk
        (n,) true log-hazard.
    seed
        Cohort seed.

    Returns
    -------
    pandas.DataFrame
        (n, 4): ``os_days``, ``os_event``, ``pfs_days``, ``pfs_event``; integer days >= 1 and
        0/1 integer events.
    """
    rng = rng_for(seed, "survival")
    n = risk.size
    death = _weibull_times(risk, WEIBULL_SCALE, rng)
    noise = rng.normal(0.0, PFS_NOISE_SD, n)
    progression = _weibull_times(risk + noise, WEIBULL_SCALE * PFS_HAZARD_RATIO, rng)
    follow_up = rng.uniform(*_FOLLOW_UP_DAYS, n)
    dropout = rng.exponential(_DROPOUT_MEAN_DAYS, n)
    censor = np.minimum(follow_up, dropout)

    death_d = np.maximum(np.ceil(death), 1).astype(int)
    prog_d = np.maximum(np.ceil(progression), 1).astype(int)
    censor_d = np.maximum(np.ceil(censor), 1).astype(int)
    os_days = np.minimum(death_d, censor_d)
    os_event = (death_d <= censor_d).astype(int)
    pfs_days = np.minimum(prog_d, os_days)
    pfs_event = ((prog_d <= os_days) | (os_event == 1)).astype(int)
    return pd.DataFrame(
        {"os_days": os_days, "os_event": os_event, "pfs_days": pfs_days, "pfs_event": pfs_event}
    )
