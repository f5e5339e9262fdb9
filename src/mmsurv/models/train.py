"""The training job of one (experiment, fold): fit per endpoint, choose on validation, predict."""

from __future__ import annotations

import itertools
import json
import logging
import time as _time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mmsurv.config import clinical_set, experiment_endpoints
from mmsurv.evaluation.metrics import harrell_c
from mmsurv.io import atomic_path, write_tsv
from mmsurv.models.base import SurvivalModel
from mmsurv.models.registry import get_model

__all__ = ["param_grid", "experiment_patients", "experiment_inputs", "train_fold", "time_grid"]

log = logging.getLogger(__name__)

#: Number of points of the time grid on which survival curves are stored.
N_GRID = 100


def param_grid(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Expand list-valued parameters into candidate settings (cartesian product, in order)."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def experiment_patients(cohort: pd.DataFrame, requires: tuple[str, ...]) -> set[str]:
    """Patients of the cohort table who have every modality in ``requires``."""
    ok = np.ones(len(cohort), dtype=bool)
    for modality in requires:
        ok &= cohort[modality].astype(bool).to_numpy()
    return set(cohort.loc[ok, "patient_id"])


def experiment_inputs(
    config: Mapping[str, Any], experiment: str, samples: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Input table (patients x variables, indexed by patient_id) and model keyword arguments.

    Patients with none of the experiment's clinical variables are dropped (their row would be
    pure imputation); partly missing rows are kept and imputed inside the model.
    """
    spec = config["experiments"][experiment]
    inputs = spec["inputs"]
    if set(inputs) != {"clinical"}:
        raise NotImplementedError(
            f"experiment {experiment!r}: inputs {sorted(inputs)} are not available yet"
        )
    variables = clinical_set(config, inputs["clinical"])
    numeric = [v for v in variables if v in config["clinical"]["numeric"]]
    categorical = [v for v in variables if v in config["clinical"]["categorical"]]
    X = samples.set_index("patient_id")[numeric + categorical]
    empty = X.isna().all(axis=1)
    if empty.any():
        log.info(
            "%s: %d patient(s) without any of %s left out",
            experiment,
            int(empty.sum()),
            ", ".join(variables),
        )
    return X.loc[~empty], {"numeric": numeric, "categorical": categorical}


def time_grid(train_time: np.ndarray) -> np.ndarray:
    """Times (days) at which survival curves are stored: 0 to the last training time."""
    return np.linspace(0.0, float(np.max(train_time)), N_GRID)


def _fit_endpoint(
    cls: type[SurvivalModel],
    kwargs: dict[str, Any],
    candidates: list[dict[str, Any]],
    X: pd.DataFrame,
    data: pd.DataFrame,
) -> tuple[SurvivalModel, list[dict[str, Any]]]:
    """Fit every candidate on train; pick the best validation C-index (first on ties).

    A candidate whose validation C-index is undefined (no comparable pair) never wins; a grid
    none of whose candidates can be scored is an error, not a silent first choice.
    """
    train = data[data["split"] == "train"]
    val = data[data["split"] == "val"]
    trials = []
    models = []
    for cand in candidates:
        model = cls(**kwargs, **cand).fit(
            X.loc[train["patient_id"]], train["time"].to_numpy(), train["event"].to_numpy()
        )
        score = float("nan")
        if len(val):
            risk = model.predict_risk(X.loc[val["patient_id"]])
            score = harrell_c(val["time"].to_numpy(float), val["event"].to_numpy(int), risk)
        trials.append({"params": cand, "val_c_index": score})
        models.append(model)
        log.info("  %s -> validation C-index %.3f", cand, score)
    if len(candidates) == 1:
        return models[0], trials
    scores = np.array([t["val_c_index"] for t in trials], dtype=float)
    if np.isnan(scores).all():
        raise ValueError(
            f"a parameter grid needs validation patients with comparable pairs to choose on "
            f"({len(val)} validation patients, {int(val['event'].sum())} events); give single "
            "values or a split with a larger validation part"
        )
    return models[int(np.nanargmax(scores))], trials


def train_fold(
    config: Mapping[str, Any],
    experiment: str,
    fold: int,
    samples: pd.DataFrame,
    cohort: pd.DataFrame,
    splits: Mapping[str, pd.DataFrame],
    out_dir: str | Path,
    threads: int = 1,
) -> None:
    """Train ``experiment`` on ``fold`` for each of its endpoints and write the fold folder.

    Writes ``model.joblib`` (endpoint -> fitted model), ``predictions.tsv`` (DESIGN.md columns),
    ``survival.parquet`` (long: patient_id, endpoint, split, time, survival on a grid)
    and ``train_log.json`` (candidates, validation scores, chosen parameters, sizes, timings).
    """
    out_dir = Path(out_dir)
    spec = config["experiments"][experiment]
    cls = get_model(spec["model"])
    X, kwargs = experiment_inputs(config, experiment, samples)
    kwargs |= {"seed": int(config["seed"]) + fold, "threads": threads}
    eligible = experiment_patients(cohort, tuple(spec["inputs"])) & set(X.index)
    candidates = param_grid(spec.get("params", {}))
    models: dict[str, SurvivalModel] = {}
    preds, curves, logs = [], [], {}
    for endpoint in experiment_endpoints(config, experiment):
        ep = config["endpoints"][endpoint]
        split = splits[endpoint]
        split = split[(split["fold"] == fold) & split["patient_id"].isin(eligible)]
        data = split.merge(
            samples[["patient_id", ep["time"], ep["event"]]], on="patient_id", how="left"
        ).rename(columns={ep["time"]: "time", ep["event"]: "event"})
        data["event"] = data["event"].astype(int)
        log.info(
            "%s fold %d %s: %s", experiment, fold, endpoint, data["split"].value_counts().to_dict()
        )
        start = _time.perf_counter()
        model, trials = _fit_endpoint(cls, kwargs, candidates, X, data)
        models[endpoint] = model
        grid = time_grid(data.loc[data["split"] == "train", "time"].to_numpy())
        Xp = X.loc[data["patient_id"]]
        risk = model.predict_risk(Xp)
        preds.append(
            data.assign(slide_id="", endpoint=endpoint, fold=fold, risk=risk)[
                ["patient_id", "slide_id", "endpoint", "fold", "split", "risk", "time", "event"]
            ]
        )
        surv = model.predict_survival(Xp, grid)  # (n, len(grid))
        curves.append(
            pd.DataFrame(
                {
                    "patient_id": np.repeat(data["patient_id"].to_numpy(), len(grid)),
                    "endpoint": endpoint,
                    "split": np.repeat(data["split"].to_numpy(), len(grid)),
                    "time": np.tile(grid, len(data)),
                    "survival": surv.ravel(),
                }
            )
        )
        logs[endpoint] = {
            "n": data["split"].value_counts().to_dict(),
            "events": data.groupby("split")["event"].sum().astype(int).to_dict(),
            "candidates": trials,
            "chosen": model.params,
            "fit_seconds": round(_time.perf_counter() - start, 3),
            "model": model.describe(),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.joblib") as tmp:
        joblib.dump(models, tmp)
    write_tsv(pd.concat(preds, ignore_index=True), out_dir / "predictions.tsv")
    with atomic_path(out_dir / "survival.parquet") as tmp:
        pd.concat(curves, ignore_index=True).to_parquet(tmp, index=False)
    with atomic_path(out_dir / "train_log.json") as tmp:
        tmp.write_text(
            json.dumps(
                {"experiment": experiment, "fold": fold, "model": spec["model"], "endpoints": logs},
                indent=2,
                default=str,
            )
        )
