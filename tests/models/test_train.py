"""The (experiment, fold) training job: grids chosen on validation, never on test."""

from __future__ import annotations

import json

import pandas as pd

from mmsurv.cohort import build_cohort, load_samples, make_splits
from mmsurv.models.train import param_grid, train_fold


def test_param_grid_expands_lists_in_order():
    assert param_grid({"a": [1, 2], "b": 3, "c": ["x", "y"]}) == [
        {"a": 1, "b": 3, "c": "x"},
        {"a": 1, "b": 3, "c": "y"},
        {"a": 2, "b": 3, "c": "x"},
        {"a": 2, "b": 3, "c": "y"},
    ]
    assert param_grid({}) == [{}]


def _run(config, tmp_path, samples=None, name="cox_small"):
    samples = load_samples(config) if samples is None else samples
    splits = {"os": make_splits(load_samples(config), config, "os")}
    out = tmp_path / name
    train_fold(config, name, 0, samples, build_cohort(config), splits, out)
    return out, splits["os"]


def test_train_fold_writes_model_predictions_and_log(config, tmp_path):
    out, split = _run(config, tmp_path)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t", keep_default_na=False)
    assert list(preds.columns) == [
        "patient_id",
        "slide_id",
        "endpoint",
        "fold",
        "split",
        "risk",
        "time",
        "event",
    ]
    assert len(preds) == len(split) and set(preds["split"]) == {"train", "val", "test"}
    log = json.loads((out / "train_log.json").read_text())["endpoints"]["os"]
    scores = [c["val_c_index"] for c in log["candidates"]]
    best = log["candidates"][scores.index(max(scores))]["params"]
    assert log["chosen"]["penalizer"] == best["penalizer"]
    surv = pd.read_parquet(out / "survival.parquet")
    assert surv.groupby("patient_id").size().eq(100).all()
    assert (out / "model.joblib").stat().st_size > 0


def test_test_outcomes_do_not_influence_training(config, tmp_path):
    out_a, split = _run(config, tmp_path / "a")
    samples = load_samples(config)
    test_ids = split.loc[split["split"] == "test", "patient_id"]
    scrambled = samples.copy()
    mask = scrambled["patient_id"].isin(test_ids)
    scrambled.loc[mask, "os_days"] = scrambled.loc[mask, "os_days"].to_numpy()[::-1] * 3
    scrambled.loc[mask, "os_event"] = 1 - scrambled.loc[mask, "os_event"]
    out_b, _ = _run(config, tmp_path / "b", samples=scrambled)
    a = pd.read_csv(out_a / "predictions.tsv", sep="\t")
    b = pd.read_csv(out_b / "predictions.tsv", sep="\t")
    pd.testing.assert_series_equal(a["risk"], b["risk"])  # same model, same risks
    la = json.loads((out_a / "train_log.json").read_text())["endpoints"]["os"]["chosen"]
    lb = json.loads((out_b / "train_log.json").read_text())["endpoints"]["os"]["chosen"]
    assert la == lb


def test_patients_without_clinical_values_are_left_out(raw_config, tmp_path, cohort_dir):
    from mmsurv.config import validate_config

    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    df.loc[0, ["age", "kps", "sex", "grade", "idh"]] = None
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    cfg = validate_config(raw_config)
    out, _ = _run(cfg, tmp_path)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert "TCGA-AA-0000" not in set(preds["patient_id"]) and len(preds) == 59
