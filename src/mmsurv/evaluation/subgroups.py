"""C-index within patient subgroups (seed 2, Table II: survival within each WHO subtype).

A subgroup is a value of a samples-sheet column (``evaluation.subgroup_label`` names a key of
``labels``, e.g. the WHO 2016 subtype). Within each subgroup of each (endpoint, fold, split),
Harrell's C of the experiment's patient-level risk with its patient-bootstrap interval, and the
oracle's C on the same patients for a synthetic cohort. Nothing is fitted here: the risks are the
model's, the groups come from the sheet.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from mmsurv.evaluation.metrics import bootstrap_c_interval, harrell_c

__all__ = ["SUBGROUP_COLUMNS", "subgroup_metrics"]

log = logging.getLogger(__name__)

#: Columns of results/metrics/{experiment}.subgroups.tsv.
SUBGROUP_COLUMNS = [
    "experiment",
    "endpoint",
    "fold",
    "split",
    "subgroup",
    "n",
    "events",
    "c_index",
    "c_index_lo",
    "c_index_hi",
    "c_index_oracle",
]


def subgroup_metrics(
    experiment: str,
    predictions: pd.DataFrame,
    groups: pd.Series,
    ev: Mapping[str, Any],
    seed: int,
    oracle: pd.Series | None = None,
) -> pd.DataFrame:
    """One row per (endpoint, fold, split, subgroup) of the patient-level predictions.

    Parameters
    ----------
    predictions
        ``results/predictions/{experiment}.tsv`` rows; only patient rows (empty ``slide_id``)
        are used.
    groups
        Subgroup of each patient (index ``patient_id``); patients without one are left out.
    ev
        The ``evaluation`` config (``bootstrap``).
    oracle
        True risk per patient (synthetic cohorts), for ``c_index_oracle``.

    Returns
    -------
    pandas.DataFrame
        :data:`SUBGROUP_COLUMNS`; C-index columns are NaN for a subgroup without a comparable
        pair (e.g. no event).
    """
    slide = predictions.get("slide_id", pd.Series("", index=predictions.index))
    preds = predictions[slide.fillna("").astype(str) == ""].copy()
    groups = groups.dropna()
    groups.index = groups.index.astype(str)
    preds["subgroup"] = preds["patient_id"].astype(str).map(groups)
    preds = preds.dropna(subset=["subgroup"])
    rows = []
    keys = ["endpoint", "fold", "split", "subgroup"]
    for (endpoint, fold, split, subgroup), sub in preds.groupby(keys, sort=True):
        t, e = sub["time"].to_numpy(float), sub["event"].to_numpy(int)
        r = sub["risk"].to_numpy(float)
        lo, hi, _ = bootstrap_c_interval(
            t, e, r, sub["patient_id"].to_numpy(), int(ev["bootstrap"]), seed
        )
        true = float("nan")
        if oracle is not None:
            true = harrell_c(t, e, oracle.reindex(sub["patient_id"].astype(str)).to_numpy(float))
        rows.append(
            {
                "experiment": experiment,
                "endpoint": endpoint,
                "fold": int(fold),
                "split": split,
                "subgroup": str(subgroup),
                "n": len(sub),
                "events": int(e.sum()),
                "c_index": harrell_c(t, e, r),
                "c_index_lo": lo,
                "c_index_hi": hi,
                "c_index_oracle": true,
            }
        )
    table = pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)
    for _, row in table[table["split"] == "test"].iterrows():
        log.info(
            "%s %s fold %d test, %s (n=%d): C=%.3f",
            experiment,
            row["endpoint"],
            row["fold"],
            row["subgroup"],
            row["n"],
            row["c_index"],
        )
    return table
