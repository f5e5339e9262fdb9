"""Latent traits, hazard model, survival draws and the oracle C-index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.demo import PRESETS, DemoPreset, get_preset
from mmsurv.demo.hazard import (
    COMPONENTS,
    WEIBULL_MEDIAN_DAYS,
    WEIBULL_SCALE,
    WEIGHTS,
    _weibull_times,
    draw_survival,
    risk_components,
    total_risk,
)
from mmsurv.demo.traits import SUBTYPES, draw_traits
from mmsurv.evaluation.metrics import harrell_c


def test_presets() -> None:
    assert set(PRESETS) == {"smoke", "demo"}
    assert get_preset("smoke") is PRESETS["smoke"]
    assert isinstance(get_preset(PRESETS["demo"]), DemoPreset)
    assert PRESETS["smoke"].n_patients < PRESETS["demo"].n_patients
    with pytest.raises(ValueError, match="unknown demo preset"):
        get_preset("nope")


def test_traits_are_deterministic_and_seed_dependent() -> None:
    a, b, c = draw_traits(50, 0), draw_traits(50, 0), draw_traits(50, 1)
    pd.testing.assert_frame_equal(a, b)
    assert not a["z"].equals(c["z"])


def test_trait_distributions() -> None:
    t = draw_traits(4000, 0)
    freq = t["who_subtype"].value_counts(normalize=True)
    assert freq["IDHwt"] == pytest.approx(0.55, abs=0.03)
    assert set(freq.index) == set(SUBTYPES)
    assert (
        t.loc[t["who_subtype"] == "IDHwt", "age"].mean()
        > t.loc[t["idh_mutant"] == 1, "age"].mean() + 10
    )
    assert (t.loc[t["who_subtype"] == "IDHmut-codel", "grade"] != "G4").all()
    assert (t.loc[t["who_subtype"] == "IDHwt", "grade"] == "G4").mean() > 0.7


def test_components_are_standardised_and_weighted() -> None:
    comps = risk_components(draw_traits(500, 0))
    assert list(comps.columns) == list(COMPONENTS)
    for name, weight in WEIGHTS.items():
        assert comps[f"risk_{name}"].std(ddof=0) == pytest.approx(weight)
    corr = np.corrcoef(comps.to_numpy().T)
    off_diagonal = corr[~np.eye(len(COMPONENTS), dtype=bool)]
    assert (off_diagonal > 0).all() and (off_diagonal < 0.8).all()  # shared, not redundant


def test_weibull_median_matches_parameter() -> None:
    times = _weibull_times(np.zeros(200_000), WEIBULL_SCALE, np.random.default_rng(0))
    assert np.median(times) == pytest.approx(WEIBULL_MEDIAN_DAYS, rel=0.02)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_survival_draws(seed: int) -> None:
    risk = total_risk(risk_components(draw_traits(400, seed)))
    surv = draw_survival(risk, seed)
    assert (surv["pfs_days"] <= surv["os_days"]).all() and (surv["os_days"] >= 1).all()
    assert (surv.loc[surv["os_event"] == 1, "pfs_event"] == 1).all()
    assert 0.3 <= 1 - surv["os_event"].mean() <= 0.45
    assert harrell_c(surv["os_days"].to_numpy(), surv["os_event"].to_numpy(), risk) > 0.72
    pd.testing.assert_frame_equal(surv, draw_survival(risk, seed))
