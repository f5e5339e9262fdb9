"""Metrics of one experiment from its predictions: one row per (endpoint, level, fold, split)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mmsurv.evaluation.metrics import (
    binary_auc,
    bootstrap_auc_interval,
    bootstrap_c_interval,
    brier_at,
    censoring_reference,
    eval_times,
    harrell_c,
    integrated_brier,
    mean_td_auc,
    uno_c,
)
from mmsurv.evaluation.risk_groups import assign_risk_groups, logrank_p
from mmsurv.models.base import step_survival

__all__ = ["METRIC_COLUMNS", "DEFAULT_HORIZON_DAYS", "evaluate_experiment", "survival_at"]

log = logging.getLogger(__name__)

#: Column order of results/metrics/{experiment}.tsv (DESIGN.md section 3, then extras).
METRIC_COLUMNS = [
    "experiment",
    "endpoint",
    "level",
    "fold",
    "split",
    "n",
    "events",
    "c_index",
    "c_index_lo",
    "c_index_hi",
    "c_index_uno",
    "ibs",
    "auc",
    "td_auc",
    "logrank_p",
    "c_index_oracle",
    "c_index_sd",
    "brier",
    "horizon_days",
    "auc_lo",
    "auc_hi",
    "n_labeled",
]

#: Default Brier / calibration / ROC horizon (days) when the config has none (schema default).
DEFAULT_HORIZON_DAYS = 365.0


def survival_at(curves: pd.DataFrame, patients: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Survival of ``patients`` at ``times`` from stored grid curves, shape (n, len(times))."""
    wide = curves.pivot(index="patient_id", columns="time", values="survival")
    wide = wide.loc[patients]
    return step_survival(wide.columns.to_numpy(float), wide.to_numpy(float), times)


def _level_rows(
    experiment: str,
    level: str,
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    ev: Mapping[str, Any],
    seed: int,
    oracle: pd.Series | None,
) -> list[dict[str, Any]]:
    """Metric rows of one prediction level (``patient`` or ``slide``).

    Slide rows are bootstrapped by patient (a patient's slides are drawn together); survival
    curves exist for patient rows only, so ``ibs`` and ``brier`` are NaN at slide level.
    Classification predictions (columns ``label`` and ``score``) fill ``auc`` with its
    bootstrap interval ``auc_lo``/``auc_hi`` over the ``n_labeled`` patients with a label.
    """
    q = tuple(ev["time_quantiles"])
    horizon = float(ev.get("horizon_days", DEFAULT_HORIZON_DAYS))
    rows = []
    grouped = assign_risk_groups(predictions, ev["risk_group_quantile"])
    for (endpoint, fold), part in grouped.groupby(["endpoint", "fold"], sort=True):
        train = part[part["split"] == "train"]
        t_tr, e_tr = train["time"].to_numpy(float), train["event"].to_numpy(int)
        for split in ("train", "val", "test"):
            sub = part[part["split"] == split]
            if sub.empty:
                continue
            t, e, r = (
                sub["time"].to_numpy(float),
                sub["event"].to_numpy(int),
                sub["risk"].to_numpy(float),
            )
            lo, hi, sd = bootstrap_c_interval(
                t, e, r, sub["patient_id"].to_numpy(), ev["bootstrap"], seed
            )
            ref_t, ref_e = censoring_reference(t_tr, e_tr, t, e, same=split == "train")
            times = eval_times(t, e, q, ev["n_times"], upper=float(t_tr.max()))
            ibs = brier = float("nan")
            if survival is not None and level == "patient":
                curves = survival[
                    (survival["endpoint"] == endpoint)
                    & (survival["fold"] == fold)
                    & (survival["split"] == split)
                ]
                if not curves.empty:
                    surv = survival_at(curves, sub["patient_id"].to_numpy(), times)
                    ibs = integrated_brier(ref_t, ref_e, t, e, surv, times)
                    if horizon <= float(t_tr.max()):  # curves end at the last training time
                        at_h = survival_at(
                            curves, sub["patient_id"].to_numpy(), np.array([horizon])
                        )
                        brier = brier_at(ref_t, ref_e, t, e, at_h[:, 0], horizon)
            auc = auc_lo = auc_hi = float("nan")
            n_labeled = 0
            if "score" in sub and "label" in sub:
                y, score = sub["label"].to_numpy(float), sub["score"].to_numpy(float)
                n_labeled = int(np.isfinite(y).sum())
                auc = binary_auc(y, score)
                auc_lo, auc_hi = bootstrap_auc_interval(y, score, ev["bootstrap"], seed)
            rows.append(
                {
                    "experiment": experiment,
                    "endpoint": endpoint,
                    "level": level,
                    "fold": int(fold),
                    "split": split,
                    "n": len(sub),
                    "events": int(e.sum()),
                    "c_index": harrell_c(t, e, r),
                    "c_index_lo": lo,
                    "c_index_hi": hi,
                    "c_index_uno": uno_c(ref_t, ref_e, t, e, r),
                    "ibs": ibs,
                    "auc": auc,
                    "td_auc": mean_td_auc(ref_t, ref_e, t, e, r, times),
                    "logrank_p": logrank_p(sub),
                    "c_index_oracle": (
                        harrell_c(t, e, oracle.reindex(sub["patient_id"]).to_numpy(float))
                        if oracle is not None
                        else float("nan")
                    ),
                    "c_index_sd": sd,
                    "brier": brier,
                    "horizon_days": horizon,
                    "auc_lo": auc_lo,
                    "auc_hi": auc_hi,
                    "n_labeled": n_labeled,
                }
            )
    return rows


def evaluate_experiment(
    experiment: str,
    predictions: pd.DataFrame,
    survival: pd.DataFrame | None,
    config: Mapping[str, Any],
    truth: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Compute the metrics table of one experiment.

    Parameters
    ----------
    predictions
        ``results/predictions/{experiment}.tsv`` rows (all folds and splits).
    survival
        Long survival curves (patient_id, endpoint, fold, split, time, survival) or ``None``
        when the model gives no survival function (then ``ibs`` and ``brier`` are NaN).
    config
        Needs ``seed`` and ``evaluation`` (``bootstrap``, ``time_quantiles``, ``n_times``,
        ``risk_group_quantile``, ``horizon_days``).
    truth
        Synthetic cohorts: ``patient_id`` and ``risk`` (the generator's true log-hazard); its
        C-index on the same patients fills ``c_index_oracle``.

    Nothing here chooses anything: the risk-group cut comes from each fold's *training* risks.
    """
    ev = config["evaluation"]
    seed = int(config["seed"])
    oracle = truth.set_index("patient_id")["risk"] if truth is not None else None
    rows = []
    slide_id = predictions["slide_id"].fillna("").astype(str)
    levels = {"patient": predictions[slide_id == ""], "slide": predictions[slide_id != ""]}
    for level, preds in levels.items():
        if preds.empty:
            continue
        rows += _level_rows(experiment, level, preds, survival, ev, seed, oracle)
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    for _, row in table[table["split"] == "test"].iterrows():
        log.info(
            "%s %s fold %d test: C=%.3f (%.3f-%.3f), oracle %.3f",
            experiment,
            row["endpoint"],
            row["fold"],
            row["c_index"],
            row["c_index_lo"],
            row["c_index_hi"],
            row["c_index_oracle"],
        )
    return table
