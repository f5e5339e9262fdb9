"""Calibration and time-dependent ROC figures of one experiment (seed-3 Fig. 2).

Both use the patient-level predictions of one split, all folds pooled (each patient appears in
one fold's test part under k-fold, so the pooled test split is every patient once, each scored
by the model that did not see them). The censoring distribution for the IPCW weights is
estimated on the pooled split together with the training patients (see
:func:`mmsurv.evaluation.metrics.censoring_reference`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmsurv.evaluation.calibration import calibration_table  # noqa: E402
from mmsurv.evaluation.evaluate import DEFAULT_HORIZON_DAYS, survival_at  # noqa: E402
from mmsurv.evaluation.metrics import eval_times  # noqa: E402
from mmsurv.evaluation.roc import auc_over_time, roc_at  # noqa: E402
from mmsurv.io import atomic_path  # noqa: E402

__all__ = ["PooledSplit", "pooled_split", "plot_calibration", "plot_roc", "write_diagnostics"]

log = logging.getLogger(__name__)


@dataclass
class PooledSplit:
    """Patient-level rows of one (endpoint, split), folds pooled; arrays of shape (n,).

    ``surv_at_horizon`` is ``S(horizon | x)`` from the stored curves (``None`` when the
    experiment has no survival curves; NaN for a fold whose training follow-up ends before the
    horizon, where its curves stop). ``ref_time``/``ref_event`` are the censoring reference
    (each patient of the split or of a training part once); ``upper`` the shortest training
    follow-up over the folds (days).
    """

    time: np.ndarray
    event: np.ndarray
    risk: np.ndarray
    surv_at_horizon: np.ndarray | None
    ref_time: np.ndarray
    ref_event: np.ndarray
    upper: float


def pooled_split(
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    endpoint: str,
    horizon_days: float,
    split: str = "test",
) -> PooledSplit | None:
    """The pooled patient-level rows of ``endpoint`` on ``split`` (``None`` when it has none)."""
    slide = predictions["slide_id"].fillna("").astype(str)
    rows = predictions[(slide == "") & (predictions["endpoint"] == endpoint)]
    rows = rows[np.isfinite(rows["risk"].to_numpy(float))]
    sub = rows[rows["split"] == split]
    if sub.empty:
        return None
    ref = rows[rows["split"].isin(["train", split])].drop_duplicates("patient_id")
    train_max = rows[rows["split"] == "train"].groupby("fold")["time"].max()
    upper = float(train_max.min()) if len(train_max) else float("inf")
    surv: np.ndarray | None = None
    if survival is not None and not survival.empty:
        curves = survival[(survival["endpoint"] == endpoint) & (survival["split"] == split)]
        parts = []
        for fold, part in sub.groupby("fold", sort=False):
            c = curves[curves["fold"] == fold]
            fold_max = float(train_max.get(fold, np.inf))
            if c.empty or not set(part["patient_id"]) <= set(c["patient_id"]):
                parts = None
                break
            s = survival_at(c, part["patient_id"].to_numpy(), np.array([horizon_days]))[:, 0]
            parts.append(pd.Series(s if horizon_days <= fold_max else np.nan, index=part.index))
        if parts:
            surv = pd.concat(parts).reindex(sub.index).to_numpy(float)
    return PooledSplit(
        time=sub["time"].to_numpy(float),
        event=sub["event"].to_numpy(int),
        risk=sub["risk"].to_numpy(float),
        surv_at_horizon=surv,
        ref_time=ref["time"].to_numpy(float),
        ref_event=ref["event"].to_numpy(int),
        upper=upper,
    )


def _message(ax: plt.Axes, text: str) -> str:
    """Write ``text`` in an empty panel; return it."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    return text


def _save(fig: plt.Figure, path: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_calibration(
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    title: str,
    path: str | Path,
    horizon_days: float,
    n_bins: int = 5,
    split: str = "test",
) -> dict[str, str]:
    """Calibration at ``horizon_days`` on ``split`` (folds pooled), one panel per endpoint.

    Points: mean predicted event probability ``1 - S(horizon | x)`` of each quantile group
    against ``1 - KM(horizon)`` of the group with its 95% interval
    (:func:`mmsurv.evaluation.calibration.calibration_table`); the diagonal is perfect
    calibration. A panel says "no survival function" when the experiment stores no curves.

    Returns endpoint -> ``"ok"`` or the message its panel shows instead.
    """
    status: dict[str, str] = {}
    endpoints = sorted(predictions["endpoint"].unique())
    fig, axes = plt.subplots(1, len(endpoints), figsize=(4.8 * len(endpoints), 4.6), squeeze=False)
    for ax, endpoint in zip(axes[0], endpoints, strict=True):
        ax.set_title(f"{endpoint}: {split} split, {horizon_days:g} days")
        data = pooled_split(predictions, survival, endpoint, horizon_days, split)
        if data is None:
            status[endpoint] = _message(ax, f"no {split} patients")
            continue
        if data.surv_at_horizon is None:
            status[endpoint] = _message(ax, "no survival function")
            continue
        table = calibration_table(
            data.time, data.event, data.surv_at_horizon, horizon_days, n_bins=n_bins
        )
        table = table[table["observed"].notna()]
        if table.empty:
            status[endpoint] = _message(ax, f"follow-up ends before {horizon_days:g} days")
            continue
        status[endpoint] = "ok"
        err = np.vstack(
            [table["observed"] - table["observed_lo"], table["observed_hi"] - table["observed"]]
        )
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
        ax.errorbar(
            table["predicted"],
            table["observed"],
            yerr=np.clip(err, 0, None),
            fmt="o-",
            color="tab:blue",
            capsize=3,
            label=f"{len(table)} groups (KM 95% CI)",
        )
        for r in table.itertuples():
            ax.annotate(
                f"n={r.n}",
                (r.predicted, r.observed),
                fontsize=7,
                textcoords="offset points",
                xytext=(4, -10),
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"predicted P(event by {horizon_days:g} d)")
        ax.set_ylabel(f"observed P(event by {horizon_days:g} d), 1 - KM")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)
    return status


def plot_roc(
    predictions: pd.DataFrame,
    title: str,
    path: str | Path,
    horizon_days: float,
    time_quantiles: tuple[float, float] = (0.1, 0.8),
    n_times: int = 15,
    split: str = "test",
) -> dict[str, float]:
    """Per endpoint (columns): the cumulative/dynamic IPCW ROC curve at ``horizon_days``
    (AUC in the legend; :func:`mmsurv.evaluation.roc.roc_at`) above AUC(t) at the evaluation
    time points (:func:`mmsurv.evaluation.metrics.eval_times`, scikit-survival), on ``split``
    with folds pooled. Returns endpoint -> AUC at the horizon (NaN where not computable)."""
    aucs: dict[str, float] = {}
    endpoints = sorted(predictions["endpoint"].unique())
    fig, axes = plt.subplots(2, len(endpoints), figsize=(4.8 * len(endpoints), 9.0), squeeze=False)
    for j, endpoint in enumerate(endpoints):
        top, bottom = axes[0, j], axes[1, j]
        top.set_title(f"{endpoint}: {split} split, ROC at {horizon_days:g} days")
        bottom.set_title(f"{endpoint}: time-dependent AUC")
        data = pooled_split(predictions, None, endpoint, horizon_days, split)
        if data is None:
            _message(top, f"no {split} patients")
            _message(bottom, f"no {split} patients")
            aucs[endpoint] = float("nan")
            continue
        roc = roc_at(data.ref_time, data.ref_event, data.time, data.event, data.risk, horizon_days)
        aucs[endpoint] = roc.auc
        if np.isnan(roc.auc):
            _message(top, f"no cases or no controls at {horizon_days:g} days")
        else:
            top.plot(
                roc.fpr,
                roc.tpr,
                color="tab:red",
                label=f"AUC = {roc.auc:.3f} ({roc.n_cases} cases, {roc.n_controls} controls)",
            )
            top.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
            top.set_xlim(0, 1)
            top.set_ylim(0, 1.02)
            top.set_xlabel("1 - specificity (IPCW)")
            top.set_ylabel("sensitivity (IPCW)")
            top.legend(loc="lower right", fontsize=8)
        times = eval_times(data.time, data.event, time_quantiles, n_times, upper=data.upper)
        t, a = auc_over_time(data.ref_time, data.ref_event, data.time, data.event, data.risk, times)
        ok = np.isfinite(a)
        if not ok.any():
            _message(bottom, "no evaluation time points")
            continue
        bottom.plot(t[ok], a[ok], "o-", color="tab:blue", label="AUC(t)")
        bottom.axhline(0.5, ls="--", color="grey", lw=0.8)
        if t[ok].min() <= horizon_days <= t[ok].max():
            bottom.axvline(horizon_days, ls=":", color="tab:red", label="horizon")
        bottom.set_ylim(0, 1.02)
        bottom.set_xlabel("days")
        bottom.set_ylabel("cumulative/dynamic AUC")
        bottom.legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)
    return aucs


def write_diagnostics(
    evaluation: Mapping[str, Any],
    experiment: str,
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    out_calibration: str | Path,
    out_roc: str | Path,
) -> None:
    """Write the calibration and ROC figures of one experiment on the test split.

    ``evaluation`` is the config's ``evaluation`` section (``horizon_days``,
    ``calibration_bins``, ``time_quantiles``, ``n_times``).
    """
    horizon = float(evaluation.get("horizon_days", DEFAULT_HORIZON_DAYS))
    status = plot_calibration(
        predictions,
        survival,
        f"{experiment}: calibration at {horizon:g} days",
        out_calibration,
        horizon,
        n_bins=int(evaluation.get("calibration_bins", 5)),
    )
    aucs = plot_roc(
        predictions,
        f"{experiment}: time-dependent ROC",
        out_roc,
        horizon,
        time_quantiles=tuple(evaluation.get("time_quantiles", (0.1, 0.8))),
        n_times=int(evaluation.get("n_times", 15)),
    )
    for endpoint, auc in aucs.items():
        log.info(
            "%s %s test (folds pooled): AUC at %g days %.3f, calibration %s",
            experiment,
            endpoint,
            horizon,
            auc,
            status.get(endpoint, ""),
        )
