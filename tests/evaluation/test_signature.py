"""Risk-signature statistics: X-tile cut, group tests, survival NRI, decision curves, figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines.statistics import logrank_test
from scipy.stats import chi2

from mmsurv.evaluation.signature import (
    XTileResult,
    decision_curve,
    group_tests,
    nri_interval,
    plot_decision_curves,
    plot_risk_groups,
    risk_group,
    survival_nri,
    xtile_cutoff,
)

# ------------------------------------------------------------------------- cohorts


def _planted_cohort(n: int = 120, seed: int = 0, cut: float = 0.6):
    """Uniform score; patients with score >= ``cut`` have a 6x exponential hazard."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(size=n)
    hazard = np.where(score >= cut, 6.0, 1.0) / 1000.0  # per day
    t = rng.exponential(1.0 / hazard)
    c = rng.uniform(500, 3000, n)
    return score, np.minimum(t, c), (t <= c).astype(int)


def _uncensored_ten():
    """10 patients, horizon 100 d, no censoring before the horizon.

    Patients 0-3 have the event by the horizon (days 10, 20, 30, 40); 4-9 are event-free at
    100 d (events or censoring later). So S(100) = 6/10 = 0.6 and every KM at the horizon is
    the proportion of its patients still event-free.
    """
    time = np.array([10, 20, 30, 40, 150, 200, 250, 300, 350, 400], dtype=float)
    event = np.array([1, 1, 1, 1, 0, 1, 0, 1, 0, 0])
    return time, event


def _censored_eight():
    """8 patients with censoring before the horizon (100 d); KM values worked by hand below.

    id  time  event  moves
    A    10     1     up
    B    20     0     up
    C    30     1     down
    D    40     1     up
    E    50     0     down
    F   120     0     up
    G   150     1     down
    H   200     0     down
    """
    time = np.array([10, 20, 30, 40, 50, 120, 150, 200], dtype=float)
    event = np.array([1, 0, 1, 1, 0, 0, 1, 0])
    up = np.array([1, 1, 0, 1, 0, 1, 0, 0], dtype=bool)
    return time, event, up


# ------------------------------------------------------------------------- X-tile


@pytest.fixture(scope="module")
def planted_xtile():
    """The planted cohort and its X-tile result (the search is the slow part, run it once)."""
    score, time, event = _planted_cohort()
    return score, time, event, xtile_cutoff(score, time, event)


def test_xtile_finds_planted_cut_and_reports_the_max_candidate(planted_xtile):
    score, time, event, res = planted_xtile
    assert isinstance(res, XTileResult)
    assert abs(res.cutoff - 0.6) < 0.05
    cand = res.candidates
    assert list(cand.columns) == ["cutoff", "statistic", "p_value", "n_high", "n_low"]
    assert res.statistic == pytest.approx(cand["statistic"].max())
    assert res.cutoff == cand.loc[cand["statistic"].idxmax(), "cutoff"]
    # the p-value is the naive log-rank p of the chosen split
    high = score >= res.cutoff
    direct = logrank_test(time[high], time[~high], event[high], event[~high])
    assert res.p_value == pytest.approx(direct.p_value)
    assert res.statistic == pytest.approx(direct.test_statistic)
    assert (cand["n_high"] + cand["n_low"] == len(score)).all()


def test_xtile_candidates_lie_inside_the_10th_to_90th_percentiles(planted_xtile):
    score, _, _, res = planted_xtile
    lo, hi = np.quantile(score, [0.1, 0.9])
    cand = res.candidates["cutoff"]
    assert cand.between(lo, hi).all()
    # every distinct score value in the range is a candidate (the minimum is never at 10 %)
    inside = np.unique(score[(score >= lo) & (score <= hi)])
    np.testing.assert_array_equal(np.sort(cand.to_numpy()), inside)


def test_xtile_ties_go_to_the_smallest_cutoff():
    # scores 1-4, all events; patients 1 and 4 share day 10, so the cut at 2 ({1} vs {2, 3, 4})
    # and the cut at 4 ({1, 2, 3} vs {4}) are the same split of survival data: a singleton at
    # day 10 against days {10, 100, 200}. Both beat the cut at 3.
    score = np.array([1.0, 2.0, 3.0, 4.0])
    time = np.array([10.0, 100.0, 200.0, 10.0])
    res = xtile_cutoff(score, time, np.ones(4), quantiles=(0.0, 1.0))
    stats = res.candidates.set_index("cutoff")["statistic"]
    assert stats[2.0] == pytest.approx(stats[4.0]) and stats[2.0] > stats[3.0]
    assert res.cutoff == 2.0
    # the minimum score leaves the low group empty and is skipped
    assert res.candidates["cutoff"].tolist() == [2.0, 3.0, 4.0]


def test_xtile_rejects_no_events_short_ranges_and_bad_inputs():
    score, time, _ = _planted_cohort()
    with pytest.raises(ValueError, match="no events"):
        xtile_cutoff(score, time, np.zeros_like(time))
    with pytest.raises(ValueError, match="same length"):
        xtile_cutoff(score[:-1], time, np.ones_like(time))
    bad = score.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        xtile_cutoff(bad, time, np.ones_like(time))
    # only two distinct scores: at most one usable candidate
    with pytest.raises(ValueError, match="at least 2"):
        xtile_cutoff(np.r_[np.zeros(10), np.ones(10)], np.arange(1.0, 21), np.ones(20))


def test_risk_group_is_high_at_and_above_the_cutoff():
    out = risk_group(np.array([0.1, 0.5, 0.6, 0.9]), 0.5)
    assert out.tolist() == ["low", "high", "high", "high"]


# ------------------------------------------------------------------------- group tests


def test_grho_uses_left_continuous_km_weights_worked_example():
    # high: events at days 1, 3; low: events at days 2, 4. Pooled left-continuous KM
    # S(t-) at t = 1, 2, 3, 4: 1, 3/4, 1/2, 1/4.
    # t  at risk (high, low)  O_high  E_high  V              weight S(t-)
    # 1  4 (2, 2)            1       1/2     2*2/4^2 = 1/4  1
    # 2  3 (1, 2)            0       1/3     1*2/3^2 = 2/9  3/4
    # 3  2 (1, 1)            1       1/2     1/4            1/2
    # 4  1 (0, 1)            0       0       0              1/4
    # sum w (O - E) = 1/2 - 1/4 + 1/4 = 1/2; sum w^2 V = 1/4 + 9/16*2/9 + 1/4*1/4 = 7/16
    # G^1 chi-square = (1/2)^2 / (7/16) = 4/7;  unweighted log-rank: (2/3)^2 / (13/18) = 8/13
    group = np.array(["high", "low", "high", "low"])
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.ones(4)
    out = group_tests(group, time, event)
    assert out["grho_p"] == pytest.approx(chi2.sf(4 / 7, 1))
    assert out["logrank_p"] == pytest.approx(chi2.sf(8 / 13, 1))


def _early_difference():
    """High group: half die early (mean 150 d), half event-free to 3000 d; low: mean 1000 d."""
    rng = np.random.default_rng(3)
    n = 60
    early = rng.uniform(size=n) < 0.5
    t_high = np.where(early, rng.exponential(150, n), 3000.0)
    t_low = np.minimum(rng.exponential(1000, n), 3000.0)
    group = np.r_[["high"] * n, ["low"] * n]
    time = np.r_[t_high, t_low]
    event = (time < 3000).astype(int)
    return group, time, event


def test_grho_differs_from_logrank_when_early_and_late_differences_differ():
    group, time, event = _early_difference()
    out = group_tests(group, time, event)
    assert abs(math.log10(out["grho_p"]) - math.log10(out["logrank_p"])) > 1
    h = group == "high"
    own = logrank_test(
        time[h], time[~h], event[h], event[~h], weightings="fleming-harrington", p=1, q=0
    )
    assert out["grho_p"] == pytest.approx(own.p_value)
    plain = logrank_test(time[h], time[~h], event[h], event[~h])
    assert out["logrank_p"] == pytest.approx(plain.p_value)


def test_group_tests_hr_above_one_for_a_planted_high_risk_group():
    score, time, event = _planted_cohort()
    out = group_tests(risk_group(score, 0.6), time, event)
    assert out["hr"] > 1 and out["hr_lo"] > 1
    assert out["hr_lo"] < out["hr"] < out["hr_hi"]
    assert out["n"] == 120 and out["n_high"] + out["n_low"] == 120
    assert out["events"] == event.sum()
    assert out["logrank_p"] < 1e-6


def test_group_tests_nan_for_an_empty_group_or_no_events():
    _, time, event = _planted_cohort()
    out = group_tests(np.full(len(time), "low"), time, event)
    assert out["n_high"] == 0
    for key in ("logrank_p", "grho_p", "hr", "hr_lo", "hr_hi"):
        assert math.isnan(out[key])
    out = group_tests(np.r_[["high"] * 60, ["low"] * 60], time, np.zeros_like(event))
    assert math.isnan(out["logrank_p"]) and math.isnan(out["hr"])


# ------------------------------------------------------------------------- NRI


def test_survival_nri_uncensored_worked_example():
    time, event = _uncensored_ten()
    old = np.full(10, 0.5)
    new = old.copy()
    new[[0, 1, 2, 4, 5]] = 0.7  # up: 3 events (0, 1, 2) and 2 non-events (4, 5)
    new[[3, 6, 7, 8]] = 0.3  # down: 1 event (3) and 3 non-events; patient 9 tied
    # S = 0.6; P(up) = 0.5, S_up = 2/5 = 0.4; P(down) = 0.4, S_down = 3/4 = 0.75
    # NRI_events    = [0.5 * 0.6 - 0.4 * 0.25] / 0.4 = 0.5     (= (3 up - 1 down) / 4 events)
    # NRI_nonevents = [0.4 * 0.75 - 0.5 * 0.4] / 0.6 = 1/6     (= (3 down - 2 up) / 6)
    out = survival_nri(time, event, old, new, 100.0)
    assert out["n_up"] == 5 and out["n_down"] == 4
    assert out["nri_events"] == pytest.approx(0.5)
    assert out["nri_nonevents"] == pytest.approx(1 / 6)
    assert out["nri"] == pytest.approx(2 / 3)


def test_survival_nri_censored_uses_kaplan_meier():
    time, event, up = _censored_eight()
    old = np.full(8, 0.4)
    new = np.where(up, 0.6, 0.2)
    # all 8: t=10 8 at risk, 1 event -> 7/8; t=20 censored; t=30 6 at risk -> 7/8*5/6 = 35/48;
    #        t=40 5 at risk -> 35/48*4/5 = 7/12; t=50 censored.          S = 7/12
    # up (A, B, D, F): t=10 4 at risk -> 3/4; B censored; t=40 2 at risk -> 3/8.  S_up = 3/8
    # down (C, E, G, H): t=30 4 at risk -> 3/4; E censored; G after 100.      S_down = 3/4
    # P(up) = P(down) = 1/2
    # NRI_events    = [1/2 * 5/8 - 1/2 * 1/4] / (5/12) = (3/16) * (12/5) = 9/20
    # NRI_nonevents = [1/2 * 3/4 - 1/2 * 3/8] / (7/12) = (3/16) * (12/7) = 9/28
    out = survival_nri(time, event, old, new, 100.0)
    assert out["nri_events"] == pytest.approx(9 / 20)
    assert out["nri_nonevents"] == pytest.approx(9 / 28)
    assert out["nri"] == pytest.approx(9 / 20 + 9 / 28)


def test_survival_nri_identical_models_give_zero_and_swapping_flips_sign():
    score, time, event = _planted_cohort()
    risk_a = 1 / (1 + np.exp(-(score - 0.5) * 4))
    risk_b = np.clip(risk_a + np.random.default_rng(5).normal(0, 0.1, len(score)), 0, 1)
    same = survival_nri(time, event, risk_a, risk_a, 365.0)
    assert same["nri"] == 0 and same["n_up"] == 0 and same["n_down"] == 0
    fwd = survival_nri(time, event, risk_a, risk_b, 365.0)
    back = survival_nri(time, event, risk_b, risk_a, 365.0)
    assert fwd["nri"] != 0
    assert back["nri"] == pytest.approx(-fwd["nri"])
    assert back["nri_events"] == pytest.approx(-fwd["nri_events"])
    assert back["n_up"] == fwd["n_down"]


def test_survival_nri_undefined_when_nobody_has_the_event_by_the_horizon():
    time, event = _uncensored_ten()
    out = survival_nri(time, event, np.zeros(10), np.linspace(0, 1, 10), 5.0)  # S(5) = 1
    assert math.isnan(out["nri_events"]) and math.isnan(out["nri"])


def _nri_cohort():
    score, time, event = _planted_cohort(n=80, seed=2)
    old = np.full(80, 0.5)
    new = np.where(score >= 0.6, 0.8, 0.3)
    return time, event, old, new


def test_nri_interval_is_reproducible_and_contains_the_estimate():
    time, event, old, new = _nri_cohort()
    a = nri_interval(time, event, old, new, 365.0, n_boot=30, seed=7)
    b = nri_interval(time, event, old, new, 365.0, n_boot=30, seed=7)
    assert a == b
    assert a["nri"] == survival_nri(time, event, old, new, 365.0)["nri"]
    assert a["nri_lo"] <= a["nri"] <= a["nri_hi"]
    assert 0 <= a["nri_p"] < 0.05  # a strongly informative new model


def test_nri_interval_nan_with_too_few_usable_resamples():
    time, event, old, new = _nri_cohort()
    out = nri_interval(time, event, old, new, 365.0, n_boot=5, seed=0)  # 5 < max(10, 0)
    assert math.isfinite(out["nri"])
    assert math.isnan(out["nri_lo"]) and math.isnan(out["nri_hi"]) and math.isnan(out["nri_p"])


# ------------------------------------------------------------------------- decision curves


def test_decision_curve_uncensored_worked_example():
    time, event = _uncensored_ten()  # events by 100 d: patients 0-3; S = 0.6
    risk = np.array([0.9, 0.6, 0.3, 0.1, 0.7, 0.4, 0.2, 0.15, 0.05, 0.35])
    dc = decision_curve(time, event, risk, 100.0, np.array([0.2, 0.5, 0.95]))
    assert list(dc.columns) == ["threshold", "net_benefit", "treat_all", "treat_none", "n_treated"]
    # p_t = 0.2: treated 0, 1, 2, 4, 5, 6, 9 -> 3 TP, 4 FP: NB = 3/10 - 4/10 * 0.25 = 0.2
    # p_t = 0.5: treated 0, 1, 4 -> 2 TP, 1 FP: NB = 2/10 - 1/10 * 1 = 0.1
    # p_t = 0.95: nobody treated -> NB = 0
    np.testing.assert_allclose(dc["net_benefit"], [0.2, 0.1, 0.0], atol=1e-12)
    assert dc["n_treated"].tolist() == [7, 3, 0]
    # treat all: (1 - 0.6) - 0.6 * p/(1-p) = 0.25, -0.2, -11.0
    np.testing.assert_allclose(dc["treat_all"], [0.25, -0.2, -11.0], atol=1e-12)
    assert (dc["treat_none"] == 0).all()


def test_decision_curve_censored_uses_kaplan_meier():
    time, event, up = _censored_eight()
    risk = np.where(up, 0.6, 0.2)
    dc = decision_curve(time, event, risk, 100.0, np.array([0.0, 0.5]))
    # p_t = 0: everyone treated, NB = treat all = (1 - 7/12) - 0 = 5/12
    # p_t = 0.5: up group treated, x = 1/2, S_x = 3/8: NB = 1/2 * 5/8 - 1/2 * 3/8 * 1 = 1/8
    np.testing.assert_allclose(dc["net_benefit"], [5 / 12, 1 / 8], atol=1e-12)
    np.testing.assert_allclose(dc["treat_all"], [5 / 12, 5 / 12 - 7 / 12], atol=1e-12)


@pytest.mark.parametrize("bad", [[1.0], [-0.1], [0.2, np.nan], []])
def test_decision_curve_rejects_bad_thresholds(bad):
    time, event = _uncensored_ten()
    with pytest.raises(ValueError, match="thresholds"):
        decision_curve(time, event, np.linspace(0, 1, 10), 100.0, np.array(bad))


# ------------------------------------------------------------------------- figures


def test_plot_risk_groups_writes_png_atomically(tmp_path):
    score, time, event = _planted_cohort()
    table = pd.DataFrame(
        {
            "split": np.where(np.arange(120) % 3 == 0, "test", "train"),
            "group": risk_group(score, 0.6),
            "time": time,
            "event": event,
        }
    )
    path = tmp_path / "km.png"
    plot_risk_groups(table, path, "DLS risk groups", ["train", "test", "external"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["km.png"]


def test_plot_decision_curves_writes_png_atomically(tmp_path):
    time, event, old, new = _nri_cohort()
    thresholds = np.linspace(0, 0.9, 10)
    curves = {
        "clinical": decision_curve(time, event, old, 365.0, thresholds),
        "DLS": decision_curve(time, event, new, 365.0, thresholds),
    }
    path = tmp_path / "sub" / "dca.png"
    plot_decision_curves(curves, path, "Decision curves at 1 year")
    assert path.stat().st_size > 0
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in path.parent.iterdir()] == ["dca.png"]
