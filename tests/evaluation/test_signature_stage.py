"""The seed-4 signature analysis: training-only cutoff and fits, Table 1, NRI, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.signature_stage import MODEL_NAMES, analyse_signature, signature_table
from mmsurv.io import read_tsv

N = 160
VARIABLES = {"age": "numeric", "kps": "numeric", "grade": "categorical", "sex": "categorical"}
PNGS = ("km", "calibration", "decision_plot", "nomogram", "nomogram_cm")
KEYS = ("groups", "risk_groups", "multivariable", "table1", "nri", "decision", *PNGS)
CONFIG = {
    "signature": {
        "endpoint": "os",
        "cutoff_quantiles": [0.1, 0.9],
        "horizons_years": [1, 2],
        "nri_years": 2,
        "penalizer": 0.0,
    },
    "evaluation": {"bootstrap": 30, "calibration_bins": 3},
    "seed": 0,
}


def _cohort(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Predictions whose risk (the signature) carries signal beyond age and grade."""
    rng = np.random.default_rng(seed)
    pid = [f"P{i:03d}" for i in range(N)]
    age = rng.normal(50, 12, N)
    grade = rng.choice(["II", "III", "IV"], N)
    dls = rng.normal(size=N)
    lp = 0.03 * (age - 50) + 0.6 * (grade == "IV") + 0.9 * dls
    t = rng.exponential(900 * np.exp(-lp))
    c = rng.uniform(300, 2500, N)
    split = np.array(["train"] * 110 + ["val"] * 20 + ["test"] * 30)
    preds = pd.DataFrame(
        {
            "patient_id": pid,
            "slide_id": "",
            "endpoint": "os",
            "fold": 0,
            "split": split,
            "risk": dls + rng.normal(0, 0.2, N),
            "time": np.minimum(t, c).round(1),
            "event": (t <= c).astype(int),
        }
    )
    samples = pd.DataFrame(
        {
            "patient_id": pid,
            "age": age.round(),
            "kps": rng.choice([60.0, 70.0, 80.0, 90.0], N),
            "grade": grade,
            "sex": rng.choice(["F", "M"], N),
        }
    )
    samples.loc[[2, 50], "age"] = np.nan
    truth = pd.DataFrame({"patient_id": pid, "risk": lp, "risk_dti": 0.9 * dls})
    return preds, samples, truth


def _run(tmp_path, preds, samples, truth=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    pred_path = tmp_path / "pred.tsv"
    preds.to_csv(pred_path, sep="\t", index=False)
    truth_path = None
    if truth is not None:
        truth_path = tmp_path / "truth.tsv"
        truth.to_csv(truth_path, sep="\t", index=False)
    outputs = {k: tmp_path / (f"{k}.png" if k in PNGS else f"{k}.tsv") for k in KEYS}
    summary = analyse_signature(
        CONFIG, "dti_dls", pred_path, samples, VARIABLES, outputs, truth=truth_path
    )
    return summary, outputs


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    preds, samples, truth = _cohort()
    return _run(tmp_path_factory.mktemp("sig"), preds, samples, truth), preds, samples


def test_signature_table_keeps_patient_rows_of_the_endpoint_and_first_fold():
    preds, samples, _ = _cohort()
    extra = preds.assign(fold=1).head(5)
    slide = preds.head(3).assign(slide_id="S1")
    other = preds.head(4).assign(endpoint="pfs")
    table = signature_table(pd.concat([preds, extra, slide, other]), samples, "os", ["age"])
    assert len(table) == N and set(table.columns) >= {"dls", "age", "split", "time", "event"}


def test_every_output_is_written(result):
    (_, outputs), _, _ = result
    for key, path in outputs.items():
        assert path.is_file() and path.stat().st_size > 0, key


def test_cutoff_is_fitted_on_training_patients_and_applied_to_all(result, tmp_path):
    (summary, outputs), preds, samples = result
    groups = read_tsv(outputs["groups"])
    assert (groups["cutoff"] == summary["cutoff"]).all()
    high = groups["dls"] >= summary["cutoff"]
    assert ((groups["group"] == "high") == high).all()
    train = groups[groups["split"] == "train"]["dls"]
    assert train.quantile(0.1) <= summary["cutoff"] <= train.quantile(0.9)
    # held-out patients' signature and outcomes cannot move the cut or the fitted models
    moved = preds.copy()
    held = moved["split"] != "train"
    moved.loc[held, "risk"] = -moved.loc[held, "risk"]
    moved.loc[held, "time"] = moved.loc[held, "time"][::-1].to_numpy()
    again, outs = _run(tmp_path / "moved", moved, samples)
    assert again["cutoff"] == summary["cutoff"]
    hr, hr2 = read_tsv(outputs["multivariable"]), read_tsv(outs["multivariable"])
    np.testing.assert_allclose(hr["hr"], hr2["hr"])


def test_table1_has_the_three_models_on_every_split_and_the_oracle(result):
    (_, outputs), _, _ = result
    t1 = read_tsv(outputs["table1"])
    models = set(MODEL_NAMES.values())
    fitted = t1[t1["model"].isin(models)]
    assert len(fitted) == 9 and set(fitted["split"]) == {"train", "val", "test"}
    assert fitted["aic"].notna().all()
    assert {"oracle (true risk)", "oracle (true DTI risk)"} <= set(t1["model"])
    train = fitted[fitted["split"] == "train"].set_index("model")["c_index"]
    # the planted signature adds signal beyond the clinical factors
    assert train[MODEL_NAMES["combined"]] > train[MODEL_NAMES["clinical"]]


def test_multivariable_model_lists_the_signature_and_the_factors(result):
    (_, outputs), _, _ = result
    hr = read_tsv(outputs["multivariable"])
    assert {"age", "kps", "dls"} <= set(hr["covariate"])
    dls = hr[hr["covariate"] == "dls"].iloc[0]
    assert dls["hr"] > 1 and dls["hr_lo"] > 1


def test_nri_and_risk_group_rows_per_split(result):
    (_, outputs), _, _ = result
    nri = read_tsv(outputs["nri"])
    assert list(nri["split"]) == ["train", "val", "test"]
    assert {"nri", "nri_lo", "nri_hi", "nri_p"} <= set(nri.columns)
    groups = read_tsv(outputs["risk_groups"])
    assert list(groups["split"]) == ["train", "val", "test"]
    assert {"logrank_p", "grho_p", "hr", "hr_lo", "hr_hi"} <= set(groups.columns)
    dca = read_tsv(outputs["decision"])
    assert set(dca["model"]) == set(MODEL_NAMES.values())


def test_no_training_event_is_a_clear_error(tmp_path):
    preds, samples, _ = _cohort()
    preds.loc[preds["split"] == "train", "event"] = 0
    with pytest.raises(ValueError, match="no training patient with an event"):
        _run(tmp_path, preds, samples)


def test_a_factor_missing_for_every_training_patient_is_left_out(tmp_path):
    preds, samples, _ = _cohort()
    train_ids = preds.loc[preds["split"] == "train", "patient_id"]
    samples.loc[samples["patient_id"].isin(train_ids), "kps"] = np.nan
    samples.loc[samples["patient_id"].isin(train_ids), "sex"] = "F"  # one value only
    summary, outputs = _run(tmp_path, preds, samples)
    assert set(summary["dropped_factors"]) == {"kps", "sex"}
    assert "no value" in summary["dropped_factors"]["kps"]
    terms = " ".join(read_tsv(outputs["multivariable"]).iloc[:, 0].astype(str))
    assert "age" in terms and "kps" not in terms and "sex" not in terms


def test_without_test_patients_the_curves_are_empty_not_a_crash(tmp_path):
    preds, samples, _ = _cohort()
    preds.loc[preds["split"] == "test", "split"] = "val"
    summary, outputs = _run(tmp_path, preds, samples)
    assert "test" not in summary["n"]
    assert read_tsv(outputs["decision"]).empty
    for key in PNGS:
        assert outputs[key].stat().st_size > 0
    t1 = read_tsv(outputs["table1"])
    assert (t1.loc[t1["split"] == "test", "n"] == 0).all()
    assert t1.loc[t1["split"] == "val", "c_index"].notna().all()
