"""Torch survival models: contract, planted-signal learning, early stopping, pickling."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.mil import ABMILModel, AverageFusionModel, CrossAttentionModel, RNAMLPModel
from mmsurv.models.torch_model import TorchSurvivalModel, cox_loss

D = 8  # patch-feature dimension
G = 40  # genes
SIGNAL = np.eye(D)[0] * 3.0  # direction carried by the signal patches


def _write_bag(path: Path, features: np.ndarray) -> str:
    with h5py.File(path, "w") as f:
        f["features"] = features.astype(np.float32)
        f["coords"] = np.zeros((len(features), 2), dtype=np.int64)
    return str(path)


def _simulate(
    root: Path, n: int, beta_wsi: float, beta_rna: float, seed: int, slides_per_patient: int = 1
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Units (slides) with a planted hazard: the share of signal patches and an RNA module.

    Every patient has ``slides_per_patient`` slides (same RNA, time and event); each slide has
    12-40 patches, a share (0-50%) of which carry :data:`SIGNAL`. Genes 0-4 carry a module
    score; gene ``LOW`` is never expressed. Times follow an exponential hazard
    ``exp(beta_wsi * z(share) + beta_rna * z(module))`` with independent censoring.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    module = rng.normal(size=n)
    expr = rng.normal(6.0, 1.0, size=(n, G))
    expr[:, :5] += 1.5 * module[:, None]
    expr[:, -1] = 0.0  # gene LOW
    genes = [f"rna:g{j}" for j in range(G - 1)] + ["rna:LOW"]
    rows, shares, patient = [], [], []
    for i in range(n):
        for s in range(slides_per_patient):
            n_patches = int(rng.integers(12, 41))
            share = rng.uniform(0.0, 0.5)
            features = rng.normal(size=(n_patches, D))
            features[: round(share * n_patches)] += SIGNAL
            path = _write_bag(root / f"P{i}_{s}.h5", rng.permutation(features))
            rows.append({"slide": f"P{i}-S{s}", "patient_id": f"P{i}", "wsi": path})
            shares.append(round(share * n_patches) / n_patches)
            patient.append(i)
    shares_arr = np.asarray(shares)
    patient_arr = np.asarray(patient)
    # the patient's hazard uses the mean share over its slides
    p_share = pd.Series(shares_arr).groupby(patient_arr).mean().to_numpy()
    lp = beta_wsi * (p_share - p_share.mean()) / p_share.std() + beta_rna * module
    t = rng.exponential(365.0 * np.exp(-lp))
    c = rng.exponential(3 * 365.0, size=n)
    X = pd.DataFrame(rows).set_index("slide")
    X = X.join(pd.DataFrame(expr[patient_arr], index=X.index, columns=genes))
    time = np.minimum(t, c).round(1)[patient_arr]
    event = (t <= c).astype(int)[patient_arr]
    return X, time, event


def _split(X, time, event, n_train, n_val):
    tr, va = slice(0, n_train), slice(n_train, n_train + n_val)
    te = slice(n_train + n_val, len(X))
    return [(X.iloc[s], time[s], event[s]) for s in (tr, va, te)]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """250 one-slide patients, signal from both modalities (train 150 / val 50 / test 50)."""
    return _simulate(tmp_path_factory.mktemp("bags"), 250, 2.0, 2.0, seed=0)


TINY = {"epochs": 4, "batch_size": 32, "patience": 2}
MODELS = {
    "abmil": (ABMILModel, {"hidden": 8, "attn_dim": 4, "bag_size": 8} | TINY),
    "rna_mlp": (RNAMLPModel, {"n_top_genes": 20, "hidden": (8,)} | TINY),
    "average": (AverageFusionModel, {"n_top_genes": 20, "hidden": 8, "bag_size": 8} | TINY),
    "xattn": (CrossAttentionModel, {"n_top_genes": 20, "d_model": 8, "bag_size": 8} | TINY),
}


def _rna_only(X: pd.DataFrame) -> pd.DataFrame:
    return X.drop(columns="wsi")


@pytest.mark.parametrize("name", list(MODELS))
def test_contract_pickling_and_determinism(name, cohort, tmp_path):
    cls, params = MODELS[name]
    X, time, event = cohort
    if not cls.uses_wsi:
        X = _rna_only(X)
    (Xtr, ttr, etr), (Xva, tva, eva), (Xte, _, _) = _split(X, time, event, 100, 30)
    model = cls(**params, seed=4).fit(Xtr, ttr, etr, validation=(Xva, tva, eva))
    risk = model.predict_risk(Xte)
    assert risk.shape == (len(Xte),) and np.isfinite(risk).all()
    times = np.array([0.0, 100.0, 400.0, 2000.0, 1e5])
    surv = model.predict_survival(Xte, times)
    assert surv.shape == (len(Xte), len(times))
    assert surv.min() >= 0.0 and surv.max() <= 1.0
    assert np.all(np.diff(surv, axis=1) <= 1e-12)
    assert model._bag_cache == {}  # released after each call

    info = model.describe()
    assert set(info["history"][0]) == {"epoch", "train_loss", "val_loss", "val_c_index"}
    assert info["params"] == model.params and 1 <= info["best_epoch"] <= params["epochs"]

    model._bag_cache["planted"] = np.zeros((3, D), dtype=np.float32)
    joblib.dump(model, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    assert loaded._bag_cache == {}
    np.testing.assert_array_equal(loaded.predict_risk(Xte), risk)

    again = cls(**params, seed=4).fit(Xtr, ttr, etr, validation=(Xva, tva, eva))
    np.testing.assert_array_equal(again.predict_risk(Xte), risk)
    assert again.history_ == model.history_
    other = cls(**params, seed=5).fit(Xtr, ttr, etr, validation=(Xva, tva, eva))
    assert not np.array_equal(other.predict_risk(Xte), risk)


@pytest.mark.parametrize("name", ["abmil", "xattn"])
def test_attention_covers_all_patches(name, cohort):
    cls, params = MODELS[name]
    X, time, event = cohort
    model = cls(**params).fit(X.iloc[:80], time[:80], event[:80])
    att = model.predict_attention(X.iloc[80:90])
    assert list(att) == list(X.index[80:90])
    for unit, weights in att.items():
        with h5py.File(X.loc[unit, "wsi"]) as f:
            n_patches = f["features"].shape[0]
        assert weights.shape == (n_patches,)  # all patches, not a training-size sample
        assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-5


def test_early_stopping_restores_best_epoch(cohort, caplog):
    X, time, event = _rna_only(cohort[0]), cohort[1], cohort[2]
    (Xtr, ttr, etr), (Xva, tva, eva), _ = _split(X, time, event, 60, 60)
    # a wide net with a large step on few units overfits fast, so validation loss turns up
    model = RNAMLPModel(
        n_top_genes=39, hidden=(64,), dropout=0.0, lr=3e-2, epochs=40, batch_size=60, patience=3
    )
    with caplog.at_level(logging.INFO, logger="mmsurv.models.torch_model"):
        model.fit(Xtr, ttr, etr, validation=(Xva, tva, eva))
    val = np.array([h["val_loss"] for h in model.history_])
    assert model.stopped_early_ and len(val) < 40
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert len(val) == model.best_epoch_ + model.patience
    # the restored weights are the best epoch's: their validation loss is the minimum
    restored = float(cox_loss(torch.from_numpy(model.predict_risk(Xva)), eva, tva))
    assert restored == pytest.approx(val.min(), rel=1e-5)
    assert "restored epoch" in caplog.text


def test_without_validation_all_epochs_run(cohort, caplog):
    X, time, event = _rna_only(cohort[0]), cohort[1], cohort[2]
    model = RNAMLPModel(n_top_genes=20, hidden=8, epochs=3, batch_size=32)
    with caplog.at_level(logging.INFO, logger="mmsurv.models.torch_model"):
        model.fit(X.iloc[:60], time[:60], event[:60])
    assert [h["epoch"] for h in model.history_] == [1, 2, 3] and model.best_epoch_ == 3
    assert all(h["val_loss"] is None for h in model.history_)
    assert "no early stopping" in caplog.text


def test_batch_without_event_is_skipped(cohort):
    X, time, event = _rna_only(cohort[0]), cohort[1], cohort[2].copy()
    event[:] = 0
    event[0] = 1  # one event: with 30 units in batches of 2, most batches have none
    model = RNAMLPModel(n_top_genes=20, hidden=8, epochs=2, batch_size=2)
    model.fit(X.iloc[:30], time[:30], event[:30])
    assert all(np.isfinite(h["train_loss"]) for h in model.history_)
    assert np.isfinite(model.predict_risk(X.iloc[30:40])).all()


def test_slide_without_patches(cohort, tmp_path, caplog):
    cls, params = MODELS["xattn"]
    X, time, event = cohort
    X = X.iloc[:60].copy()
    X.loc[X.index[0], "wsi"] = _write_bag(tmp_path / "empty_a.h5", np.zeros((0, D)))
    X.loc[X.index[59], "wsi"] = _write_bag(tmp_path / "empty_b.h5", np.zeros((0, D)))
    with caplog.at_level(logging.WARNING, logger="mmsurv.models.torch_model"):
        model = cls(**params).fit(X.iloc[:50], time[:50], event[:50])
    assert model.excluded_units_ == [X.index[0]] and model.n_train_units_ == 49
    assert "without patches" in caplog.text
    risk = model.predict_risk(X.iloc[50:])
    assert np.isnan(risk[-1]) and np.isfinite(risk[:-1]).all()  # never a made-up value
    surv = model.predict_survival(X.iloc[50:], np.array([10.0, 100.0]))
    assert np.isnan(surv[-1]).all() and np.isfinite(surv[:-1]).all()
    assert model.predict_attention(X.iloc[59:])[X.index[59]].shape == (0,)


def test_rna_statistics_use_unique_patients(tmp_path):
    X, time, event = _simulate(tmp_path, 30, 1.0, 1.0, seed=1, slides_per_patient=2)
    model = AverageFusionModel(n_top_genes=10, hidden=8, epochs=1, batch_size=16)
    model.fit(X, time, event)
    assert model.rna_prep.n_samples_ == 30 and len(X) == 60
    assert "LOW" not in model.rna_prep.genes_


def test_bad_inputs_are_reported(cohort):
    X, time, event = cohort
    with pytest.raises(ValueError, match="missing RNA"):
        bad = X.iloc[:40].copy()
        bad.iloc[3, bad.columns.get_loc("rna:g1")] = np.nan
        RNAMLPModel(**MODELS["rna_mlp"][1]).fit(_rna_only(bad), time[:40], event[:40])
    with pytest.raises(FileNotFoundError, match="P0-S0"):
        bad = X.iloc[:40].copy()
        bad.loc["P0-S0", "wsi"] = "/nonexistent/slide.h5"
        ABMILModel(**MODELS["abmil"][1]).fit(bad, time[:40], event[:40])
    with pytest.raises(ValueError, match="duplicate"):
        doubled = pd.concat([X.iloc[:20], X.iloc[:20]])
        ABMILModel(**MODELS["abmil"][1]).fit(doubled, np.r_[time[:20], time[:20]], np.ones(40))


def _held_out_c(model: TorchSurvivalModel, data) -> float:
    (Xtr, ttr, etr), (Xva, tva, eva), (Xte, tte, ete) = data
    model.fit(Xtr, ttr, etr, validation=(Xva, tva, eva))
    return harrell_c(tte, ete, model.predict_risk(Xte))


def test_abmil_learns_planted_patch_signal(tmp_path):
    X, time, event = _simulate(tmp_path, 250, 2.0, 0.0, seed=0)
    model = ABMILModel(hidden=16, attn_dim=8, lr=3e-3, epochs=25, batch_size=16, bag_size=16)
    assert _held_out_c(model, _split(X, time, event, 150, 50)) > 0.7


def test_rna_mlp_learns_planted_gene_module(tmp_path):
    X, time, event = _simulate(tmp_path, 250, 0.0, 2.0, seed=0)
    data = _split(_rna_only(X), time, event, 150, 50)
    model = RNAMLPModel(n_top_genes=20, hidden=(16,), dropout=0.1, epochs=25, batch_size=32)
    assert _held_out_c(model, data) > 0.7


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (AverageFusionModel, {"hidden": 32, "lr": 1e-2}),  # default dropout 0.8
        (CrossAttentionModel, {"d_model": 16, "lr": 3e-3}),  # default dropout 0
    ],
)
def test_fusion_learns_signal_split_across_modalities(cls, params, cohort):
    model = cls(n_top_genes=20, epochs=30, batch_size=32, bag_size=16, **params)
    assert _held_out_c(model, _split(*cohort, 150, 50)) > 0.7
