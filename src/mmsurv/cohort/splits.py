"""Patient-level splits: holdout fractions, stratified k-fold, or a user column."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

__all__ = ["make_splits", "SPLIT_NAMES"]

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


def make_splits(samples: pd.DataFrame, config: Mapping[str, Any], endpoint: str) -> pd.DataFrame:
    """Assign every patient with a complete ``endpoint`` to train/val/test, per fold.

    Parameters
    ----------
    samples
        The validated samples sheet (one row per patient; endpoint columns numeric).
    config
        The validated configuration (``splits``, ``endpoints``, ``labels``, ``seed``).
    endpoint
        Name of the endpoint whose event stratifies the split.

    Returns
    -------
    DataFrame with columns ``patient_id``, ``fold`` (0-based int), ``split``. Holdout and
    column methods give fold 0 only; k-fold gives ``folds`` rows per patient, the test parts
    of the folds being disjoint and covering every patient once. Patients whose time or event
    is missing are left out (logged).
    """
    ep = config["endpoints"][endpoint]
    spec = config["splits"]
    seed = int(config["seed"])
    complete = samples[ep["time"]].notna() & samples[ep["event"]].notna()
    if (~complete).any():
        log.info(
            "%s: %d patient(s) without time/event left out of the split",
            endpoint,
            int((~complete).sum()),
        )
    df = samples.loc[complete].reset_index(drop=True)
    patients = df["patient_id"].to_numpy()
    strata = _strata(df, ep["event"], config)

    if spec["method"] == "column":
        return _column_split(df, spec["column"])
    if spec["method"] == "holdout":
        fr = spec["fractions"]
        split = _holdout(len(df), strata, fr["val"], fr["test"], seed)
        return pd.DataFrame({"patient_id": patients, "fold": 0, "split": split})
    rows = []
    k = int(spec["folds"])
    kfold = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (train_idx, test_idx) in enumerate(kfold.split(np.zeros(len(df)), strata)):
        split = np.empty(len(df), dtype=object)
        split[test_idx] = "test"
        inner = _holdout(
            len(train_idx), strata[train_idx], spec["val_fraction"], 0.0, seed + fold + 1
        )
        split[train_idx] = inner
        rows.append(pd.DataFrame({"patient_id": patients, "fold": fold, "split": split}))
    return pd.concat(rows, ignore_index=True)


def _strata(df: pd.DataFrame, event_col: str, config: Mapping[str, Any]) -> np.ndarray:
    """Event (and optional label) strata; falls back to the event alone when a stratum is tiny."""
    event = df[event_col].astype(int).astype(str)
    label = config["splits"]["stratify_label"]
    if label is None:
        return event.to_numpy()
    combined = event + "|" + df[config["labels"][label]].astype(str)
    if combined.value_counts().min() < 2:
        log.warning("stratum of %s x event with < 2 patients: stratifying by event only", label)
        return event.to_numpy()
    return combined.to_numpy()


def _holdout(n: int, strata: np.ndarray, val: float, test: float, seed: int) -> np.ndarray:
    """Labels train/val/test for ``n`` patients with the given val/test shares, stratified."""
    idx = np.arange(n)
    split = np.full(n, "train", dtype=object)
    rest = idx
    if test > 0:
        rest, test_idx = _stratified_take(idx, strata, test, seed)
        split[test_idx] = "test"
    if val > 0:
        share = val / (1.0 - test)
        _, val_idx = _stratified_take(rest, strata[rest], share, seed + 1)
        split[val_idx] = "val"
    return split


def _stratified_take(
    idx: np.ndarray, strata: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (kept, taken) with ``share`` taken, stratified when possible."""
    n_take = max(1, round(share * len(idx)))
    stratify = strata if pd.Series(strata).value_counts().min() >= 2 else None
    if stratify is not None and n_take < len(set(strata)):
        stratify = None
    kept, taken = train_test_split(idx, test_size=n_take, stratify=stratify, random_state=seed)
    return np.sort(kept), np.sort(taken)


def _column_split(df: pd.DataFrame, column: str) -> pd.DataFrame:
    if column not in df.columns:
        raise ValueError(f"splits.method is 'column' but samples has no column {column!r}")
    split = df[column].astype(str).str.strip().str.lower()
    bad = ~split.isin(SPLIT_NAMES)
    if bad.any():
        rows = ", ".join(
            f"{p}={v!r}" for p, v in zip(df["patient_id"][bad], df[column][bad], strict=True)
        )
        raise ValueError(f"column {column!r} must be train, val or test; got {rows}")
    return pd.DataFrame({"patient_id": df["patient_id"], "fold": 0, "split": split})
