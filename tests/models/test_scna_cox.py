"""The SCNA-only Cox baseline (seed 2): PCA on the right samples, signal found, pickles."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from lifelines.utils import concordance_index

from mmsurv.models.scna_cox import SCNACoxModel

ARMS = {"7p": 15, "10q": 15, "1p": 10, "19q": 10}


def _cohort(n: int, seed: int, prefix: str = "P") -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``scna:{gene}`` table of n patients in which the chr7p arm drives the hazard.

    Each arm is gained (+1), lost (-1) or neutral as a whole, plus per-gene noise; the hazard
    is exp(1.2 * state of 7p), highest for a gain. Returns X (index patient id), time (days)
    and event (0/1).
    """
    rng = np.random.default_rng(seed)
    columns, blocks, state = [], [], {}
    for arm, n_genes in ARMS.items():
        state[arm] = rng.choice([-1.0, 0.0, 1.0], n, p=[0.25, 0.5, 0.25])
        blocks.append(state[arm][:, None] + rng.normal(0, 0.3, (n, n_genes)))
        columns += [f"scna:{arm}_g{j}" for j in range(n_genes)]
    X = pd.DataFrame(
        np.hstack(blocks),
        index=pd.Index([f"{prefix}{i:03d}" for i in range(n)], name="patient_id"),
        columns=columns,
    )
    hazard = np.exp(1.2 * state["7p"])
    t = rng.exponential(500 / hazard)
    c = rng.exponential(1500, n)
    return X, np.minimum(t, c).round(1), (t <= c).astype(int)


def test_planted_chr7_gain_is_found_on_held_out_patients():
    X, time, event = _cohort(240, seed=0)
    train, test = slice(0, 160), slice(160, 240)
    model = SCNACoxModel(n_components=5, penalizer=0.1).fit(X[train], time[train], event[train])
    risk = model.predict_risk(X[test])
    assert risk.shape == (80,)
    c_index = concordance_index(time[test], -risk, event[test])
    assert c_index > 0.6


@pytest.mark.parametrize("pca_extra", [True, False])
def test_pca_is_fitted_on_training_patients_and_extra_only_when_asked(pca_extra):
    X, time, event = _cohort(60, seed=1)
    extra, _, _ = _cohort(20, seed=2, prefix="X")
    model = SCNACoxModel(pca_extra=pca_extra).fit(X, time, event, extra=extra)
    expected = list(X.index) + (list(extra.index) if pca_extra else [])
    assert model.pca_.fitted_ids_ == expected
    info = model.describe()
    assert info["n_pca_samples"] == len(expected)
    assert info["n_pca_extra"] == (20 if pca_extra else 0)
    assert info["n_components"] == 5 and len(info["explained_variance_ratio"]) == 5
    assert info["params"] == {"n_components": 5, "penalizer": 0.1, "pca_extra": pca_extra}


def test_extra_patients_that_are_training_patients_are_rejected():
    X, time, event = _cohort(30, seed=3)
    with pytest.raises(ValueError, match="extra SCNA patient.*training patients"):
        SCNACoxModel(pca_extra=True).fit(X, time, event, extra=X.iloc[:3])


def test_survival_has_the_right_shape_and_falls_with_time():
    X, time, event = _cohort(80, seed=4)
    model = SCNACoxModel(n_components=3).fit(X[:60], time[:60], event[:60])
    times = np.array([10.0, 100.0, 400.0, 1000.0])
    surv = model.predict_survival(X[60:], times)
    assert surv.shape == (20, 4)
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()


def test_model_pickles_with_joblib(tmp_path):
    X, time, event = _cohort(50, seed=5)
    model = SCNACoxModel(n_components=4, pca_extra=True).fit(X[:40], time[:40], event[:40])
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_allclose(loaded.predict_risk(X[40:]), model.predict_risk(X[40:]))
    times = np.array([50.0, 500.0])
    np.testing.assert_allclose(
        loaded.predict_survival(X[40:], times), model.predict_survival(X[40:], times)
    )
