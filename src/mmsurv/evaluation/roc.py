"""Time-dependent ROC at a horizon and AUC(t), cumulative/dynamic definition.

At a horizon ``t`` the *cases* are the patients with an event by ``t`` (``T_i <= t``, event),
the *controls* those still event-free after ``t`` (``T_i > t``) (Heagerty & Zheng 2005,
Biometrics 61:92, "cumulative/dynamic"). A patient censored before ``t`` is neither; the
others are weighted by the inverse probability of being uncensored at their time,
``1 / G(T_i)`` for a case and ``1 / G(t)`` for a control, with ``G`` the Kaplan-Meier estimate
of the censoring distribution (Uno et al. 2007, JASA 102:527; Hung & Chiang 2010). The IPCW
true- and false-positive rates of a threshold ``c`` are

    TPR(c, t) = sum_i case_i 1(r_i > c) / G(T_i)  /  sum_i case_i / G(T_i)
    FPR(c, t) = sum_j control_j 1(r_j > c)        /  sum_j control_j

(the control weight ``1 / G(t)`` is the same for every control and cancels). These are the
points of a weighted ROC curve (scikit-learn ``roc_curve`` with ``sample_weight``); its area
is scikit-survival's ``cumulative_dynamic_auc`` at ``t`` (see its documentation,
"Time-dependent Area under the ROC").
"""

from __future__ import annotations

import logging
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.metrics import auc, roc_curve
from sksurv.metrics import cumulative_dynamic_auc
from sksurv.nonparametric import CensoringDistributionEstimator

from mmsurv.evaluation.metrics import surv_array

__all__ = ["TimeROC", "ipcw_weights", "roc_at", "auc_over_time"]

log = logging.getLogger(__name__)


class TimeROC(NamedTuple):
    """A cumulative/dynamic ROC curve at ``horizon_days``: false- and true-positive rates at
    decreasing ``thresholds`` of the risk, the area ``auc`` and the numbers of cases and
    controls (NaN area and empty arrays when either is missing)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    horizon_days: float
    n_cases: int
    n_controls: int


def ipcw_weights(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    horizon_days: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Case indicator and IPCW weight of each evaluated patient at ``horizon_days``.

    Returns
    -------
    ``(is_case, weight)``, shape (n,) each: ``weight`` is ``1 / G(T_i)`` for a case,
    ``1 / G(horizon)`` for a control and 0 for a patient censored before the horizon, with
    ``G`` scikit-survival's Kaplan-Meier censoring estimate fitted on ``ref_time``/``ref_event``
    (the fold's training patients plus the evaluated ones, see
    :func:`mmsurv.evaluation.metrics.censoring_reference`).

    Raises
    ------
    ValueError
        When ``G`` is zero or undefined at a needed time.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    is_case = (time <= horizon_days) & event
    is_control = time > horizon_days
    cens = CensoringDistributionEstimator().fit(surv_array(ref_time, ref_event))
    weight = np.zeros(len(time))
    if is_case.any():
        g_case = cens.predict_proba(time[is_case])
        if (g_case <= 0).any():
            raise ValueError("censoring survival is zero at a case's event time")
        weight[is_case] = 1.0 / g_case
    if is_control.any():
        g_t = float(cens.predict_proba(np.array([horizon_days]))[0])
        if g_t <= 0:
            raise ValueError(f"censoring survival is zero at the horizon {horizon_days:g}")
        weight[is_control] = 1.0 / g_t
    return is_case, weight


def roc_at(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    horizon_days: float,
) -> TimeROC:
    """Cumulative/dynamic IPCW ROC curve of ``risk`` (higher is worse) at ``horizon_days``.

    The curve's points are scikit-learn's weighted ``roc_curve`` on cases against controls
    with the weights of :func:`ipcw_weights`; its trapezoidal area equals scikit-survival's
    ``cumulative_dynamic_auc`` at the same horizon (tested to 1e-9).
    """
    risk = np.asarray(risk, float)
    empty = np.array([])
    try:
        is_case, weight = ipcw_weights(ref_time, ref_event, time, event, horizon_days)
    except ValueError as err:
        log.warning("ROC at %g days not computable: %s", horizon_days, err)
        return TimeROC(empty, empty, empty, float("nan"), horizon_days, 0, 0)
    use = (weight > 0) & np.isfinite(risk)
    n_cases = int((is_case & use).sum())
    n_controls = int((~is_case & use).sum())
    if n_cases == 0 or n_controls == 0:
        return TimeROC(empty, empty, empty, float("nan"), horizon_days, n_cases, n_controls)
    fpr, tpr, thresholds = roc_curve(is_case[use].astype(int), risk[use], sample_weight=weight[use])
    return TimeROC(fpr, tpr, thresholds, float(auc(fpr, tpr)), horizon_days, n_cases, n_controls)


def auc_over_time(
    ref_time: np.ndarray,
    ref_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative/dynamic AUC(t) of ``risk`` at each of ``times`` (days), scikit-survival
    ``cumulative_dynamic_auc``; ``(times, auc)``, both empty when it is not computable (no
    time, or a censoring estimate undefined at an evaluated time)."""
    times = np.asarray(times, float)
    if len(times) == 0:
        return np.array([]), np.array([])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scores, _ = cumulative_dynamic_auc(
                surv_array(ref_time, ref_event),
                surv_array(time, event),
                np.asarray(risk, float),
                times,
            )
    except ValueError as err:
        log.warning("AUC(t) not computable: %s", err)
        return np.array([]), np.array([])
    return np.unique(times), np.asarray(scores, float)
