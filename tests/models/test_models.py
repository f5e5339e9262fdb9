"""Clinical survival models: fit/predict contract, risk direction, training-only preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models import MODELS, get_model
from mmsurv.models.base import step_survival
from mmsurv.models.tabular import TabularPreprocessor


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(60, 10, n),
            "grade": rng.choice(["G2", "G3", "G4"], n),
        },
        index=[f"P{i}" for i in range(n)],
    )
    lp = 0.08 * (X["age"] - 60) + (X["grade"] == "G4") * 1.2
    t = rng.exponential(1000 * np.exp(-lp))
    c = rng.exponential(3000, n)
    X.loc[X.index[:5], "age"] = np.nan
    return X, np.minimum(t, c), (t <= c).astype(int)


@pytest.mark.parametrize(
    ("name", "params"),
    [("coxph", {"penalizer": 0.01}), ("rsf", {"n_estimators": 50, "min_samples_leaf": 5})],
)
def test_model_contract_and_risk_direction(name, params):
    X, t, e = _data()
    model = get_model(name)(numeric=["age"], categorical=["grade"], seed=1, **params)
    model.fit(X.iloc[:150], t[:150], e[:150])
    risk = model.predict_risk(X.iloc[150:])
    assert risk.shape == (50,) and np.isfinite(risk).all()
    # higher risk must mean shorter survival: held-out C-index well above chance
    assert harrell_c(t[150:], e[150:], risk) > 0.65
    times = np.array([0.0, 200.0, 800.0, 5000.0])
    surv = model.predict_survival(X.iloc[150:], times)
    assert surv.shape == (50, 4)
    assert np.all(np.diff(surv, axis=1) <= 1e-9) and surv[:, 0].min() > 0.95
    assert surv.min() >= 0 and surv.max() <= 1 + 1e-9


def test_preprocessing_is_fitted_on_training_rows_only():
    X, *_ = _data()
    prep = TabularPreprocessor(["age"], ["grade"], drop_first=True)
    train = prep.fit_transform(X.iloc[:100])
    assert abs(train["age"].mean()) < 1e-9  # z-scored on the training rows
    shifted = X.iloc[100:].copy()
    shifted["age"] += 100.0  # wild test values are transformed with the training mean/sd
    train_age = X["age"].iloc[:100]
    imputed = train_age.fillna(train_age.median())  # the scaler sees imputed training values
    expected = (shifted["age"] - imputed.mean()) / imputed.std(ddof=0)
    np.testing.assert_allclose(prep.transform(shifted)["age"], expected)


def test_model_parameters_are_checked():
    from mmsurv.models.registry import tunable_parameters

    assert tunable_parameters("coxph") == ["penalizer", "l1_ratio"]
    assert "min_samples_leaf" in tunable_parameters("rsf")
    with pytest.raises(TypeError):
        get_model("coxph")(numeric=["age"], categorical=[], penaliser=5.0)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameters_read_from_source_equal_the_imported_signature(name):
    """The registry reads constructor keywords without importing the model's module; they must
    be the imported class's."""
    import inspect

    from mmsurv.models.registry import _SUPPLIED, tunable_parameters

    signature = inspect.signature(get_model(name).__init__).parameters
    assert tunable_parameters(name) == [p for p in signature if p not in _SUPPLIED]


def test_reading_model_parameters_imports_no_model_library():
    import subprocess
    import sys

    code = (
        "import sys; from mmsurv.models.registry import MODELS, tunable_parameters as t; "
        "[t(m) for m in MODELS]; "
        "print([m for m in ('torch', 'monai', 'lifelines', 'sksurv') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unseen_category_at_test_time_is_ignored():
    X, t, e = _data()
    model = get_model("coxph")(numeric=["age"], categorical=["grade"], penalizer=0.1)
    model.fit(X.iloc[:150], t[:150], e[:150])
    odd = X.iloc[150:152].copy()
    odd["grade"] = "G1"
    assert np.isfinite(model.predict_risk(odd)).all()


def test_step_survival_evaluates_right_continuous_steps():
    times = np.array([10.0, 20.0])
    surv = np.array([[0.9, 0.5]])
    out = step_survival(times, surv, np.array([0.0, 10.0, 15.0, 20.0, 99.0]))
    np.testing.assert_allclose(out, [[1.0, 0.9, 0.9, 0.5, 0.5]])
