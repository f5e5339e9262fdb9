"""Elastic-net Cox with internal CV: signal recovery, determinism, training-only CV, divergence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxnetSurvivalAnalysis

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.coxnet import CoxnetModel

N_FEATURES = 40
NUMERIC = [f"f{j}" for j in range(N_FEATURES)]


def _data(n: int = 240, seed: int = 0):
    """40 numeric features (3 with signal), one categorical, some missing values."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(n, N_FEATURES)) * 3.0 + 10.0,
        columns=NUMERIC,
        index=[f"P{i}" for i in range(n)],
    )
    X["site"] = rng.choice(["a", "b"], n)
    lp = 0.4 * (X["f0"] - 10) - 0.4 * (X["f1"] - 10) + 0.3 * (X["f2"] - 10)
    t = rng.exponential(800 * np.exp(-lp.to_numpy()))
    c = rng.exponential(2500, n)
    X.iloc[:6, 5] = np.nan
    return X, np.minimum(t, c), (t <= c).astype(int), lp.to_numpy()


def _model(**kwargs) -> CoxnetModel:
    params = {"n_alphas": 20, "seed": 3}
    params.update(kwargs)
    return CoxnetModel(numeric=NUMERIC, categorical=["site"], **params)


@pytest.fixture(scope="module")
def fitted():
    X, t, e, lp = _data()
    model = _model().fit(X.iloc[:160], t[:160], e[:160])
    return model, (X, t, e, lp)


def test_beats_chance_on_held_out_patients_and_risk_direction(fitted):
    model, (X, t, e, lp) = fitted
    risk = model.predict_risk(X.iloc[160:])
    assert risk.shape == (80,) and np.isfinite(risk).all()
    assert harrell_c(t[160:], e[160:], risk) > 0.65
    # higher risk = worse: risk follows the true linear predictor
    assert np.corrcoef(risk, lp[160:])[0, 1] > 0.5
    coefs = model.describe()["coefficients"]
    assert coefs["f0"] > 0 and coefs["f1"] < 0 and coefs["f2"] > 0


def test_survival_curves_are_monotone_probabilities(fitted):
    model, (X, *_) = fitted
    times = np.array([0.0, 100.0, 500.0, 2000.0, 1e5])
    surv = model.predict_survival(X.iloc[160:], times)
    assert surv.shape == (80, 5)
    assert np.all(np.diff(surv, axis=1) <= 1e-12)
    assert surv.min() >= 0 and surv.max() <= 1 + 1e-12 and surv[:, 0].min() > 0.95
    assert model.predict_survival(X.iloc[:0], times).shape == (0, 5)


def test_choice_and_cv_table_are_described(fitted):
    model, _ = fitted
    info = model.describe()
    assert info["l1_ratio"] in (0.1, 0.5, 0.9)
    assert info["alpha"] > 0 and 0.5 < info["cv_c_index"] <= 1
    table = pd.DataFrame(info["cv"]["table"])
    assert set(table["l1_ratio"]) == {0.1, 0.5, 0.9}
    chosen = table[(table["l1_ratio"] == info["l1_ratio"]) & (table["alpha"] == info["alpha"])]
    assert len(chosen) == 1
    assert chosen["c_index_mean"].iloc[0] == pytest.approx(table["c_index_mean"].max())
    assert {f"c_index_fold{k}" for k in range(5)} <= set(table.columns)
    assert 0 < info["n_nonzero"] <= info["n_features"] == N_FEATURES + 2


def test_selection_is_deterministic_for_a_seed():
    X, t, e, _ = _data(n=120, seed=1)
    a = _model(seed=7).fit(X, t, e).describe()
    b = _model(seed=7).fit(X, t, e).describe()
    assert (a["l1_ratio"], a["alpha"]) == (b["l1_ratio"], b["alpha"])
    pd.testing.assert_frame_equal(pd.DataFrame(a["cv"]["table"]), pd.DataFrame(b["cv"]["table"]))
    c = _model(seed=8).fit(X, t, e).describe()
    assert (
        pd.DataFrame(c["cv"]["table"])["c_index_fold0"]
        .ne(pd.DataFrame(a["cv"]["table"])["c_index_fold0"])
        .any()
    )  # another seed gives other folds


def test_cv_sees_the_training_rows_only(monkeypatch):
    X, t, e, _ = _data()
    sizes = []
    original = CoxnetSurvivalAnalysis.fit

    def spy(self, X_, y):
        sizes.append(len(X_))
        return original(self, X_, y)

    monkeypatch.setattr(CoxnetSurvivalAnalysis, "fit", spy)
    model = _model(l1_ratios=[0.5], cv_folds=4).fit(X.iloc[:100], t[:100], e[:100])
    cv = model.describe()["cv"]
    assert cv["n_samples"] == 100 and len(cv["folds"]) == 4
    assert all(f["n_train"] == 75 and f["n_val"] == 25 for f in cv["folds"])
    assert set(sizes) == {100, 75}  # path + final fit on all 100; folds on 75


def test_a_diverging_alpha_is_dropped(monkeypatch, caplog):
    X, t, e, _ = _data(n=120)
    original = CoxnetSurvivalAnalysis.fit
    probe = _model(l1_ratios=[0.5]).fit(X, t, e)
    path = probe.alpha_paths_[0.5]
    threshold = path[len(path) // 2]

    def fragile(self, X_, y):
        if self.alphas is not None and min(self.alphas) < threshold:
            raise ArithmeticError("Numerical error, because weights are too large.")
        return original(self, X_, y)

    monkeypatch.setattr(CoxnetSurvivalAnalysis, "fit", fragile)
    with caplog.at_level("WARNING", logger="mmsurv.models.coxnet"):
        model = _model(l1_ratios=[0.5]).fit(X, t, e)
    table = model.cv_results_
    assert table.loc[table["alpha"] < threshold, "diverged"].all()
    assert not table.loc[table["alpha"] >= threshold, "diverged"].any()
    assert model.alpha_ >= threshold
    assert "dropped" in caplog.text
    assert np.isfinite(model.predict_risk(X)).all()


def test_every_candidate_diverging_raises(monkeypatch):
    X, t, e, _ = _data(n=60)

    def broken(self, X_, y):
        raise ArithmeticError("Numerical error, because weights are too large.")

    monkeypatch.setattr(CoxnetSurvivalAnalysis, "fit", broken)
    with pytest.raises(ArithmeticError, match="diverges"):
        _model(l1_ratios=[0.5]).fit(X, t, e)


def test_a_diverging_path_is_shortened(monkeypatch):
    X, t, e, _ = _data(n=120)
    original = CoxnetSurvivalAnalysis.fit

    def weak_end_diverges(self, X_, y):
        if self.alphas is None and (self.alpha_min_ratio == "auto" or self.alpha_min_ratio < 1e-2):
            raise ArithmeticError("Numerical error, because weights are too large.")
        return original(self, X_, y)

    monkeypatch.setattr(CoxnetSurvivalAnalysis, "fit", weak_end_diverges)
    model = _model(l1_ratios=[0.9]).fit(X, t, e)
    path = model.alpha_paths_[0.9]
    assert path[-1] / path[0] >= 1e-2 * (1 - 1e-9)


@pytest.mark.parametrize(
    "kwargs",
    [{"l1_ratios": [0.0]}, {"l1_ratios": []}, {"cv_folds": 1}, {"alpha_min_ratio": "x"}],
)
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(ValueError):
        _model(**kwargs)


def test_single_l1_ratio_value_is_accepted():
    assert _model(l1_ratios=0.7).params["l1_ratios"] == [0.7]
