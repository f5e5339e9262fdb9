"""Elastic-net Cox on RNA: planted gene module, constant genes, survival curves, pickling."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.rna_cox import RNACoxnetModel


def _patients(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Logged expression of 60 genes; genes 0-4 carry a module driving an exponential hazard;
    genes c0-c2 are constant; gene ``off`` is never expressed."""
    rng = np.random.default_rng(seed)
    module = rng.normal(size=n)
    expr = rng.normal(6.0, 1.0, size=(n, 60))
    expr[:, :5] += 1.5 * module[:, None]
    X = pd.DataFrame(expr, columns=[f"rna:g{j}" for j in range(60)])
    for j in range(3):
        X[f"rna:c{j}"] = 4.0 + j
    X["rna:off"] = 0.0
    X.insert(0, "patient_id", [f"P{i}" for i in range(n)])
    X.index = X["patient_id"].to_numpy()
    t = rng.exponential(365.0 * np.exp(-2.0 * module))
    c = rng.exponential(3 * 365.0, size=n)
    return X, np.minimum(t, c).round(1), (t <= c).astype(int)


def test_coxnet_learns_planted_module():
    X, time, event = _patients()
    # keep every expressed gene: the selection itself is tested in tests/omics/test_rna.py
    model = RNACoxnetModel(n_top_genes=100).fit(X.iloc[:160], time[:160], event[:160])
    risk = model.predict_risk(X.iloc[160:])
    assert risk.shape == (80,) and np.isfinite(risk).all()
    assert harrell_c(time[160:], event[160:], risk) > 0.7
    top = sorted(model.describe()["coefficients"].items(), key=lambda kv: -abs(kv[1]))[:5]
    assert sum(g in {f"g{j}" for j in range(5)} for g, _ in top) >= 4


def test_coxnet_with_constant_genes_and_survival_curves(tmp_path):
    X, time, event = _patients(n=120)
    model = RNACoxnetModel(n_top_genes=1000, alpha=0.1).fit(X.iloc[:90], time[:90], event[:90])
    genes = model.rna_prep.genes_
    assert {"c0", "c1", "c2"} <= set(genes) and "off" not in genes  # all 63 expressed kept
    assert len(genes) == 63
    coef = dict(zip(genes, model.coxnet.coef_[:, 0], strict=True))
    assert coef["c0"] == coef["c1"] == coef["c2"] == 0.0
    times = np.array([0.0, 50.0, 300.0, 1000.0, 1e5])
    surv = model.predict_survival(X.iloc[90:], times)
    assert surv.shape == (30, 5) and surv.min() >= 0 and surv.max() <= 1
    assert np.all(np.diff(surv, axis=1) <= 1e-12) and (surv[:, 0] == 1).all()
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(loaded.predict_risk(X.iloc[90:]), model.predict_risk(X.iloc[90:]))


def test_coxnet_validation_keyword_and_bad_parameters():
    X, time, event = _patients(n=60)
    model = RNACoxnetModel(n_top_genes=10)
    model.fit(X.iloc[:40], time[:40], event[:40], validation=(X.iloc[40:], time[40:], event[40:]))
    assert model.describe()["n_genes"] == 10
    with pytest.raises(ValueError, match="l1_ratio"):
        RNACoxnetModel(l1_ratio=0.0)
