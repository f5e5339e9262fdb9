"""Metrics: sign conventions, patient bootstrap, agreement with the libraries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.metrics import concordance_index_censored

from mmsurv.evaluation.evaluate import METRIC_COLUMNS, evaluate_experiment
from mmsurv.evaluation.metrics import (
    bootstrap_c_interval,
    bootstrap_c_samples,
    brier_at,
    censoring_reference,
    eval_times,
    harrell_c,
    integrated_brier,
    uno_c,
)
from mmsurv.evaluation.risk_groups import assign_risk_groups, logrank_p, plot_km


def _cohort(n=120, seed=0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    t = rng.exponential(500 * np.exp(-risk))
    c = rng.exponential(1500, n)
    return np.minimum(t, c), (t <= c).astype(int), risk


def test_harrell_c_higher_risk_is_worse():
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.ones(4, int)
    assert harrell_c(time, event, np.array([4.0, 3.0, 2.0, 1.0])) == 1.0
    assert harrell_c(time, event, np.array([1.0, 2.0, 3.0, 4.0])) == 0.0


def test_harrell_c_matches_scikit_survival():
    t, e, r = _cohort()
    ours = harrell_c(t, e, r)
    theirs = concordance_index_censored(e.astype(bool), t, r)[0]
    assert ours == pytest.approx(theirs, abs=1e-9)
    assert harrell_c(t, np.zeros_like(e), r) != harrell_c(t, np.zeros_like(e), r)  # NaN


def test_bootstrap_interval_brackets_estimate_and_resamples_patients():
    t, e, r = _cohort()
    c = harrell_c(t, e, r)
    lo, hi, sd = bootstrap_c_interval(t, e, r, np.arange(len(t)), 300, seed=0)
    assert lo < c < hi and hi - lo < 0.25
    # the SD comes from the same resamples as the interval
    samples = bootstrap_c_samples(t, e, r, np.arange(len(t)), 300, seed=0)
    assert len(samples) == 300 and sd == pytest.approx(np.std(samples, ddof=1))
    assert (lo, hi) == tuple(np.quantile(samples, [0.025, 0.975]))
    assert 0 < sd < (hi - lo) / 2
    # duplicating every row under the same patient must not narrow the interval
    groups = np.repeat(np.arange(len(t)), 2)
    lo2, hi2, _ = bootstrap_c_interval(
        np.repeat(t, 2), np.repeat(e, 2), np.repeat(r, 2), groups, 300, seed=0
    )
    assert (hi2 - lo2) > 0.8 * (hi - lo)
    assert bootstrap_c_interval(t, e, r, np.arange(len(t)), 300, seed=0) == (lo, hi, sd)
    assert all(np.isnan(bootstrap_c_interval(t, e, r, np.arange(len(t)), 0, seed=0)))


def test_uno_c_close_to_harrell_without_heavy_censoring():
    t, e, r = _cohort(400)
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    u = uno_c(*ref, t[300:], e[300:], r[300:])
    assert abs(u - harrell_c(t[300:], e[300:], r[300:])) < 0.06
    assert uno_c(*ref, t[300:], e[300:], -r[300:]) < 0.5


def test_censoring_reference_covers_long_test_follow_up():
    t, e, r = _cohort(200)
    order = np.argsort(t)
    train, test = order[:150], order[150:]  # every test patient outlives the training ones
    ref = censoring_reference(t[train], e[train], t[test], e[test])
    assert len(ref[0]) == 200 and ref[0].max() == t.max()
    assert not np.isnan(uno_c(*ref, t[test], e[test], r[test]))
    same = censoring_reference(t[train], e[train], t[train], e[train], same=True)
    assert len(same[0]) == 150


def test_eval_times_inside_follow_up():
    t, e, _ = _cohort()
    times = eval_times(t[60:], e[60:], (0.1, 0.8), 15)
    assert len(times) >= 5
    assert times.min() >= t[60:].min() and times.max() < t[60:].max()


def test_integrated_brier_better_for_informative_model():
    t, e, r = _cohort(400)
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    times = eval_times(t[300:], e[300:], (0.1, 0.8), 10)
    informative = np.exp(-np.outer(np.exp(r[300:]), times) / 500)
    flat = np.exp(-np.outer(np.ones(100), times) / 700)
    good = integrated_brier(*ref, t[300:], e[300:], informative, times)
    bad = integrated_brier(*ref, t[300:], e[300:], flat, times)
    assert 0 < good < bad < 0.5


def test_brier_at_horizon_from_scikit_survival():
    t, e, r = _cohort(400)
    ref = censoring_reference(t[:300], e[:300], t[300:], e[300:])
    h = float(np.median(t[300:]))
    informative = np.exp(-np.exp(r[300:]) * h / 500)
    flat = np.full(100, np.exp(-h / 700))
    good = brier_at(*ref, t[300:], e[300:], informative, h)
    bad = brier_at(*ref, t[300:], e[300:], flat, h)
    assert 0 < good < bad < 1
    # the horizon must lie inside the evaluated patients' follow-up
    assert np.isnan(brier_at(*ref, t[300:], e[300:], informative, t[300:].max() + 1))
    assert np.isnan(brier_at(*ref, t[300:], e[300:], informative, t[300:].min() - 1))
    assert np.isnan(brier_at(*ref, t[300:], e[300:], np.full(100, np.nan), h))


def _predictions(fold_shift=0.0):
    t, e, r = _cohort(150)
    split = np.array(["train"] * 100 + ["val"] * 10 + ["test"] * 40)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(150)],
            "slide_id": "",
            "endpoint": "os",
            "fold": 0,
            "split": split,
            "risk": r + fold_shift,
            "time": t,
            "event": e,
        }
    )


def test_risk_group_cut_comes_from_training_risks_only():
    preds = _predictions()
    a = assign_risk_groups(preds, 0.5)
    changed = preds.copy()
    changed.loc[changed["split"] == "test", "risk"] += 10.0  # test risks shift
    b = assign_risk_groups(changed, 0.5)
    train = a["split"] == "train"
    assert (a.loc[train, "group"] == b.loc[train, "group"]).all()
    assert (b.loc[~train & (b["split"] == "test"), "group"] == "high").all()
    assert (a.loc[train, "group"] == "high").sum() == 50


def test_logrank_separates_planted_groups():
    preds = assign_risk_groups(_predictions(), 0.5)
    assert logrank_p(preds[preds["split"] == "train"]) < 0.01


def _curves(preds, n_grid=100):
    """Long survival curves of the true model S(t | x) = exp(-t exp(risk) / 500) on each fold's
    grid (0 to the last training time), as the training stage stores them."""
    rows = []
    for fold, part in preds.groupby("fold"):
        grid = np.linspace(0, part.loc[part["split"] == "train", "time"].max(), n_grid)
        surv = np.exp(-np.outer(np.exp(part["risk"].to_numpy()), grid) / 500)
        rows.append(
            pd.DataFrame(
                {
                    "patient_id": np.repeat(part["patient_id"].to_numpy(), n_grid),
                    "endpoint": np.repeat(part["endpoint"].to_numpy(), n_grid),
                    "split": np.repeat(part["split"].to_numpy(), n_grid),
                    "time": np.tile(grid, len(part)),
                    "survival": surv.ravel(),
                    "fold": fold,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


_EV = {
    "bootstrap": 50,
    "time_quantiles": [0.1, 0.8],
    "n_times": 10,
    "risk_group_quantile": 0.5,
    "horizon_days": 365,
    "calibration_bins": 5,
}


def test_evaluate_experiment_brier_and_sd_columns():
    preds = _predictions()
    m = evaluate_experiment("x", preds, _curves(preds), {"seed": 0, "evaluation": _EV})
    assert list(m.columns[-6:-3]) == ["c_index_sd", "brier", "horizon_days"]
    assert list(m.columns[-3:]) == ["auc_lo", "auc_hi", "n_labeled"]  # classification only
    assert m["auc"].isna().all() and (m["n_labeled"] == 0).all()
    for _, row in m.iterrows():
        assert 0 <= row["brier"] <= 1 and row["c_index_sd"] > 0
        assert row["horizon_days"] == 365 and 0 < row["ibs"] < 1
    # without survival curves: no Brier score; without bootstrap: no SD
    none = evaluate_experiment("x", preds, None, {"seed": 0, "evaluation": _EV})
    assert none["brier"].isna().all() and none["c_index_sd"].notna().all()
    no_boot = evaluate_experiment(
        "x", preds, None, {"seed": 0, "evaluation": _EV | {"bootstrap": 0}}
    )
    assert no_boot["c_index_sd"].isna().all()


def test_evaluate_experiment_brier_nan_beyond_follow_up():
    preds = _predictions()
    beyond = float(preds["time"].max()) + 1.0
    ev = _EV | {"horizon_days": beyond}
    m = evaluate_experiment("x", preds, _curves(preds), {"seed": 0, "evaluation": ev})
    assert m["brier"].isna().all() and m["ibs"].notna().all()
    assert (m["horizon_days"] == beyond).all()


def test_evaluate_experiment_columns_and_oracle(tmp_path):
    preds = _predictions()
    truth = pd.DataFrame({"patient_id": preds["patient_id"], "risk": preds["risk"]})
    cfg = {
        "seed": 0,
        "evaluation": {
            "bootstrap": 50,
            "time_quantiles": [0.1, 0.8],
            "n_times": 10,
            "risk_group_quantile": 0.5,
        },
    }
    m = evaluate_experiment("x", preds, None, cfg, truth)
    assert list(m.columns) == METRIC_COLUMNS
    assert list(m["split"]) == ["train", "val", "test"]
    test = m.set_index("split").loc["test"]
    assert test["n"] == 40 and test["c_index"] == pytest.approx(test["c_index_oracle"])
    assert np.isnan(test["ibs"]) and np.isnan(test["auc"])
    plot_km(assign_risk_groups(preds, 0.5), "x", tmp_path / "km.png")
    assert (tmp_path / "km.png").read_bytes()[:4] == b"\x89PNG"


def test_binary_auc_matches_scikit_learn_and_ignores_missing_labels():
    from sklearn.metrics import roc_auc_score

    from mmsurv.evaluation.metrics import binary_auc, bootstrap_auc_interval

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80).astype(float)
    score = y + rng.normal(0, 1.0, 80)
    expected = roc_auc_score(y.astype(int), score)
    y_missing = y.copy()
    y_missing[:5] = np.nan
    assert binary_auc(y, score) == pytest.approx(expected)
    assert binary_auc(y_missing, score) == pytest.approx(
        roc_auc_score(y[5:].astype(int), score[5:])
    )
    assert np.isnan(binary_auc(np.ones(10), np.arange(10.0)))  # one class: undefined
    lo, hi = bootstrap_auc_interval(y, score, 300, seed=1)
    assert lo < expected < hi and lo > 0.5
    assert all(np.isnan(v) for v in bootstrap_auc_interval(y, score, 0, seed=1))


def test_evaluate_experiment_auc_of_classification_predictions():
    from sklearn.metrics import roc_auc_score

    preds = _predictions()
    rng = np.random.default_rng(3)
    preds["label"] = rng.integers(0, 2, len(preds)).astype(float)
    preds.loc[preds.index[::7], "label"] = np.nan  # unknown labels are left out of the AUC
    preds["score"] = preds["label"].fillna(0.5) + rng.normal(0, 0.8, len(preds))
    m = evaluate_experiment("x", preds, _curves(preds), {"seed": 0, "evaluation": _EV})
    for _, row in m.iterrows():
        part = preds[(preds["split"] == row["split"]) & (preds["fold"] == row["fold"])]
        part = part[part["endpoint"] == row["endpoint"]].dropna(subset=["label"])
        assert row["n_labeled"] == len(part)
        assert row["auc"] == pytest.approx(roc_auc_score(part["label"].astype(int), part["score"]))
        assert row["auc_lo"] <= row["auc"] <= row["auc_hi"]
