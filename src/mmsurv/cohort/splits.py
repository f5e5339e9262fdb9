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

    All endpoints share one assignment: it is drawn on the patients of the *first* configured
    endpoint, stratified by its event (and ``splits.stratify_label``); another endpoint keeps
    each of those patients where they are, so the test patients of OS and of a second endpoint
    are the same people. Patients complete only for a later endpoint are split among
    themselves, stratified by that endpoint's event.

    Parameters
    ----------
    samples
        The validated samples sheet (one row per patient; endpoint columns numeric).
    config
        The validated configuration (``splits``, ``endpoints``, ``labels``, ``seed``).
    endpoint
        Name of the endpoint.

    Returns
    -------
    DataFrame with columns ``patient_id``, ``fold`` (0-based int), ``split``. Holdout and
    column methods give fold 0 only; k-fold gives ``folds`` rows per patient, the test parts
    of the folds being disjoint and covering every patient once. Patients whose time or event
    is missing are left out (logged).
    """
    seed = int(config["seed"])
    primary = next(iter(config["endpoints"]))
    complete = _complete(samples, config, endpoint)
    if (~complete).any():
        log.info(
            "%s: %d patient(s) without time/event left out of the split",
            endpoint,
            int((~complete).sum()),
        )
    if config["splits"]["method"] == "column":
        return _column_split(samples.loc[complete], config["splits"]["column"])
    base = _assign(samples.loc[_complete(samples, config, primary)], primary, config, seed)
    if endpoint == primary:
        return base
    mine = set(samples.loc[complete, "patient_id"])
    kept = base[base["patient_id"].isin(mine)]
    extra = samples.loc[complete & ~samples["patient_id"].isin(base["patient_id"])]
    if extra.empty:
        return kept.reset_index(drop=True)
    log.info("%s: %d patient(s) lack %s and are split on their own", endpoint, len(extra), primary)
    more = _assign(extra, endpoint, config, seed + 1000)
    out = pd.concat([kept, more], ignore_index=True)
    return out.sort_values(["fold", "patient_id"], kind="stable").reset_index(drop=True)


def _complete(samples: pd.DataFrame, config: Mapping[str, Any], endpoint: str) -> pd.Series:
    ep = config["endpoints"][endpoint]
    return samples[ep["time"]].notna() & samples[ep["event"]].notna()


def _assign(df: pd.DataFrame, endpoint: str, config: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """Holdout or k-fold assignment of the patients of ``df``, stratified by ``endpoint``."""
    spec = config["splits"]
    df = df.reset_index(drop=True)
    patients = df["patient_id"].to_numpy()
    strata = _strata(df, config["endpoints"][endpoint]["event"], config)
    if spec["method"] == "holdout":
        fr = spec["fractions"]
        split = _holdout(len(df), strata, fr["val"], fr["test"], seed)
        return pd.DataFrame({"patient_id": patients, "fold": 0, "split": split})
    k = int(spec["folds"])
    if pd.Series(strata).value_counts().min() >= k:
        kfold = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        folds = list(kfold.split(np.zeros(len(df)), strata))
    else:  # a stratum smaller than k (few patients): shuffled round robin, unstratified
        log.warning(
            "%s: a stratum has fewer than %d patients; folds are not stratified", endpoint, k
        )
        fold_of = np.empty(len(df), dtype=int)
        fold_of[np.random.default_rng(seed).permutation(len(df))] = np.arange(len(df)) % k
        folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
    rows = []
    for fold, (train_idx, test_idx) in enumerate(folds):
        split = np.empty(len(df), dtype=object)
        split[test_idx] = "test"
        split[train_idx] = _holdout(
            len(train_idx), strata[train_idx], spec["val_fraction"], 0.0, seed + fold + 1
        )
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
    if n < 3:  # nothing sensible to hold out
        return split
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
