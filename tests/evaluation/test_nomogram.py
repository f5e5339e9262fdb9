"""Cox nomograms with and without a deep-learning signature on a planted synthetic cohort."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.evaluation.nomogram import (
    DAYS_PER_YEAR,
    TABLE1_COLUMNS,
    calibration_curves,
    fit_nomogram,
    nomogram_points,
    nomogram_scale,
    plot_calibration,
    plot_nomogram,
    table1,
)

NUMERIC, CATEGORICAL = ["age", "kps"], ["grade", "sex"]


def _cohort(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Exponential times with log-hazard 0.03 (age - 55) - 0.02 (kps - 80) + 0.5 [III] + 1.0 [IV]
    + 0.8 dls (baseline scale 900 days), uniform censoring, a 70/15/15 split and a few missing
    clinical values."""
    rng = np.random.default_rng(seed)
    age = rng.normal(55, 12, n).round(1)
    kps = rng.choice([50, 60, 70, 80, 90, 100], n).astype(float)
    grade = rng.choice(["II", "III", "IV"], n)
    sex = rng.choice(["F", "M"], n)
    dls = rng.normal(0, 1, n)
    lp = (
        0.03 * (age - 55)
        - 0.02 * (kps - 80)
        + 0.5 * (grade == "III")
        + 1.0 * (grade == "IV")
        + 0.8 * dls
    )
    t = rng.exponential(900 * np.exp(-lp))
    c = rng.uniform(300, 3000, n)
    split = np.array(["train"] * int(0.7 * n) + ["val"] * int(0.15 * n))
    split = rng.permutation(np.concatenate([split, ["test"] * (n - len(split))]))
    table = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "split": split,
            "time": np.minimum(t, c).round(1),
            "event": (t <= c).astype(int),
            "age": age,
            "kps": kps,
            "grade": grade,
            "sex": sex,
            "dls": dls,
        }
    )
    table.loc[[3, 17, 40, 101], "age"] = np.nan
    table.loc[[5, 60, 222], "kps"] = np.nan
    table.loc[[8, 150], "grade"] = None
    return table


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return _cohort()


@pytest.fixture(scope="module")
def models(cohort):
    return {
        "DLS": fit_nomogram(cohort, [], [], signature="dls"),
        "clinicomolecular": fit_nomogram(cohort, NUMERIC, CATEGORICAL),
        "DL nomogram": fit_nomogram(cohort, NUMERIC, CATEGORICAL, signature="dls"),
    }


def _partial_log_likelihood(time, event, eta):
    """Breslow/Cox partial log-likelihood by hand (exact without tied times)."""
    total = 0.0
    for i in np.flatnonzero(event):
        total += eta[i] - np.log(np.exp(eta[time >= time[i]]).sum())
    return total


def test_aic_on_training_rows_is_lifelines_partial_aic(cohort, models):
    for model in models.values():
        train = cohort[cohort["split"] == "train"]
        assert model.aic(train) == pytest.approx(model.cph.AIC_partial_, rel=1e-6)


def test_aic_on_another_split_uses_that_splits_rows(cohort, models):
    model = models["DL nomogram"]
    test = cohort[cohort["split"] == "test"]
    test = test[~test["time"].duplicated(keep=False)]  # tie-free: Efron = exact
    assert test["event"].sum() >= 10
    eta = model.design(test).to_numpy() @ model.beta.to_numpy()
    ll = _partial_log_likelihood(test["time"].to_numpy(), test["event"].to_numpy(), eta)
    k = len(model.beta)
    assert model.aic(test) == pytest.approx(-2 * ll + 2 * k, rel=1e-9)
    assert model.aic(test) != pytest.approx(model.cph.AIC_partial_, rel=1e-3)


def test_fit_uses_training_rows_only(cohort, models):
    changed = cohort.copy()
    outside = changed["split"] != "train"
    changed.loc[outside, "time"] = 1.0
    changed.loc[outside, "event"] = 1
    changed.loc[outside, "age"] = 1000.0  # would move the median and the z-scoring
    refit = fit_nomogram(changed, NUMERIC, CATEGORICAL, signature="dls")
    pd.testing.assert_series_equal(refit.beta, models["DL nomogram"].beta)
    train = cohort[cohort["split"] == "train"]
    probe = train.iloc[[0, 0]].copy()
    probe["age"] = [np.nan, train["age"].median()]
    design = refit.design(probe)
    assert design["age"].iloc[0] == pytest.approx(design["age"].iloc[1])
    everyone = cohort.drop(columns="split")  # no split column: every row trains
    pooled = fit_nomogram(everyone, NUMERIC, CATEGORICAL, signature="dls")
    assert not np.allclose(pooled.beta, refit.beta)


def test_signature_stays_on_its_scale_and_clinical_numeric_are_z_scored(cohort, models):
    model = models["DL nomogram"]
    train = cohort[cohort["split"] == "train"]
    design = model.design(train)
    np.testing.assert_allclose(design["dls"], train["dls"])
    assert design["age"].mean() == pytest.approx(0, abs=1e-9)
    assert design["kps"].std(ddof=0) == pytest.approx(1, rel=1e-9)
    assert {"grade_III", "grade_IV", "sex_M"} <= set(design.columns)
    assert "grade_II" not in design.columns


def test_hazard_ratio_table_shows_signature_as_independent_factor(models):
    hr = models["DL nomogram"].hazard_ratios()
    assert list(hr.columns) == ["covariate", "hr", "hr_lo", "hr_hi", "p_value"]
    assert list(hr.index) == [
        "age (per SD)",
        "kps (per SD)",
        "grade_III",
        "grade_IV",
        "sex_M",
        "dls (per unit)",
    ]
    dls = hr.loc["dls (per unit)"]
    assert dls["hr"] > 1 and dls["hr_lo"] > 1 and dls["p_value"] < 0.001
    assert 1.6 < dls["hr"] < 3.2  # planted exp(0.8) = 2.2
    assert (hr["hr_lo"] < hr["hr"]).all() and (hr["hr"] < hr["hr_hi"]).all()


def test_risk_and_survival_agree_with_the_baseline(cohort, models):
    model = models["DL nomogram"]
    rows = cohort.iloc[:20]
    days = np.array([365.25, 730.5])
    surv = model.survival_at(rows, days)
    assert surv.shape == (20, 2)
    expected = np.exp(-np.outer(np.exp(model.risk(rows)), model.baseline_cumulative_hazard(days)))
    np.testing.assert_allclose(surv, expected, rtol=1e-10)
    assert (surv[:, 1] <= surv[:, 0]).all()


def test_table1_reports_every_model_and_split(cohort, models):
    out = table1(cohort, models, splits=["train", "val", "test"], n_boot=60, seed=1)
    assert list(out.columns) == TABLE1_COLUMNS
    assert len(out) == 9
    assert set(zip(out["model"], out["split"], strict=True)) == {
        (m, s) for m in models for s in ("train", "val", "test")
    }
    assert list(out.loc[out["model"] == "DLS", "n"]) == [210, 45, 45]
    assert ((out["c_index_lo"] <= out["c_index"]) & (out["c_index"] <= out["c_index_hi"])).all()
    train = out[out["split"] == "train"].set_index("model")
    assert train.loc["DL nomogram", "c_index"] >= train.loc["clinicomolecular", "c_index"]
    assert train.loc["DL nomogram", "aic"] < train.loc["clinicomolecular", "aic"]
    assert train.loc["DL nomogram", "aic"] == pytest.approx(
        models["DL nomogram"].cph.AIC_partial_, rel=1e-6
    )


def test_table1_signature_column_is_a_one_covariate_cox_model(cohort, models):
    by_name = table1(cohort, {"raw": "dls"}, splits=["train", "test"], n_boot=0, seed=0)
    fitted = table1(cohort, {"fit": models["DLS"]}, splits=["train", "test"], n_boot=0, seed=0)
    np.testing.assert_allclose(by_name["aic"], fitted["aic"])
    np.testing.assert_allclose(by_name["c_index"], fitted["c_index"])
    test = cohort[cohort["split"] == "test"]
    raw_c = harrell_c(test["time"].to_numpy(), test["event"].to_numpy(), test["dls"].to_numpy())
    assert by_name["c_index"].iloc[1] == pytest.approx(raw_c)  # HR > 1: same order as the DLS
    assert by_name["c_index_lo"].isna().all()  # no bootstrap


def test_calibration_curves_and_figure(cohort, models, tmp_path):
    curves = calibration_curves(cohort, models, split="test", horizons_years=[1, 2, 3], n_bins=3)
    assert set(curves["horizon_years"]) == {1.0, 2.0, 3.0}
    for (_, years), rows in curves.groupby(["model", "horizon_years"]):
        assert rows["n"].sum() == 45 and len(rows) == 3
        assert rows["horizon_days"].iloc[0] == pytest.approx(years * DAYS_PER_YEAR)
        assert rows["predicted"].is_monotonic_increasing
    assert {"observed", "observed_lo", "observed_hi", "bin"} <= set(curves.columns)
    path = tmp_path / "calibration.png"
    plot_calibration(curves, path, "test split")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nomogram_points_scale(cohort, models):
    model = models["DL nomogram"]
    train = cohort[cohort["split"] == "train"]
    points = nomogram_points(model, train)
    assert set(points) == {"age", "kps", "grade", "sex", "dls"}
    spans = {v: (t["points"].min(), t["points"].max()) for v, t in points.items()}
    assert all(lo == pytest.approx(0, abs=1e-12) for lo, _ in spans.values())
    assert max(hi for _, hi in spans.values()) == pytest.approx(100)
    assert spans["dls"][1] == pytest.approx(100)  # the widest beta * x range
    for v in ("age", "kps", "dls"):  # numeric: linear in the value, over the training range
        tab = points[v]
        slope, intercept = np.polyfit(tab["value"], tab["points"], 1)
        np.testing.assert_allclose(tab["points"], slope * tab["value"] + intercept, atol=1e-9)
        assert tab["value"].min() == pytest.approx(train[v].min())
        assert tab["value"].max() == pytest.approx(train[v].max())
    assert np.polyfit(points["kps"]["value"], points["kps"]["points"], 1)[0] < 0  # protective
    assert list(points["grade"]["value"]) == ["II", "III", "IV"]
    assert points["grade"].set_index("value")["points"].is_monotonic_increasing


def test_total_points_reproduce_the_linear_predictor(cohort, models):
    model = models["DL nomogram"]
    train = cohort[cohort["split"] == "train"]
    scale = nomogram_scale(model, train)
    patients = cohort[cohort["split"] == "test"].dropna()
    for v in ("age", "kps", "dls"):  # inside the axes' training range
        patients = patients[patients[v].between(train[v].min(), train[v].max())]
    patients = patients.iloc[:6]
    assert len(patients) == 6
    total = np.zeros(len(patients))
    for v, tab in scale.points.items():
        if v in model.categorical:
            total += tab.set_index("value")["points"].loc[patients[v]].to_numpy()
        else:  # linear, so interpolation between the table rows is exact
            total += np.interp(patients[v].to_numpy(float), tab["value"], tab["points"])
    np.testing.assert_allclose(scale.risk(total), model.risk(patients), atol=1e-9)
    days = 2 * DAYS_PER_YEAR
    np.testing.assert_allclose(
        scale.survival(total, days), model.survival_at(patients, [days])[:, 0], rtol=1e-9
    )
    assert scale.total_points_at(0.5, days) == pytest.approx(
        (np.log(-np.log(0.5) / model.baseline_cumulative_hazard([days])[0]) - scale.lp_at_zero)
        / scale.lp_per_point
    )


def test_plot_nomogram_writes_png(cohort, models, tmp_path):
    train = cohort[cohort["split"] == "train"]
    for name, model in models.items():
        path = tmp_path / f"{name}.png"
        scale = plot_nomogram(model, path, title=name, reference=train)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert scale.max_total >= 100
