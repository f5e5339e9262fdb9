"""Calibration at a horizon: hand-made exponential cohorts with known survival."""

from __future__ import annotations

import numpy as np
import pytest

from mmsurv.evaluation.calibration import calibration_table, n_calibration_bins

HORIZON = 365.0


def _exponential(n=3000, seed=0):
    """Exponential times with hazard exp(x) / 500 per day and uniform censoring; the true
    survival at the horizon is exp(-HORIZON exp(x) / 500)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(500 * np.exp(-x))
    c = rng.uniform(0, 2000, n)
    return np.minimum(t, c), (t <= c).astype(int), x


@pytest.mark.parametrize(
    ("n", "bins", "expected"), [(0, 5, 0), (7, 5, 1), (25, 5, 2), (50, 5, 5), (5000, 5, 5)]
)
def test_number_of_bins_shrinks_with_few_patients(n, bins, expected):
    assert n_calibration_bins(n, bins) == expected


def test_calibrated_model_lies_on_the_diagonal():
    time, event, x = _exponential()
    surv = np.exp(-HORIZON * np.exp(x) / 500)
    table = calibration_table(time, event, surv, HORIZON, n_bins=5)
    assert list(table["bin"]) == [0, 1, 2, 3, 4] and table["n"].sum() == len(time)
    assert table["predicted"].is_monotonic_increasing
    assert np.abs(table["observed"] - table["predicted"]).max() < 0.05
    inside = (table["observed_lo"] <= table["predicted"]) & (
        table["predicted"] <= table["observed_hi"]
    )
    assert inside.sum() >= 4  # 95% intervals
    assert (table["observed_lo"] < table["observed"]).all()
    assert (table["observed"] < table["observed_hi"]).all()


def test_overpredicting_model_lies_below_the_diagonal():
    time, event, x = _exponential()
    doubled = np.exp(-HORIZON * 2 * np.exp(x) / 500)  # twice the true hazard
    table = calibration_table(time, event, doubled, HORIZON, n_bins=5)
    assert (table["observed"] < table["predicted"] - 0.03).all()
    halved = np.exp(-HORIZON * 0.5 * np.exp(x) / 500)
    table = calibration_table(time, event, halved, HORIZON, n_bins=5)
    assert (table["observed"] > table["predicted"] + 0.02).all()


def test_follow_up_ending_before_horizon_gives_nan():
    time = np.array([10.0, 20.0, 30.0, 40.0])
    event = np.array([1, 0, 1, 0])
    table = calibration_table(time, event, np.full(4, 0.8), 100.0, n_bins=5, min_per_bin=1)
    assert table["observed"].isna().all()
    table = calibration_table(time, event, np.full(4, 0.8), 35.0, n_bins=1, min_per_bin=1)
    # KM: 1 - (3/4)(1/2) at 35 days
    assert table["observed"].iloc[0] == pytest.approx(1 - 0.75 * 0.5)
    assert table["predicted"].iloc[0] == pytest.approx(0.2)


def test_missing_predictions_are_left_out():
    time, event, x = _exponential(200)
    surv = np.exp(-HORIZON * np.exp(x) / 500)
    surv[:50] = np.nan
    table = calibration_table(time, event, surv, HORIZON, n_bins=5)
    assert table["n"].sum() == 150
