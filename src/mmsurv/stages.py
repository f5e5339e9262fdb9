"""One typed function per workflow stage, called by the rule adapters and the CLI alike.

Each takes the validated configuration and explicit input/output paths, so a stage runs the
same way under Snakemake (``workflow/scripts/*.py``) and from the ``mmsurv`` command line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mmsurv.io import atomic_path, read_tsv, write_tsv

__all__ = [
    "run_cohort",
    "run_splits",
    "run_train",
    "run_collect",
    "run_evaluate",
    "run_report",
]

log = logging.getLogger(__name__)


def run_cohort(config: Mapping[str, Any], out: str | Path) -> pd.DataFrame:
    """Validate every input; write ``results/cohort/cohort.tsv`` (patients x modalities)."""
    from mmsurv.cohort import build_cohort

    table = build_cohort(config)
    write_tsv(table, out)
    return table


def run_splits(config: Mapping[str, Any], endpoint: str, out: str | Path) -> pd.DataFrame:
    """Write ``results/splits/{endpoint}.tsv`` (patient_id, fold, split)."""
    from mmsurv.cohort import load_samples, make_splits

    splits = make_splits(load_samples(config), config, endpoint)
    counts = splits.groupby(["fold", "split"]).size().unstack(fill_value=0)
    log.info("%s splits (patients per fold and split):\n%s", endpoint, counts.to_string())
    write_tsv(splits, out)
    return splits


def run_train(
    config: Mapping[str, Any],
    experiment: str,
    fold: int,
    cohort: str | Path,
    splits: Mapping[str, str | Path],
    out_dir: str | Path,
    threads: int = 1,
) -> None:
    """Train one (experiment, fold); see :func:`mmsurv.models.train.train_fold`."""
    from mmsurv.cohort import load_samples
    from mmsurv.models.train import train_fold

    train_fold(
        config,
        experiment,
        int(fold),
        samples=load_samples(config),
        cohort=read_tsv(cohort),
        splits={ep: read_tsv(p) for ep, p in splits.items()},
        out_dir=out_dir,
        threads=threads,
    )


def run_collect(
    fold_dirs: Sequence[str | Path], out_predictions: str | Path, out_survival: str | Path
) -> None:
    """Concatenate the folds' predictions and survival curves of one experiment."""
    preds, curves = [], []
    for fold_dir in fold_dirs:
        fold_dir = Path(fold_dir)
        p = read_tsv(fold_dir / "predictions.tsv")
        preds.append(p)
        c = pd.read_parquet(fold_dir / "survival.parquet")
        curves.append(c.assign(fold=int(p["fold"].iloc[0])))
    write_tsv(pd.concat(preds, ignore_index=True).fillna({"slide_id": ""}), out_predictions)
    with atomic_path(out_survival) as tmp:
        pd.concat(curves, ignore_index=True).to_parquet(tmp, index=False)


def run_evaluate(
    config: Mapping[str, Any],
    experiment: str,
    predictions: str | Path,
    survival: str | Path,
    out_metrics: str | Path,
    out_km: str | Path,
) -> pd.DataFrame:
    """Write ``results/metrics/{experiment}.tsv`` and the experiment's Kaplan-Meier figure."""
    from mmsurv.evaluation import assign_risk_groups, evaluate_experiment, plot_km

    preds = read_tsv(predictions)
    surv = pd.read_parquet(survival)
    truth_path = config["cohort"].get("truth")
    truth = read_tsv(truth_path) if truth_path else None
    metrics = evaluate_experiment(experiment, preds, surv, config, truth)
    write_tsv(metrics, out_metrics)
    grouped = assign_risk_groups(preds, config["evaluation"]["risk_group_quantile"])
    plot_km(grouped, experiment, out_km)
    return metrics


def run_report(
    config: Mapping[str, Any],
    cohort: str | Path,
    metrics: Sequence[str | Path],
    km: Mapping[str, str | Path],
    splits: Mapping[str, str | Path],
    excluded: Mapping[str, str],
    out_metrics: str | Path,
    out_html: str | Path,
    out_forest: str | Path,
) -> None:
    """Write ``results/report/metrics.tsv``, the C-index figure and ``index.html``."""
    from mmsurv.cohort import load_samples
    from mmsurv.report import (
        oracle_by_modality,
        plot_c_index_forest,
        render_report,
        summarise_split,
    )

    table = pd.concat([read_tsv(p) for p in metrics], ignore_index=True)
    write_tsv(table, out_metrics)
    plot_c_index_forest(summarise_split(table, "test"), out_forest)
    truth_path = config["cohort"].get("truth")
    oracle = None
    if truth_path:
        oracle = oracle_by_modality(
            read_tsv(truth_path),
            load_samples(config),
            {ep: read_tsv(p) for ep, p in splits.items()},
            config["endpoints"],
        )
    render_report(
        config=config,
        cohort=read_tsv(cohort),
        metrics=table,
        excluded=excluded,
        forest_png=out_forest,
        km_pngs=km,
        oracle=oracle,
        out_html=out_html,
    )
