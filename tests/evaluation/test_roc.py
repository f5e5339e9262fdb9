"""Time-dependent ROC: weighted scikit-learn ROC against scikit-survival's AUC."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.metrics import cumulative_dynamic_auc
from sksurv.util import Surv

from mmsurv.evaluation.metrics import censoring_reference
from mmsurv.evaluation.roc import auc_over_time, ipcw_weights, roc_at


def _cohort(n=400, seed=0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    t = rng.exponential(500 * np.exp(-risk))
    c = rng.exponential(1000, n)
    return np.minimum(t, c), (t <= c).astype(int), risk


def _sksurv_auc(ref, time, event, risk, horizon):
    scores, _ = cumulative_dynamic_auc(
        Surv.from_arrays(ref[1].astype(bool), ref[0]),
        Surv.from_arrays(event.astype(bool), time),
        risk,
        [horizon],
    )
    return scores[0]


@pytest.mark.parametrize("horizon", [100.0, 365.0, 700.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_roc_area_matches_scikit_survival(horizon, seed):
    t, e, r = _cohort(seed=seed)
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    roc = roc_at(*ref, t[300:], e[300:], r[300:], horizon)
    assert roc.auc == pytest.approx(_sksurv_auc(ref, t[300:], e[300:], r[300:], horizon), abs=1e-9)
    assert roc.fpr[0] == 0 and roc.tpr[-1] == pytest.approx(1) and roc.fpr[-1] == pytest.approx(1)
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert 0.6 < roc.auc < 0.95  # risk is informative
    assert roc_at(*ref, t[300:], e[300:], -r[300:], horizon).auc < 0.5


def test_roc_with_tied_risks_matches_scikit_survival():
    t, e, r = _cohort()
    r = np.round(r, 1)  # many ties
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    roc = roc_at(*ref, t[300:], e[300:], r[300:], 365.0)
    assert roc.auc == pytest.approx(_sksurv_auc(ref, t[300:], e[300:], r[300:], 365.0), abs=1e-9)


def test_ipcw_weights_cases_controls_and_censored():
    time = np.array([1.0, 2.0, 3.0, 5.0, 6.0])
    event = np.array([1, 0, 1, 0, 1])
    is_case, w = ipcw_weights(time, event, time, event, 4.0)
    assert list(is_case) == [True, False, True, False, False]
    # censoring KM: 1 until 2, then 3/4 (4 at risk at 2) until 5, then 3/4 * 1/2
    assert w == pytest.approx([1.0, 0.0, 1 / 0.75, 1 / 0.75, 1 / 0.75])


def test_roc_without_cases_is_nan():
    t, e, r = _cohort()
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    roc = roc_at(*ref, t[300:], e[300:], r[300:], 0.0)
    assert np.isnan(roc.auc) and roc.n_cases == 0 and len(roc.fpr) == 0


def test_auc_over_time_is_scikit_survival():
    t, e, r = _cohort()
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    times, aucs = auc_over_time(*ref, t[300:], e[300:], r[300:], np.array([200.0, 400.0]))
    assert list(times) == [200.0, 400.0]
    for h, a in zip(times, aucs, strict=True):
        assert a == pytest.approx(roc_at(*ref, t[300:], e[300:], r[300:], h).auc, abs=1e-9)
    assert auc_over_time(*ref, t[300:], e[300:], r[300:], np.array([]))[0].size == 0
