"""The (experiment, fold) training job: grids chosen on validation, never on test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmsurv.cohort import build_cohort, load_samples, make_splits
from mmsurv.models import get_model
from mmsurv.models.train import _fit_endpoint, param_grid, train_fold


def test_param_grid_expands_lists_in_order():
    assert param_grid({"a": [1, 2], "b": 3, "c": ["x", "y"]}) == [
        {"a": 1, "b": 3, "c": "x"},
        {"a": 1, "b": 3, "c": "y"},
        {"a": 2, "b": 3, "c": "x"},
        {"a": 2, "b": 3, "c": "y"},
    ]
    assert param_grid({}) == [{}]
    # a list-valued parameter is one value; a list of lists is its grid
    sizes = frozenset({"size"})
    assert param_grid({"size": [32, 32, 32], "a": [1, 2]}, sizes) == [
        {"size": [32, 32, 32], "a": 1},
        {"size": [32, 32, 32], "a": 2},
    ]
    assert param_grid({"size": [[8, 8, 8], [16, 16, 16]]}, sizes) == [
        {"size": [8, 8, 8]},
        {"size": [16, 16, 16]},
    ]


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


def test_test_patients_do_not_influence_training(config, tmp_path):
    out_a, split = _run(config, tmp_path / "a")
    samples = load_samples(config)
    test_ids = split.loc[split["split"] == "test", "patient_id"]
    scrambled = samples.copy()
    mask = scrambled["patient_id"].isin(test_ids)
    scrambled.loc[mask, "os_days"] = scrambled.loc[mask, "os_days"].to_numpy()[::-1] * 3
    scrambled.loc[mask, "os_event"] = 1 - scrambled.loc[mask, "os_event"]
    scrambled.loc[mask, "age"] += 1000.0  # covariates too: imputation/scaling must ignore them
    scrambled.loc[mask, "grade"] = "G9"
    out_b, _ = _run(config, tmp_path / "b", samples=scrambled)
    a = pd.read_csv(out_a / "predictions.tsv", sep="\t")
    b = pd.read_csv(out_b / "predictions.tsv", sep="\t")
    fit = a["split"] != "test"
    pd.testing.assert_series_equal(a.loc[fit, "risk"], b.loc[fit, "risk"])  # same model
    assert not np.allclose(a.loc[~fit, "risk"], b.loc[~fit, "risk"])  # test inputs did change
    la = json.loads((out_a / "train_log.json").read_text())["endpoints"]["os"]["chosen"]
    lb = json.loads((out_b / "train_log.json").read_text())["endpoints"]["os"]["chosen"]
    assert la == lb


def _data(n, times, events):
    X = pd.DataFrame({"age": np.linspace(40, 80, n)}, index=[f"P{i}" for i in range(n)])
    return X, pd.DataFrame(
        {
            "patient_id": X.index,
            "split": ["train"] * (n - len(times)) + ["val"] * len(times),
            "time": np.r_[np.linspace(100, 1000, n - len(times)), times],
            "event": np.r_[np.ones(n - len(times), int), events],
        }
    )


def test_grid_without_comparable_validation_pairs_is_a_clear_error():
    cls = get_model("coxph")
    X, data = _data(30, [5.0, 6.0, 50.0], [0, 0, 1])  # one event, nobody outlives it
    grid = [{"penalizer": 0.1}, {"penalizer": 1.0}]
    with pytest.raises(ValueError, match="comparable pairs"):
        _fit_endpoint(cls, {"numeric": ["age"], "categorical": []}, grid, X, data)
    model, trials = _fit_endpoint(cls, {"numeric": ["age"], "categorical": []}, grid[:1], X, data)
    assert np.isnan(trials[0]["val_c_index"]) and model.params["penalizer"] == 0.1


def test_patients_without_clinical_values_are_left_out(raw_config, tmp_path, cohort_dir):
    from mmsurv.config import validate_config

    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    df.loc[0, ["age", "kps", "sex", "grade", "idh"]] = None
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    cfg = validate_config(raw_config)
    out, _ = _run(cfg, tmp_path)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert "TCGA-AA-0000" not in set(preds["patient_id"]) and len(preds) == 59


def _bag_file(path, n):
    import h5py

    with h5py.File(path, "w") as f:
        f["features"] = np.zeros((n, 4), np.float32)
        f["coords"] = np.zeros((n, 2), np.int64)
    return path


def test_slide_and_rna_inputs_one_row_per_usable_slide(config, tmp_path):
    from mmsurv.models.train import experiment_inputs
    from mmsurv.wsi.stage import write_skipped_features

    rna = pd.DataFrame(
        np.arange(6.0).reshape(3, 2),
        index=pd.Index(["TCGA-AA-0000", "TCGA-AA-0001", "TCGA-AA-0002"], name="patient_id"),
        columns=["G0", "G1"],
    )
    rna.to_parquet(tmp_path / "rna.parquet")
    slides = pd.DataFrame(
        {
            "slide_id": ["S0a", "S0b", "S1", "S3", "S9"],
            "patient_id": ["TCGA-AA-0000", "TCGA-AA-0000", "TCGA-AA-0001", "TCGA-AA-0003", "X"],
        }
    )
    features = {s: _bag_file(tmp_path / f"{s}.h5", 3) for s in ("S0a", "S0b", "S3")}
    features["S1"] = write_skipped_features(tmp_path / "S1.h5", "S1", "unreadable")
    features["S9"] = _bag_file(tmp_path / "S9.h5", 0)  # no tissue tile
    config["experiments"]["fusion"] = {
        "model": "wsi_rna_xattn",
        "inputs": {"wsi": "resnet18", "rna": "expression"},
    }
    config["experiments"]["rna_only"] = {"model": "rna_mlp", "inputs": {"rna": "expression"}}
    X, kwargs = experiment_inputs(
        config, "fusion", pd.DataFrame(), features, tmp_path / "rna.parquet", slides
    )
    # skipped and empty slides are left out; S3's patient has no RNA: left out (nothing filled)
    assert list(X.index) == ["S0a", "S0b"] and kwargs == {}
    assert list(X.columns) == ["patient_id", "wsi", "rna:G0", "rna:G1"]
    assert X.loc["S0b", "rna:G1"] == 1.0 and X.loc["S0b", "patient_id"] == "TCGA-AA-0000"
    X, _ = experiment_inputs(config, "rna_only", pd.DataFrame(), rna=tmp_path / "rna.parquet")
    assert list(X.columns) == ["patient_id", "rna:G0", "rna:G1"]
    assert list(X.index) == list(X["patient_id"]) == list(rna.index) and X.index.name is None


def test_radiomics_mri_and_clinical_inputs_one_row_per_patient(config, tmp_path):
    """Radiomics columns of the chosen sequences become numeric variables; clinical variables
    join them; skipped MRI patients and patients lacking an input are left out."""
    from mmsurv.models.train import experiment_inputs

    samples = load_samples(config)
    pids = list(samples["patient_id"][:3])
    table = pd.DataFrame(
        {"t1ce_original_shape_MeshVolume": [1.0, 2.0], "t2_original_firstorder_Mean": [3.0, 4.0]},
        index=pd.Index(pids[:2], name="patient_id"),
    )
    table["flair_original_firstorder_Mean"] = 0.0
    table.to_parquet(tmp_path / "radiomics.parquet")
    records = []
    for pid, status in zip(pids, ["ok", "skipped", "ok"], strict=True):
        (tmp_path / pid).mkdir()
        records.append(tmp_path / pid / "preprocess.json")
        records[-1].write_text(json.dumps({"patient_id": pid, "status": status, "reason": "x"}))
    config["experiments"]["rad"] = {
        "model": "rsf",
        "inputs": {"radiomics": ["t1ce", "t2"], "clinical": "all"},
    }
    config["experiments"]["net"] = {
        "model": "mri_clinical_mmnn",
        "inputs": {"mri": ["t1ce", "t2"], "clinical": "all"},
    }
    X, kwargs = experiment_inputs(config, "rad", samples, radiomics=tmp_path / "radiomics.parquet")
    radiomics = ["t1ce_original_shape_MeshVolume", "t2_original_firstorder_Mean"]
    numeric = config["clinical"]["numeric"]
    assert list(X.index) == pids[:2] and X.index.name == "patient_id"
    assert kwargs["numeric"] == radiomics + numeric
    assert kwargs["categorical"] == config["clinical"]["categorical"]
    assert "flair_original_firstorder_Mean" not in X.columns
    X, kwargs = experiment_inputs(config, "net", samples, mri=records)
    assert list(X.index) == [pids[0], pids[2]]  # the skipped patient is left out
    assert X.loc[pids[2], "mri"] == str(tmp_path / pids[2] / "crop.npz")
    assert kwargs["channels"] == ["t1ce", "t2"] and kwargs["numeric"] == numeric


def _with_scna(config, root, n_extra=10, seed=0):
    """Write a genes x samples SCNA matrix for every cohort patient plus SCNA-only patients,
    point the config at it and build the cleaned matrix; return (config, scna.parquet)."""
    from mmsurv.stages import run_scna

    rng = np.random.default_rng(seed)
    ids = [*load_samples(config)["patient_id"], *[f"TCGA-ZZ-{i:04d}" for i in range(n_extra)]]
    matrix = pd.DataFrame(
        rng.integers(-2, 3, (30, len(ids))),
        index=pd.Index([f"G{i}" for i in range(30)], name="gene"),
        columns=[f"{p}-01A" for p in ids],
    )
    matrix.to_csv(root / "scna.tsv", sep="\t")
    config["cohort"]["scna"] = str(root / "scna.tsv")
    run_scna(config, root / "scna.parquet")
    return config, root / "scna.parquet"


@pytest.mark.parametrize("pca_extra", [True, False])
def test_scna_pca_never_sees_validation_or_test_patients(config, tmp_path, pca_extra):
    """The SCNA PCA is fitted on the fold's training patients, plus (when asked, as the seed
    paper did) the SCNA-only patients who are in no split; validation and test never."""
    import joblib

    config, scna = _with_scna(config, tmp_path)
    config["experiments"]["scna"] = {
        "model": "scna_coxph",
        "inputs": {"scna": "genes"},
        "params": {"n_components": 3, "pca_extra": pca_extra},
    }
    samples = load_samples(config)
    splits = {"os": make_splits(samples, config, "os")}
    out = tmp_path / "scna_model"
    train_fold(config, "scna", 0, samples, build_cohort(config), splits, out, scna=scna)
    fitted = set(joblib.load(out / "model.joblib")["os"].pca_.fitted_ids_)
    split = splits["os"].set_index("patient_id")["split"]
    extras = {f"TCGA-ZZ-{i:04d}" for i in range(10)}
    assert fitted == set(split[split == "train"].index) | (extras if pca_extra else set())
    assert not fitted & set(split[split != "train"].index)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert set(preds["patient_id"]) == set(split.index)  # extras get no prediction


class _LabelSpy:
    """A classifier stand-in recording the labels the training job hands it."""

    seen: list[pd.Series] = []
    scans: list[pd.DataFrame | None] = []

    def __init__(self, *, numeric, categorical, seed=0, threads=1, device="cpu", channels=()):
        from mmsurv.models.coxph import CoxPHModel

        self.cox = CoxPHModel(numeric=numeric, categorical=categorical)
        self.params = {}

    def fit(self, X, time, event, validation=None, labels=None, extra_scans=None):
        type(self).seen.append(labels)
        type(self).scans.append(extra_scans)
        self.cox.fit(X, time, event)
        return self

    def predict_risk(self, X):
        return self.cox.predict_risk(X)

    def predict_survival(self, X, times):
        return self.cox.predict_survival(X, times)

    def predict_score(self, X):
        return np.linspace(0.0, 1.0, len(X))

    def describe(self):
        return {}


def test_classifier_sees_training_and_validation_labels_only(config, tmp_path, monkeypatch):
    from mmsurv.models import train as train_module

    monkeypatch.setattr(train_module, "get_model", lambda name: _LabelSpy)
    _LabelSpy.seen, _LabelSpy.scans = [], []
    config["experiments"]["cls"] = {
        "model": "mri_mtl",
        "inputs": {"clinical": "small"},
        "label": "idh",
        "params": {},
    }
    samples = load_samples(config)
    samples.loc[samples.index[:6], "idh"] = np.nan  # unlabeled patients
    out, split = _run(config, tmp_path, samples=samples, name="cls")
    (labels,) = _LabelSpy.seen
    roles = split.set_index("patient_id")["split"]
    assert set(labels.index) == set(roles[roles != "test"].index)
    truth = samples.set_index("patient_id")["idh"]
    pd.testing.assert_series_equal(labels, truth.loc[labels.index].astype(float), check_names=False)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert {"label", "score"} <= set(preds.columns)
    test = preds[preds["split"] == "test"].set_index("patient_id")
    np.testing.assert_array_equal(test["label"], truth.loc[test.index].astype(float))


def test_labels_must_be_binary():
    from mmsurv.models.train import binary_labels

    samples = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "y": ["1", "0", None, "yes"]})
    with pytest.raises(ValueError, match="must hold 0/1 values; got d='yes'"):
        binary_labels(samples, "y")
    ok = binary_labels(samples.iloc[:3], "y")
    assert ok.tolist()[:2] == [1.0, 0.0] and np.isnan(ok["c"])


def test_scans_of_patients_without_the_endpoint_reach_a_classifier(config, tmp_path, monkeypatch):
    """Imaged patients in no split (no outcome) are handed to a classifier as extra scans,
    with their labels; they get no prediction."""
    from mmsurv.models import train as train_module

    monkeypatch.setattr(train_module, "get_model", lambda name: _LabelSpy)
    _LabelSpy.seen, _LabelSpy.scans = [], []
    samples = load_samples(config)
    records = []
    for pid in samples["patient_id"]:
        (tmp_path / pid).mkdir()
        records.append(tmp_path / pid / "preprocess.json")
        records[-1].write_text(json.dumps({"patient_id": pid, "status": "ok"}))
    no_outcome = list(samples["patient_id"][:4])
    samples.loc[samples["patient_id"].isin(no_outcome), "os_days"] = np.nan
    splits = {"os": make_splits(samples, config, "os")}
    assert not set(no_outcome) & set(splits["os"]["patient_id"])
    config["experiments"]["cls"] = {
        "model": "mri_mtl",
        "inputs": {"mri": ["t1", "t2"], "clinical": "small"},
        "label": "idh",
        "params": {},
    }
    cohort = build_cohort(config).assign(mri=True)
    out = tmp_path / "cls"
    train_fold(config, "cls", 0, samples, cohort, splits, out, mri=records)
    (labels,), (scans,) = _LabelSpy.seen, _LabelSpy.scans
    assert sorted(scans.index) == sorted(no_outcome)
    assert set(no_outcome) <= set(labels.index)
    roles = splits["os"].set_index("patient_id")["split"]
    assert not set(labels.index) & set(roles[roles == "test"].index)
    preds = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert not set(no_outcome) & set(preds["patient_id"])


def test_dti_inputs_one_row_per_patient_with_usable_slices(config, tmp_path):
    """``dti: slices``: the .npy beside each record whose DTI stage succeeded; no keywords."""
    from mmsurv.models.train import experiment_inputs

    samples = load_samples(config)
    pids = list(samples["patient_id"][:3])
    records = []
    for pid, status in zip(pids, ["ok", "skipped", "ok"], strict=True):
        records.append(tmp_path / f"{pid}.json")
        records[-1].write_text(json.dumps({"patient_id": pid, "status": status, "reason": "x"}))
    config["experiments"]["dls"] = {"model": "dti_dls", "inputs": {"dti": "slices"}}
    X, kwargs = experiment_inputs(config, "dls", samples, dti=records)
    assert list(X.index) == [pids[0], pids[2]] and X.index.name == "patient_id"
    assert X.loc[pids[2], "dti"] == str(tmp_path / f"{pids[2]}.npy")
    assert kwargs == {}
    with pytest.raises(ValueError, match="needs the DTI slice records"):
        experiment_inputs(config, "dls", samples)
