"""Seed-2 tables: subtype classification by input format (Table I) and survival within WHO
subtypes (Table II), for whatever classification and SCNA experiments a config runs.

An experiment's *input format* is its MRI region and channels: ``All (cropped)`` for every
configured sequence of the tumour crop, ``T1ce (cropped)``, ``T1ce-T1 (cropped)``, ``All
(whole brain)``... The *arm* is the model: ``mri_cnn`` (single-task CNN), ``mri_mtl`` (MTL, MR)
and ``mri_scna_mtl`` (MTL, MR + SCNA); ``scna_coxph`` is the SCNA-only Cox baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mmsurv.evaluation.metrics import binary_auc

__all__ = ["input_format", "table1", "table2", "label_oracle"]

#: Model -> column arm of the tables.
ARMS = {"mri_cnn": "CNN", "mri_mtl": "MTL (MR)", "mri_scna_mtl": "MTL (MR+SCNA)"}

_NAMES = {"t1": "T1", "t1ce": "T1ce", "t2": "T2", "flair": "FLAIR", "t1ce_t1": "T1ce-T1"}


def input_format(spec: Mapping[str, Any], sequences: Sequence[str]) -> str:
    """``"All (cropped)"``, ``"T1ce (whole brain)"``... of an experiment with an mri input."""
    channels = list(spec["inputs"]["mri"])
    region = "whole brain" if spec.get("region") == "brain" else "cropped"
    if sorted(channels) == sorted(sequences):
        name = "All"
    else:
        name = "+".join(_NAMES.get(c, c) for c in channels)
    return f"{name} ({region})"


def _fmt(value: float) -> str:
    return "" if value is None or np.isnan(value) else f"{value:.3f}"


def _cell(value: float, lo: float, hi: float, experiment: str) -> dict[str, str]:
    text = _fmt(value)
    if text and not np.isnan(lo):
        text += f" ({_fmt(lo)}&ndash;{_fmt(hi)})"
    return {"text": text, "experiment": experiment}


def _pooled(rows: pd.DataFrame, column: str) -> tuple[float, float, float]:
    """Mean over folds of a metric and of its interval bounds."""
    lo, hi = f"{column}_lo", f"{column}_hi"
    return tuple(float(rows[c].mean()) if c in rows else float("nan") for c in (column, lo, hi))


def table1(
    metrics: pd.DataFrame, experiments: Mapping[str, Any], sequences: Sequence[str]
) -> dict[str, Any]:
    """Seed-2 Table I on the test split: AUC of each arm per label, C-index of the MTL arms.

    Parameters
    ----------
    metrics
        All experiments' metric rows (``results/report/metrics.tsv``).
    experiments
        The config's experiments (``model``, ``inputs``, ``label``, ``region``, ``endpoints``).
    sequences
        ``mri.sequences`` (which channel list is "All").

    Returns
    -------
    ``labels`` (label keys in order), ``arms``, ``endpoint`` (of the C-index columns: the first
    endpoint of those experiments), ``rows``: input format -> ``auc`` (label -> arm -> cell)
    and ``c_index`` (arm -> cell), each cell ``{"text", "experiment"}``, and ``oracle_c`` (the
    true risk's C-index on the same test patients, synthetic cohorts); empty when no
    classification experiment ran. k folds: fold means.
    """
    test = metrics[(metrics["split"] == "test") & (metrics["level"] == "patient")]
    rows: dict[str, dict[str, Any]] = {}
    labels: list[str] = []
    endpoints: list[str] = []
    oracle: list[float] = []
    for name, spec in experiments.items():
        arm = ARMS.get(spec["model"])
        part = test[test["experiment"] == name]
        if arm is None or part.empty:
            continue
        label = spec["label"]
        labels += [label] if label not in labels else []
        fmt = input_format(spec, sequences)
        row = rows.setdefault(fmt, {"auc": {}, "c_index": {}})
        endpoint = part["endpoint"].iloc[0]
        endpoints += [endpoint] if endpoint not in endpoints else []
        first = part[part["endpoint"] == endpoint]
        row["auc"].setdefault(label, {})[arm] = _cell(*_pooled(first, "auc"), name)
        if arm != "CNN" and label == labels[0]:  # survival from the first label's models
            row["c_index"][arm] = _cell(*_pooled(first, "c_index"), name)
            oracle.append(float(first["c_index_oracle"].mean()))
    return {
        "labels": labels,
        "arms": list(ARMS.values()),
        "endpoint": endpoints[0] if endpoints else "",
        "rows": rows,
        "oracle_c": _fmt(float(np.nanmean(oracle))) if np.isfinite(oracle).any() else "",
    }


def table2(
    subgroups: pd.DataFrame,
    experiments: Mapping[str, Any],
    sequences: Sequence[str],
    label: str | None,
) -> dict[str, Any]:
    """Seed-2 Table II on the test split: C-index within each subgroup, per input format.

    Rows are the MTL experiments of ``label`` (the paper: the IDH models) by input format,
    with the MR and MR+SCNA arms side by side, then each ``scna_coxph`` experiment and the
    oracle (true risk within the subgroup, synthetic cohorts).

    Parameters
    ----------
    subgroups
        All experiments' ``results/metrics/{experiment}.subgroups.tsv`` rows.
    label
        The label whose MTL models give the survival embeddings (None: the first one used).

    Returns
    -------
    ``subgroups`` (names), ``arms`` (``MTL (MR)``, ``MTL (MR+SCNA)``), ``endpoint``, ``rows``
    (format -> subgroup -> arm -> cell), ``baselines`` (experiment -> subgroup -> cell) and
    ``oracle`` (subgroup -> text); empty ``rows`` and ``baselines`` when nothing applies.
    """
    test = subgroups[subgroups["split"] == "test"]
    mtl = {n: s for n, s in experiments.items() if s["model"] in ("mri_mtl", "mri_scna_mtl")}
    if label is None:
        label = next((s["label"] for s in mtl.values()), None)
    rows: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    baselines: dict[str, dict[str, dict[str, str]]] = {}
    oracle: dict[str, float] = {}
    endpoint = ""
    names: list[str] = []
    for name, spec in experiments.items():
        part = test[test["experiment"] == name]
        wanted = (name in mtl and mtl[name]["label"] == label) or spec["model"] == "scna_coxph"
        if part.empty or not wanted:
            continue
        endpoint = endpoint or part["endpoint"].iloc[0]
        part = part[part["endpoint"] == endpoint]
        if name in mtl:
            target = rows.setdefault(input_format(spec, sequences), {})
            arm = ARMS[spec["model"]]
        else:
            target, arm = baselines.setdefault(name, {}), None
        for group, sub in part.groupby("subgroup"):
            cell = _cell(*_pooled(sub, "c_index"), name)
            if arm is None:
                target[str(group)] = cell
            else:
                target.setdefault(str(group), {})[arm] = cell
            oracle.setdefault(str(group), float(sub["c_index_oracle"].mean()))
            names += [str(group)] if str(group) not in names else []
    return {
        "subgroups": sorted(names),
        "arms": ["MTL (MR)", "MTL (MR+SCNA)"],
        "endpoint": endpoint,
        "rows": rows,
        "baselines": baselines,
        "oracle": {g: _fmt(v) for g, v in oracle.items()},
    }


def label_oracle(
    truth: pd.DataFrame,
    samples: pd.DataFrame,
    splits: Mapping[str, pd.DataFrame],
    labels: Mapping[str, str],
    wanted: Sequence[str],
    endpoint: str,
    imaged: set[str] | None = None,
) -> dict[str, str]:
    """AUC of the synthetic cohort's planted MRI signal (``risk_mri``) for each label.

    The demo renders each tumour from a latent MRI severity that depends on the subtype; the
    AUC of that severity for a label (in whichever direction separates better), on the test
    patients with the label, is what an MR model would reach if it recovered the rendered
    phenotype exactly (a guide, not a strict ceiling: the severity also carries noise).
    ``imaged``: the patients with MRI (the classifiers' test patients); None: every one.
    """
    if "risk_mri" not in truth:
        return {}
    split = splits[endpoint]
    test = split.loc[split["split"] == "test", "patient_id"].astype(str).unique()
    table = samples.set_index("patient_id").join(truth.set_index("patient_id")["risk_mri"])
    table.index = table.index.astype(str)
    table = table.loc[[p for p in test if p in table.index and (imaged is None or p in imaged)]]
    out = {}
    for key in wanted:
        y = pd.to_numeric(table[labels[key]], errors="coerce").to_numpy(float)
        auc = binary_auc(y, table["risk_mri"].to_numpy(float))
        out[key] = _fmt(max(auc, 1.0 - auc))  # the severity may rise or fall with the label
    return out
