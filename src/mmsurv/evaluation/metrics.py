"""Survival metrics (lifelines, scikit-survival) and the classification AUC (scikit-learn).

Conventions: ``risk`` is higher for worse prognosis; ``time`` in days; ``event`` 0/1.

The inverse-probability-of-censoring weights of Uno's C, the Brier score and the time-dependent
AUC need a Kaplan-Meier estimate of the censoring distribution that covers every evaluated time.
The *reference* sample passed as ``ref_time``/``ref_event`` is the fold's training patients
together with the evaluated patients (see :func:`censoring_reference`): the censoring estimate is
a nuisance of the metric, not something a model is chosen on, and a training-only estimate fails
for any test patient followed longer than every training patient.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
from lifelines.utils import concordance_index
from sklearn.metrics import roc_auc_score
from sksurv.metrics import (
    brier_score,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.util import Surv

__all__ = [
    "censoring_reference",
    "surv_array",
    "harrell_c",
    "bootstrap_c_samples",
    "bootstrap_c_interval",
    "uno_c",
    "eval_times",
    "integrated_brier",
    "brier_at",
    "mean_td_auc",
    "binary_auc",
    "bootstrap_auc_interval",
]

log = logging.getLogger(__name__)


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C (lifelines); NaN when no pair is comparable.

    lifelines scores agreement of *predicted survival* with time, so the risk is negated.
    """
    if np.sum(event) == 0 or len(time) < 2:
        return float("nan")
    try:
        return float(concordance_index(time, -np.asarray(risk, float), event))
    except ZeroDivisionError:  # lifelines: "No admissable pairs in the dataset."
        return float("nan")


def bootstrap_c_samples(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
) -> np.ndarray:
    """Harrell's C over ``n_boot`` bootstrap resamples of *patients*, shape (m,), m <= n_boot.

    Parameters
    ----------
    groups
        Patient id of each row, shape (n,); rows of one patient (several slides) are drawn
        together, so the spread reflects patient-level uncertainty.
    n_boot
        Number of resamples (0 gives an empty array). Resamples without a comparable pair are
        left out, so fewer than ``n_boot`` values may come back.
    """
    rng = np.random.default_rng(seed)
    patients, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(patients))]
    stats = []
    for _ in range(n_boot):
        draw = rng.integers(0, len(patients), len(patients))
        idx = np.concatenate([members[k] for k in draw])
        c = harrell_c(time[idx], event[idx], risk[idx])
        if not np.isnan(c):
            stats.append(c)
    return np.asarray(stats, float)


def bootstrap_c_interval(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    groups: np.ndarray,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Percentile interval and standard deviation of Harrell's C over one set of patient
    bootstrap resamples (:func:`bootstrap_c_samples`).

    Returns
    -------
    ``(lo, hi, sd)``: the ``level`` percentile interval and the SD (ddof=1) of the resampled
    C-indices, the "C-index (SD)" of seed-3 Table 3. All NaN when ``n_boot`` is 0 or fewer than
    ``max(10, n_boot // 10)`` resamples had a comparable pair.
    """
    stats = bootstrap_c_samples(time, event, risk, groups, n_boot, seed)
    if n_boot == 0 or len(stats) < max(10, n_boot // 10):
        return float("nan"), float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi), float(np.std(stats, ddof=1))


def surv_array(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """scikit-survival's structured (event, time) array of ``time`` (days) and ``event`` (0/1)."""
    return Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))


def censoring_reference(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    same: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Times and events from which the censoring distribution is estimated: the training
    patients plus the evaluated ones (only the training ones when ``same``: they are the
    evaluated ones)."""
    if same:
        return train_time, train_event
    return np.concatenate([train_time, time]), np.concatenate([train_event, event])


def uno_c(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
) -> float:
    """Uno's IPCW C-index (scikit-survival), truncated at the last evaluated event time."""
    if np.sum(event) == 0 or len(time) < 2:
        return float("nan")
    tau = float(np.max(time[event.astype(bool)]))
    try:
        c, *_ = concordance_index_ipcw(
            surv_array(ref_time, ref_event), surv_array(time, event), risk, tau=tau
        )
    except ValueError as err:
        log.warning("Uno's C not computable: %s", err)
        return float("nan")
    return float(c)


def eval_times(
    time: np.ndarray,
    event: np.ndarray,
    quantiles: tuple[float, float],
    n_times: int,
    upper: float = np.inf,
) -> np.ndarray:
    """Time points (days) for the Brier score and time-dependent AUC: ``n_times`` evenly spaced
    between the given quantiles of the evaluated patients' event times, strictly inside their
    follow-up and not beyond ``upper`` (the last training time: models know nothing later)."""
    event_times = time[event.astype(bool)]
    if len(event_times) == 0:
        return np.array([])
    lo, hi = np.quantile(event_times, quantiles)
    times = np.unique(np.linspace(lo, hi, n_times))
    return times[(times >= np.min(time)) & (times < np.max(time)) & (times <= upper)]


def integrated_brier(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    surv: np.ndarray,
    times: np.ndarray,
) -> float:
    """Integrated Brier score (scikit-survival) of survival predictions ``surv`` (n, len(times))."""
    if len(times) < 2:
        return float("nan")
    try:
        return float(
            integrated_brier_score(
                surv_array(ref_time, ref_event), surv_array(time, event), surv, times
            )
        )
    except ValueError as err:
        log.warning("integrated Brier score not computable: %s", err)
        return float("nan")


def brier_at(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    surv: np.ndarray,
    horizon_days: float,
) -> float:
    """Brier score at ``horizon_days`` (scikit-survival ``brier_score``, Graf et al. 1999).

    Each evaluated patient's squared error between the predicted survival ``surv`` (shape (n,),
    S(horizon | x)) and the observed status at the horizon, weighted by the inverse probability
    of censoring estimated (Kaplan-Meier) on ``ref_time``/``ref_event``; patients censored
    before the horizon carry no weight. NaN when the horizon is not strictly inside the
    evaluated patients' follow-up (sksurv needs ``min(time) <= horizon < max(time)``), when
    ``surv`` has missing values, or when the censoring estimate is undefined there.
    """
    surv = np.asarray(surv, float)
    if len(time) < 2 or not np.isfinite(surv).all():
        return float("nan")
    if not (np.min(time) <= horizon_days < np.max(time)):
        return float("nan")
    try:
        _, score = brier_score(
            surv_array(ref_time, ref_event), surv_array(time, event), surv[:, None], [horizon_days]
        )
    except ValueError as err:
        log.warning("Brier score at %g days not computable: %s", horizon_days, err)
        return float("nan")
    return float(score[0])


def mean_td_auc(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    times: np.ndarray,
) -> float:
    """Mean cumulative/dynamic time-dependent AUC (scikit-survival) over ``times``."""
    if len(times) < 1:
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _, mean_auc = cumulative_dynamic_auc(
                surv_array(ref_time, ref_event), surv_array(time, event), risk, times
            )
    except ValueError as err:
        log.warning("time-dependent AUC not computable: %s", err)
        return float("nan")
    return float(mean_auc)


def binary_auc(label: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of ``score`` for a 0/1 ``label`` (scikit-learn).

    Rows with a missing label or score are left out; NaN when fewer than one of each class
    remains.
    """
    label, score = np.asarray(label, float), np.asarray(score, float)
    ok = np.isfinite(label) & np.isfinite(score)
    if len(np.unique(label[ok])) < 2:
        return float("nan")
    return float(roc_auc_score(label[ok].astype(int), score[ok]))


def bootstrap_auc_interval(
    label: np.ndarray, score: np.ndarray, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of :func:`binary_auc` over ``n_boot`` resamples of the labelled rows.

    One row per patient is expected (classification predictions are patient-level). NaN when
    ``n_boot`` is 0 or fewer than ``max(10, n_boot // 10)`` resamples hold both classes.
    """
    label, score = np.asarray(label, float), np.asarray(score, float)
    ok = np.flatnonzero(np.isfinite(label) & np.isfinite(score))
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = ok[rng.integers(0, len(ok), len(ok))] if len(ok) else ok
        auc = binary_auc(label[idx], score[idx])
        if not np.isnan(auc):
            stats.append(auc)
    if n_boot == 0 or len(stats) < max(10, n_boot // 10):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
