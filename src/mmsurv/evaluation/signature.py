"""Statistics of a risk signature: X-tile cut, risk-group tests, NRI and decision curves.

A risk signature (for instance a "deep learning signature", DLS) is a continuous score per
patient, higher meaning worse prognosis. This module dichotomises it at an X-tile-style
cut-point, tests the resulting groups (log-rank, Harrington-Fleming G-rho, Cox hazard ratio),
compares two models by the continuous net reclassification improvement for survival data and
computes decision curves for survival outcomes, plus the matching figures.

Every survival quantity (log-rank tests, Kaplan-Meier estimates, Cox models) comes from
lifelines. X-tile, NRI and decision curves have no library implementation; their definitions
are cited in the docstrings. All times are in days.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import CoxPHFitter, KaplanMeierFitter  # noqa: E402
from lifelines.exceptions import ConvergenceWarning  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402
from lifelines.statistics import logrank_test  # noqa: E402
from scipy.stats import norm  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = [
    "XTileResult",
    "xtile_cutoff",
    "risk_group",
    "group_tests",
    "survival_nri",
    "nri_interval",
    "decision_curve",
    "plot_risk_groups",
    "plot_decision_curves",
]

_DAYS_PER_YEAR = 365.25


# --------------------------------------------------------------------------- validation


def _survival_arrays(time: np.ndarray, event: np.ndarray, **others: np.ndarray) -> list[np.ndarray]:
    """Validate survival data and per-patient arrays; return them as 1-D float arrays.

    Parameters
    ----------
    time : np.ndarray, shape (n,)
        Follow-up time in days, finite and non-negative.
    event : np.ndarray, shape (n,)
        1 if the event was observed at ``time``, 0 if censored.
    **others : np.ndarray, shape (n,)
        Further per-patient arrays (scores, risks); they must be finite.

    Returns
    -------
    list of np.ndarray
        ``[time, event, *others.values()]``, each of shape (n,).

    Raises
    ------
    ValueError
        On differing lengths, non-finite values, negative times or events other than 0/1.
    """
    named = {"time": time, "event": event, **others}
    arrays = {k: np.asarray(v, dtype=float).reshape(-1) for k, v in named.items()}
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"inputs must have the same length, got {lengths}")
    if lengths["time"] == 0:
        raise ValueError("inputs are empty")
    for k, v in arrays.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{k} contains non-finite values")
    if np.any(arrays["time"] < 0):
        raise ValueError("time must be non-negative (days)")
    if not np.all(np.isin(arrays["event"], (0.0, 1.0))):
        raise ValueError("event must contain only 0 and 1")
    return list(arrays.values())


def _check_horizon(horizon_days: float) -> float:
    """Return ``horizon_days`` as a float after checking it is finite and positive."""
    horizon = float(horizon_days)
    if not math.isfinite(horizon) or horizon <= 0:
        raise ValueError(f"horizon_days must be finite and positive, got {horizon_days}")
    return horizon


def _km_at(time: np.ndarray, event: np.ndarray, horizon: float) -> float:
    """Kaplan-Meier survival at ``horizon`` days (right-continuous step, lifelines).

    Parameters
    ----------
    time, event : np.ndarray, shape (m,)
        Follow-up in days and event indicator of the patients to estimate over (m >= 1).
    horizon : float
        Time in days; past the last follow-up the last KM value is carried forward.

    Returns
    -------
    float
        The KM estimate of S(horizon), in [0, 1].
    """
    kmf = KaplanMeierFitter().fit(time, event_observed=event)
    return float(kmf.predict(horizon))


# --------------------------------------------------------------------------- X-tile cut


@dataclass(frozen=True)
class XTileResult:
    """Outcome of :func:`xtile_cutoff`.

    Attributes
    ----------
    cutoff : float
        Chosen cut-point in score units; patients with ``score >= cutoff`` are high risk.
    statistic : float
        Log-rank chi-square statistic (1 degree of freedom) of the chosen cut.
    p_value : float
        Naive log-rank p-value of the chosen cut. It is optimistic (too small): the cut was
        chosen to maximise the statistic, so this p-value ignores the multiple testing of the
        search and is not a valid test of the signature. Validate the cut on independent data.
    candidates : pd.DataFrame
        One row per evaluated candidate, columns ``cutoff``, ``statistic``, ``p_value``,
        ``n_high``, ``n_low``, sorted by cutoff.
    """

    cutoff: float
    statistic: float
    p_value: float
    candidates: pd.DataFrame


def xtile_cutoff(
    score: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    quantiles: tuple[float, float] = (0.1, 0.9),
) -> XTileResult:
    """X-tile-style search for the score cut-point that best separates survival.

    Following X-tile (Camp, Dolled-Filhart & Rimm 2004, Clin Cancer Res 10:7252-7259), every
    distinct score value ``c`` within the ``[q_lo, q_hi]`` quantiles of ``score`` (inclusive;
    numpy's default linear quantile method) is a candidate. For each candidate the patients with
    ``score >= c`` form the high group and the rest the low group, and the log-rank chi-square
    statistic between them is computed (lifelines ``logrank_test``). The candidate with the
    largest statistic is chosen; ties (equal up to a relative 1e-10) go to the smallest
    cutoff. Candidates that leave either group empty are skipped.

    Parameters
    ----------
    score : np.ndarray, shape (n,)
        Risk score, higher = worse prognosis.
    time : np.ndarray, shape (n,)
        Follow-up in days.
    event : np.ndarray, shape (n,)
        Event indicator (1 event, 0 censored).
    quantiles : tuple of float
        ``(q_lo, q_hi)`` with ``0 <= q_lo < q_hi <= 1``: the search range as score quantiles.

    Returns
    -------
    XTileResult
        The chosen cut, its statistic and (optimistic, see :class:`XTileResult`) p-value and
        the table of all evaluated candidates.

    Raises
    ------
    ValueError
        If the inputs differ in length or are non-finite, ``quantiles`` is invalid, there are
        no events, or fewer than two candidates can be evaluated.
    """
    time, event, score = _survival_arrays(time, event, score=score)
    q_lo, q_hi = (float(q) for q in quantiles)
    if not 0.0 <= q_lo < q_hi <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= q_lo < q_hi <= 1, got {quantiles}")
    if event.sum() == 0:
        raise ValueError("no events: a log-rank cut-point search needs at least one event")
    lo, hi = np.quantile(score, [q_lo, q_hi])
    values = np.unique(score)
    rows = []
    for c in values[(values >= lo) & (values <= hi)]:
        high = score >= c
        n_high = int(high.sum())
        n_low = len(score) - n_high
        if n_high == 0 or n_low == 0:
            continue
        res = logrank_test(time[high], time[~high], event[high], event[~high])
        rows.append((float(c), float(res.test_statistic), float(res.p_value), n_high, n_low))
    if len(rows) < 2:
        raise ValueError(
            f"only {len(rows)} cut-point candidate(s) could be evaluated in the "
            f"{q_lo:g}-{q_hi:g} score quantiles; need at least 2"
        )
    table = pd.DataFrame(rows, columns=["cutoff", "statistic", "p_value", "n_high", "n_low"])
    stats = table["statistic"].to_numpy()
    # ties (up to rounding in the statistic) go to the smallest cutoff: the first maximum
    best = int(np.flatnonzero(np.isclose(stats, stats.max(), rtol=1e-10, atol=0.0))[0])
    return XTileResult(
        cutoff=float(table["cutoff"].iloc[best]),
        statistic=float(table["statistic"].iloc[best]),
        p_value=float(table["p_value"].iloc[best]),
        candidates=table,
    )


def risk_group(score: np.ndarray, cutoff: float) -> np.ndarray:
    """Dichotomise a score at ``cutoff``.

    Parameters
    ----------
    score : np.ndarray, shape (n,)
        Risk score, higher = worse.
    cutoff : float
        Cut-point in score units.

    Returns
    -------
    np.ndarray of str, shape (n,)
        ``"high"`` where ``score >= cutoff``, else ``"low"``.
    """
    score = np.asarray(score, dtype=float).reshape(-1)
    return np.where(score >= cutoff, "high", "low")


# --------------------------------------------------------------------------- group tests


def _cox_hr(high: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[float, float, float]:
    """Hazard ratio high vs low with 95 % CI from an unpenalised lifelines Cox model.

    Parameters
    ----------
    high : np.ndarray of bool, shape (n,)
        High-group indicator.
    time, event : np.ndarray, shape (n,)
        Follow-up in days and event indicator.

    Returns
    -------
    tuple of float
        ``(hr, hr_lo, hr_hi)``. NaN when either group has no events: the partial likelihood
        is then monotone in the coefficient and the maximum-likelihood HR does not exist.
    """
    if event[high].sum() == 0 or event[~high].sum() == 0:
        return (math.nan, math.nan, math.nan)
    df = pd.DataFrame({"time": time, "event": event, "high": high.astype(float)})
    with warnings.catch_warnings():
        # Near-separated data (e.g. very few events in one group) make lifelines warn about
        # convergence; the estimate is still returned and its wide CI shows the uncertainty.
        warnings.simplefilter("ignore", ConvergenceWarning)
        cph = CoxPHFitter().fit(df, duration_col="time", event_col="event")
    row = cph.summary.loc["high"]
    return (
        float(row["exp(coef)"]),
        float(row["exp(coef) lower 95%"]),
        float(row["exp(coef) upper 95%"]),
    )


def group_tests(group: np.ndarray, time: np.ndarray, event: np.ndarray) -> dict[str, float]:
    """Compare the high and low risk groups: log-rank, G-rho (rho = 1) and Cox HR.

    The G-rho family of Harrington & Fleming (1982, Biometrika 69:553-566) weights the
    log-rank contributions at each event time t by S(t-)^rho, with S the left-continuous
    Kaplan-Meier estimate of the pooled sample; rho = 1 (G^1, the Peto-Peto/Prentice form of
    the generalised Wilcoxon test) emphasises early differences. lifelines'
    ``weightings="fleming-harrington"`` weights by S(t-)^p * (1 - S(t-))^q with the pooled
    left-continuous KM (``lifelines.statistics.multivariate_logrank_test``), so ``p=1, q=0`` is
    G^1; the test ``test_grho_uses_left_continuous_km_weights_worked_example`` checks this by
    hand. (lifelines takes S(t-) as the KM one step before t on its timeline, which is exact
    unless an event happens at day 0.)

    Parameters
    ----------
    group : np.ndarray of str, shape (n,)
        ``"high"`` or ``"low"`` per patient (see :func:`risk_group`).
    time : np.ndarray, shape (n,)
        Follow-up in days.
    event : np.ndarray, shape (n,)
        Event indicator (1 event, 0 censored).

    Returns
    -------
    dict of str to float
        ``n``, ``events``, ``n_high``, ``n_low``; ``logrank_p`` (log-rank high vs low),
        ``grho_p`` (G-rho, rho = 1), ``hr``, ``hr_lo``, ``hr_hi`` (hazard ratio high vs low
        and 95 % CI, unpenalised Cox model on the 0/1 high indicator). The tests and HR are
        NaN when a group is empty or there are no events; the HR is also NaN when one group
        has no events (no finite maximum-likelihood estimate).
    """
    group = np.asarray(group).astype(str).reshape(-1)
    time, event = _survival_arrays(time, event)
    if len(group) != len(time):
        raise ValueError(f"group has length {len(group)} but time has length {len(time)}")
    if not np.all(np.isin(group, ("high", "low"))):
        raise ValueError("group must contain only 'high' and 'low'")
    high = group == "high"
    out: dict[str, float] = {
        "n": float(len(group)),
        "events": float(event.sum()),
        "n_high": float(high.sum()),
        "n_low": float((~high).sum()),
    }
    nan = {k: math.nan for k in ("logrank_p", "grho_p", "hr", "hr_lo", "hr_hi")}
    if high.all() or not high.any() or event.sum() == 0:
        return out | nan
    groups = (time[high], time[~high], event[high], event[~high])
    out["logrank_p"] = float(logrank_test(*groups).p_value)
    grho = logrank_test(*groups, weightings="fleming-harrington", p=1, q=0)
    out["grho_p"] = float(grho.p_value)
    out["hr"], out["hr_lo"], out["hr_hi"] = _cox_hr(high, time, event)
    return out


# --------------------------------------------------------------------------- NRI


def survival_nri(
    time: np.ndarray,
    event: np.ndarray,
    risk_old: np.ndarray,
    risk_new: np.ndarray,
    horizon_days: float,
) -> dict[str, float]:
    """Category-free (continuous) net reclassification improvement for survival data.

    Pencina, D'Agostino & Steyerberg 2011 (Stat Med 30:11-21), with Kaplan-Meier estimates in
    place of the unknown event status at the horizon. A patient moves "up" if
    ``risk_new > risk_old``, "down" if ``risk_new < risk_old`` (ties neither). With S the KM
    survival at the horizon over all n patients, S_up and S_down the KM survival at the horizon
    among the up and down patients, P(up) = n_up / n and P(down) = n_down / n::

        NRI_events    = [P(up) (1 - S_up) - P(down) (1 - S_down)] / (1 - S)
        NRI_nonevents = [P(down) S_down - P(up) S_up] / S
        NRI           = NRI_events + NRI_nonevents

    A term whose P(.) is zero contributes zero (its KM is not needed).

    Parameters
    ----------
    time : np.ndarray, shape (n,)
        Follow-up in days.
    event : np.ndarray, shape (n,)
        Event indicator (1 event, 0 censored).
    risk_old, risk_new : np.ndarray, shape (n,)
        Each model's predicted probability of the event by the horizon (higher = worse). Only
        their comparison per patient is used, so both must be on the same scale.
    horizon_days : float
        Horizon in days; KM values are the right-continuous step at ``t <= horizon``.

    Returns
    -------
    dict of str to float
        ``nri``, ``nri_events``, ``nri_nonevents`` (NaN where undefined: ``nri_events`` when
        S = 1, ``nri_nonevents`` when S = 0, ``nri`` when either), ``n_up``, ``n_down``.
    """
    horizon = _check_horizon(horizon_days)
    time, event, old, new = _survival_arrays(time, event, risk_old=risk_old, risk_new=risk_new)
    n = len(time)
    up, down = new > old, new < old
    s_all = _km_at(time, event, horizon)
    p_up, p_down = up.sum() / n, down.sum() / n
    s_up = _km_at(time[up], event[up], horizon) if up.any() else 0.0
    s_down = _km_at(time[down], event[down], horizon) if down.any() else 0.0
    gain_events = p_up * (1.0 - s_up) - p_down * (1.0 - s_down)
    gain_nonevents = p_down * s_down - p_up * s_up
    nri_events = gain_events / (1.0 - s_all) if s_all < 1.0 else math.nan
    nri_nonevents = gain_nonevents / s_all if s_all > 0.0 else math.nan
    return {
        "nri": float(nri_events + nri_nonevents),
        "nri_events": float(nri_events),
        "nri_nonevents": float(nri_nonevents),
        "n_up": float(up.sum()),
        "n_down": float(down.sum()),
    }


def nri_interval(
    time: np.ndarray,
    event: np.ndarray,
    risk_old: np.ndarray,
    risk_new: np.ndarray,
    horizon_days: float,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> dict[str, float]:
    """Survival NRI with a patient-bootstrap percentile interval and normal-approximation p.

    Patients are resampled with replacement ``n_boot`` times (numpy ``default_rng(seed)``) and
    :func:`survival_nri` is recomputed; resamples where the NRI is undefined (KM survival at
    the horizon of 0 or 1) are dropped. The interval is the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` percentiles of the usable resamples. The two-sided p-value uses the
    normal approximation z = NRI / SD_boot, p = 2 (1 - Phi(|z|)), SD_boot being the standard
    deviation (ddof = 1) of the usable bootstrap NRIs.

    Parameters
    ----------
    time, event, risk_old, risk_new : np.ndarray, shape (n,)
        As in :func:`survival_nri`.
    horizon_days : float
        Horizon in days.
    n_boot : int
        Number of bootstrap resamples (>= 1).
    seed : int
        Seed of the resampling; the result is reproducible for a given seed.
    level : float
        Coverage of the percentile interval, in (0, 1).

    Returns
    -------
    dict of str to float
        The keys of :func:`survival_nri` plus ``nri_lo``, ``nri_hi``, ``nri_p`` and
        ``n_boot_used``. With fewer than ``max(10, n_boot // 10)`` usable resamples the
        interval and p are NaN.
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    est = survival_nri(time, event, risk_old, risk_new, horizon_days)
    time, event, old, new = _survival_arrays(time, event, risk_old=risk_old, risk_new=risk_new)
    rng = np.random.default_rng(seed)
    n = len(time)
    boots = []
    for _ in range(int(n_boot)):
        i = rng.integers(0, n, size=n)
        value = survival_nri(time[i], event[i], old[i], new[i], horizon_days)["nri"]
        if math.isfinite(value):
            boots.append(value)
    out = est | {"nri_lo": math.nan, "nri_hi": math.nan, "nri_p": math.nan}
    out["n_boot_used"] = float(len(boots))
    if len(boots) < max(10, int(n_boot) // 10) or not math.isfinite(est["nri"]):
        return out
    values = np.asarray(boots)
    out["nri_lo"], out["nri_hi"] = (
        float(v) for v in np.quantile(values, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    )
    sd = float(values.std(ddof=1))
    if sd > 0.0:
        out["nri_p"] = float(2.0 * norm.sf(abs(est["nri"]) / sd))
    return out


# --------------------------------------------------------------------------- decision curves


def decision_curve(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    horizon_days: float,
    thresholds: np.ndarray,
) -> pd.DataFrame:
    """Decision-curve analysis for a survival outcome at a horizon.

    Vickers, Cronin, Elkin & Gonen 2008 (BMC Med Inform Decis Mak 8:53): at threshold
    probability p_t the patients with ``risk >= p_t`` are treated. With x the fraction treated
    and S_x the Kaplan-Meier survival at the horizon among the treated::

        NB(p_t)        = x (1 - S_x) - x S_x p_t / (1 - p_t)      (0 when nobody is treated)
        NB_all(p_t)    = (1 - S) - S p_t / (1 - p_t)              (S: KM over all patients)
        NB_none(p_t)   = 0

    x (1 - S_x) estimates the true-positive fraction and x S_x the false-positive fraction.

    Parameters
    ----------
    time : np.ndarray, shape (n,)
        Follow-up in days.
    event : np.ndarray, shape (n,)
        Event indicator (1 event, 0 censored).
    risk : np.ndarray, shape (n,)
        Predicted probability of the event by the horizon, in [0, 1].
    horizon_days : float
        Horizon in days.
    thresholds : np.ndarray, shape (k,)
        Threshold probabilities, each in [0, 1).

    Returns
    -------
    pd.DataFrame, shape (k, 5)
        Columns ``threshold``, ``net_benefit``, ``treat_all``, ``treat_none`` (0),
        ``n_treated``.
    """
    horizon = _check_horizon(horizon_days)
    time, event, risk = _survival_arrays(time, event, risk=risk)
    if np.any((risk < 0) | (risk > 1)):
        raise ValueError("risk must be a probability in [0, 1]")
    pts = np.asarray(thresholds, dtype=float).reshape(-1)
    if len(pts) == 0 or not np.all(np.isfinite(pts)) or np.any((pts < 0) | (pts >= 1)):
        raise ValueError("thresholds must be a non-empty array of finite values in [0, 1)")
    n = len(time)
    s_all = _km_at(time, event, horizon)
    rows = []
    for pt in pts:
        odds = pt / (1.0 - pt)
        treated = risk >= pt
        n_treated = int(treated.sum())
        if n_treated == 0:
            nb = 0.0
        else:
            x = n_treated / n
            s_x = _km_at(time[treated], event[treated], horizon)
            nb = x * (1.0 - s_x) - x * s_x * odds
        rows.append((float(pt), nb, (1.0 - s_all) - s_all * odds, 0.0, n_treated))
    return pd.DataFrame(
        rows, columns=["threshold", "net_benefit", "treat_all", "treat_none", "n_treated"]
    )


# --------------------------------------------------------------------------- figures


def _fmt_p(p: float) -> str:
    """Format a p-value for a panel title."""
    return "NA" if not math.isfinite(p) else f"{p:.3g}"


def plot_risk_groups(
    table: pd.DataFrame, path: str | Path, title: str, splits: Sequence[str]
) -> None:
    """Kaplan-Meier curves of the signature's risk groups, one panel per split.

    Parameters
    ----------
    table : pd.DataFrame, shape (n, 4+)
        Columns ``split``, ``group`` (``high``/``low``), ``time`` (days), ``event``.
    path : str or Path
        Destination PNG, written atomically.
    title : str
        Figure title.
    splits : sequence of str
        Splits to draw, in this order; those absent from ``table`` are skipped.

    Notes
    -----
    Low risk is blue, high risk red, both with 95 % confidence bands; numbers at risk are
    drawn under each panel; the x axis is in years. The panel title gives the split, n, the
    log-rank and G-rho (rho = 1) p-values and the HR (95 % CI) of :func:`group_tests`.
    """
    present = [s for s in splits if (table["split"] == s).any()]
    if not present:
        raise ValueError(f"none of the splits {list(splits)} is present in the table")
    fig, axes = plt.subplots(1, len(present), figsize=(5.8 * len(present), 5.0), squeeze=False)
    for ax, split in zip(axes[0], present, strict=True):
        rows = table[table["split"] == split]
        fitters = []
        for group, colour in (("low", "tab:blue"), ("high", "tab:red")):
            g = rows[rows["group"] == group]
            if g.empty:
                continue
            kmf = KaplanMeierFitter(label=f"{group} risk (n={len(g)})")
            kmf.fit(g["time"].to_numpy(float) / _DAYS_PER_YEAR, g["event"].to_numpy(float))
            kmf.plot_survival_function(ax=ax, ci_show=True, color=colour)
            fitters.append(kmf)
        if fitters:
            add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"])
        st = group_tests(
            rows["group"].to_numpy(), rows["time"].to_numpy(), rows["event"].to_numpy()
        )
        hr = (
            "NA"
            if not math.isfinite(st["hr"])
            else (f"{st['hr']:.2f} ({st['hr_lo']:.2f}-{st['hr_hi']:.2f})")
        )
        ax.set_title(
            f"{split} (n={int(st['n'])}): log-rank p = {_fmt_p(st['logrank_p'])}, "
            f"G-rho p = {_fmt_p(st['grho_p'])}\nHR high vs low = {hr}",
            fontsize=9,
        )
        ax.set_xlabel("years")
        ax.set_ylabel("survival probability")
        ax.set_ylim(0, 1.02)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_decision_curves(curves: Mapping[str, pd.DataFrame], path: str | Path, title: str) -> None:
    """Net benefit against threshold probability for several models.

    Parameters
    ----------
    curves : mapping of str to pd.DataFrame
        Model name to the output of :func:`decision_curve`; the treat-all and treat-none
        references are taken from the first curve (all should share thresholds and cohort).
    path : str or Path
        Destination PNG, written atomically.
    title : str
        Figure title.

    Notes
    -----
    The y axis runs from -0.05 to the largest net benefit (models and treat-all) plus a 10 %
    margin, so the steeply falling treat-all line does not flatten the interesting range.
    """
    if not curves:
        raise ValueError("no decision curves to plot")
    first = next(iter(curves.values()))
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, curve in curves.items():
        ax.plot(curve["threshold"], curve["net_benefit"], label=name, lw=1.8)
    ax.plot(first["threshold"], first["treat_all"], color="0.45", ls="--", label="treat all")
    ax.plot(first["threshold"], first["treat_none"], color="black", ls=":", label="treat none")
    top = max(
        [float(c["net_benefit"].max()) for c in curves.values()] + [float(first["treat_all"].max())]
    )
    top = max(top, 0.0)
    ax.set_ylim(-0.05, top + max(0.1 * top, 0.02))
    ax.set_xlim(float(first["threshold"].min()), float(first["threshold"].max()))
    ax.set_xlabel("threshold probability")
    ax.set_ylabel("net benefit")
    ax.set_title(title)
    ax.legend(frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
