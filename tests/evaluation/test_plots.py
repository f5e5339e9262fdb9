"""Calibration and ROC figures of one experiment, folds pooled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.plots import plot_calibration, plot_roc, pooled_split, write_diagnostics

EV = {"horizon_days": 365, "calibration_bins": 5, "time_quantiles": [0.1, 0.8], "n_times": 8}


def _kfold(n=150, folds=3, seed=0):
    """k-fold predictions of two endpoints (each patient in one fold's test part) and the true
    model's survival curves on each fold's grid."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    preds, curves = [], []
    for endpoint in ("os", "dm"):
        t = rng.exponential(500 * np.exp(-risk))
        c = rng.exponential(1500, n)
        time, event = np.minimum(t, c), (t <= c).astype(int)
        test_fold = np.arange(n) % folds
        for fold in range(folds):
            split = np.where(test_fold == fold, "test", "train")
            p = pd.DataFrame(
                {
                    "patient_id": [f"P{i}" for i in range(n)],
                    "slide_id": "",
                    "endpoint": endpoint,
                    "fold": fold,
                    "split": split,
                    "risk": risk + 0.1 * fold,
                    "time": time,
                    "event": event,
                }
            )
            preds.append(p)
            grid = np.linspace(0, time[split == "train"].max(), 100)
            s = np.exp(-np.outer(np.exp(risk), grid) / 500)
            curves.append(
                pd.DataFrame(
                    {
                        "patient_id": np.repeat(p["patient_id"], len(grid)),
                        "endpoint": endpoint,
                        "split": np.repeat(split, len(grid)),
                        "time": np.tile(grid, n),
                        "survival": s.ravel(),
                        "fold": fold,
                    }
                )
            )
    return pd.concat(preds, ignore_index=True), pd.concat(curves, ignore_index=True)


def test_pooled_split_has_every_test_patient_once():
    preds, curves = _kfold()
    data = pooled_split(preds, curves, "os", 365.0)
    assert len(data.time) == 150 and len(data.ref_time) == 150
    rows = preds[(preds["endpoint"] == "os") & (preds["split"] == "test")]
    risk = rows["risk"].to_numpy()
    expected = np.exp(-365.0 * np.exp(risk - 0.1 * rows["fold"].to_numpy()) / 500)
    # stored curves are steps on a 100-point grid: close to the true value at the horizon
    assert data.surv_at_horizon == pytest.approx(expected, abs=0.05)
    assert data.upper < preds["time"].max() + 1
    assert pooled_split(preds, None, "os", 365.0).surv_at_horizon is None
    assert pooled_split(preds, curves, "os", 365.0, split="val") is None


def test_figures_written_with_and_without_survival_curves(tmp_path):
    preds, curves = _kfold()
    write_diagnostics(EV, "x", preds, curves, tmp_path / "cal.png", tmp_path / "roc.png")
    for name in ("cal.png", "roc.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    status = plot_calibration(preds, curves, "x", tmp_path / "c.png", 365.0)
    assert status == {"dm": "ok", "os": "ok"}
    aucs = plot_roc(preds, "x", tmp_path / "r.png", 365.0)
    assert set(aucs) == {"dm", "os"} and all(0.6 < a < 0.95 for a in aucs.values())
    # no survival function: the calibration panel says so instead of failing
    status = plot_calibration(preds, None, "x", tmp_path / "c2.png", 365.0)
    assert status == {"dm": "no survival function", "os": "no survival function"}
    assert (tmp_path / "c2.png").read_bytes()[:4] == b"\x89PNG"
    # a horizon beyond every follow-up: panels say so
    status = plot_calibration(preds, curves, "x", tmp_path / "c3.png", 1e6)
    assert all(v.startswith("follow-up ends") for v in status.values())
    aucs = plot_roc(preds, "x", tmp_path / "r3.png", 1e6)
    assert all(np.isnan(a) for a in aucs.values()) and (tmp_path / "r3.png").stat().st_size > 0
