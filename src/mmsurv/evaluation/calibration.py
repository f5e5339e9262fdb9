"""Calibration at a horizon: predicted against Kaplan-Meier observed event probability.

Patients are grouped by quantiles of their predicted event probability by the horizon,
``1 - S(horizon | x)`` (the model's stored survival curve); within each group the observed
probability is ``1 - KM(horizon)`` from lifelines' Kaplan-Meier estimator, which handles
patients censored before the horizon, with its pointwise confidence interval. This is the
grouped calibration plot of survival models (D'Agostino & Nam 2003; Austin, Harrell & van Klaveren
2020, Stat. Med. 39:2714), as in seed-3 Fig. 2. A perfectly calibrated model puts the
points on the diagonal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

__all__ = ["MIN_PER_BIN", "n_calibration_bins", "calibration_table"]

#: Fewest patients a calibration group should hold; fewer patients give fewer groups.
MIN_PER_BIN = 10

_COLUMNS = ["bin", "n", "events", "predicted", "observed", "observed_lo", "observed_hi"]


def n_calibration_bins(n_patients: int, n_bins: int, min_per_bin: int = MIN_PER_BIN) -> int:
    """Number of groups: ``n_bins``, or fewer so that each holds about ``min_per_bin``
    patients (at least one group when there is any patient)."""
    if n_patients == 0:
        return 0
    return int(max(1, min(n_bins, n_patients // min_per_bin)))


def _km_event_probability(
    time: np.ndarray, event: np.ndarray, horizon_days: float, alpha: float
) -> tuple[float, float, float]:
    """``1 - KM(horizon)`` and its ``1 - alpha`` interval (lifelines' exponential Greenwood);
    NaN when the group's follow-up ends before the horizon with the estimate still above 0
    (the Kaplan-Meier estimate is not identified there)."""
    kmf = KaplanMeierFitter(alpha=alpha).fit(time, event)
    sf = kmf.survival_function_.iloc[:, 0]
    known = sf.index.to_numpy(float) <= horizon_days
    s = float(sf.to_numpy()[known][-1])
    if float(np.max(time)) < horizon_days and s > 0:
        return float("nan"), float("nan"), float("nan")
    ci = kmf.confidence_interval_survival_function_.to_numpy(float)[known][-1]
    lo, hi = np.nan_to_num(ci, nan=s)  # lifelines leaves the interval NaN where S is 0 or 1
    return 1.0 - s, 1.0 - float(hi), 1.0 - float(lo)


def calibration_table(
    time: np.ndarray,
    event: np.ndarray,
    surv_at_horizon: np.ndarray,
    horizon_days: float,
    n_bins: int = 5,
    alpha: float = 0.05,
    min_per_bin: int = MIN_PER_BIN,
) -> pd.DataFrame:
    """Grouped calibration of predicted event probabilities by ``horizon_days``.

    Parameters
    ----------
    time, event
        Observed follow-up (days) and event indicator (0/1) of the evaluated patients, shape (n,).
    surv_at_horizon
        Each patient's predicted survival ``S(horizon | x)``, shape (n,); NaN rows are left out.
    n_bins
        Quantile groups of the predicted event probability (fewer when there are fewer than
        ``n_bins * min_per_bin`` patients, or when ties merge quantiles).
    alpha
        The observed probability's interval is at level ``1 - alpha``.

    Returns
    -------
    One row per group, ordered by predicted probability: ``bin`` (0-based), ``n``, ``events``
    (all events in the group, any time), ``predicted`` (mean ``1 - S(horizon | x)``),
    ``observed`` (``1 - KM(horizon)``) and its interval ``observed_lo``/``observed_hi``.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, int)
    pred = 1.0 - np.asarray(surv_at_horizon, float)
    keep = np.isfinite(pred)
    time, event, pred = time[keep], event[keep], pred[keep]
    k = n_calibration_bins(len(pred), n_bins, min_per_bin)
    if k == 0:
        return pd.DataFrame(columns=_COLUMNS)
    # quantile groups of the predicted probability; ties may merge neighbouring groups
    codes = pd.qcut(pred, k, labels=False, duplicates="drop") if k > 1 else np.zeros(len(pred))
    codes = np.asarray(codes, int)
    rows = []
    for b, code in enumerate(np.unique(codes)):
        inside = codes == code
        obs, lo, hi = _km_event_probability(time[inside], event[inside], horizon_days, alpha)
        rows.append(
            {
                "bin": b,
                "n": int(inside.sum()),
                "events": int(event[inside].sum()),
                "predicted": float(pred[inside].mean()),
                "observed": obs,
                "observed_lo": lo,
                "observed_hi": hi,
            }
        )
    return pd.DataFrame(rows, columns=_COLUMNS)
