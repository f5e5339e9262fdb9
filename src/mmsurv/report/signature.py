"""The seed-4 section of the report: a signature's Table 1, risk groups, nomograms, NRI and
radiogenomics, read from ``results/signature/{experiment}/``."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mmsurv.io import read_tsv

__all__ = ["signature_section"]

_SPLITS = ("train", "val", "test")
_SPLIT_NAMES = {"train": "training", "val": "validation (tuning)", "test": "test"}


def _num(value: Any, digits: int = 3) -> str:
    """A number as text; blank for a missing value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else f"{v:.{digits}f}"


def _p(value: Any) -> str:
    """A p-value as text (``< 0.001`` below that)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(v):
        return ""
    return "< 0.001" if v < 1e-3 else f"{v:.3f}"


def _interval(est: Any, lo: Any, hi: Any) -> str:
    text = _num(est)
    if _num(lo) and _num(hi):
        text += f" ({_num(lo)}&ndash;{_num(hi)})"
    return text


def _table1(path: Path) -> dict[str, Any]:
    """Model rows x split columns of C (95 % CI) and AIC."""
    t1 = read_tsv(path)
    splits = [s for s in _SPLITS if (t1["split"] == s).any()]
    rows = []
    for model, part in t1.groupby("model", sort=False):
        by = part.set_index("split")
        cells = {
            s: {
                "c": _interval(*by.loc[s, ["c_index", "c_index_lo", "c_index_hi"]])
                if s in by.index
                else "",
                "aic": _num(by.loc[s, "aic"], 1) if s in by.index else "",
                "n": f"{int(by.loc[s, 'n'])} / {int(by.loc[s, 'events'])}" if s in by.index else "",
            }
            for s in splits
        }
        rows.append({"model": model, "oracle": str(model).startswith("oracle"), "cells": cells})
    return {"splits": [(s, _SPLIT_NAMES[s]) for s in splits], "rows": rows}


def _rows(path: Path, build: Callable[[pd.Series], dict[str, str]]) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    return [build(r) for _, r in read_tsv(path).iterrows()]


def _radiogenomics(folder: Path, png: Callable[[Path], str]) -> dict[str, Any] | None:
    """Summary, enriched and correlated sets, figures of the radiogenomics folder."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    enrichment = _rows(
        folder / "enrichment.tsv",
        lambda r: {
            "term": str(r["term"]),
            "overlap": f"{int(r['overlap'])} / {int(r['set_size'])}",
            "p": _p(r["p_value"]),
            "fdr": _p(r["fdr"]),
        },
    )[:10]
    correlation = _rows(
        folder / "pathway_correlation.tsv",
        lambda r: {
            "term": str(r["term"]),
            "r": _num(r["r"]),
            "p": _p(r["p_value"]),
            "fdr": _p(r["fdr"]),
            "enriched": "yes" if bool(r.get("enriched", False)) else "",
            "fdr_enriched": _p(r.get("fdr_enriched")),
        },
    )[:10]
    km = _rows(
        folder / "pathway_km.tsv",
        lambda r: {
            "split": str(r["split"]),
            "n": f"{int(r['n_high'])} / {int(r['n_low'])}",
            "logrank": _p(r["logrank_p"]),
            "hr": _interval(r["hr"], r["hr_lo"], r["hr_hi"]),
        },
    )
    figures = [
        (name, png(folder / f))
        for name, f in (("volcano", "volcano.png"), ("pathway genes", "pathway_km.png"))
        if (folder / f).is_file()
    ]
    return {
        "summary": summary,
        "enrichment": enrichment,
        "correlation": correlation,
        "km": km,
        "figures": figures,
    }


def signature_section(
    experiment: str,
    folder: str | Path,
    png: Callable[[Path], str],
    cam: str | Path | None = None,
    dti_qc: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Template context of one signature (``results/signature/{experiment}/``).

    Parameters
    ----------
    experiment
        The experiment analysed.
    folder
        Its signature folder.
    png
        Path -> embeddable image source (the report's base64 encoder).
    cam
        The experiment's class-activation figure, if any.
    dti_qc
        ``results/dti/qc.tsv``: counts of ok / skipped patients, map and mask sources.
    """
    folder = Path(folder)
    groups = _rows(
        folder / "risk_groups.tsv",
        lambda r: {
            "split": _SPLIT_NAMES.get(str(r["split"]), str(r["split"])),
            "n": f"{int(r['n_high'])} / {int(r['n_low'])}",
            "events": str(int(r["events"])),
            "logrank": _p(r["logrank_p"]),
            "grho": _p(r["grho_p"]),
            "hr": _interval(r["hr"], r["hr_lo"], r["hr_hi"]),
        },
    )
    cutoff = read_tsv(folder / "risk_groups.tsv")["cutoff"].iloc[0]
    hr = _rows(
        folder / "multivariable.tsv",
        lambda r: {
            "term": str(r["term"]),
            "hr": _interval(r["hr"], r["hr_lo"], r["hr_hi"]),
            "p": _p(r["p_value"]),
        },
    )
    nri = _rows(
        folder / "nri.tsv",
        lambda r: {
            "split": _SPLIT_NAMES.get(str(r["split"]), str(r["split"])),
            "nri": _interval(r["nri"], r["nri_lo"], r["nri_hi"]),
            "events": _num(r["nri_events"]),
            "nonevents": _num(r["nri_nonevents"]),
            "p": _p(r["nri_p"]),
            "years": _num(r["horizon_years"], 0),
        },
    )
    figures = [
        (name, png(folder / f))
        for name, f in (
            ("Kaplan-Meier of the risk groups", "km.png"),
            ("calibration (test split)", "calibration.png"),
            ("decision curves (test split)", "decision_curves.png"),
            ("deep-learning nomogram", "nomogram.png"),
            ("clinicomolecular nomogram", "nomogram_clinicomolecular.png"),
        )
        if (folder / f).is_file()
    ]
    if cam:
        figures.append(("Grad-CAM over the DTI slices (test patients)", png(Path(cam))))
    qc: Mapping[str, Any] | None = None
    if dti_qc is not None and len(dti_qc):
        ok = dti_qc[dti_qc["status"] == "ok"]
        qc = {
            "patients": len(dti_qc),
            "ok": len(ok),
            "skipped": [
                (r["patient_id"], r.get("reason", ""))
                for _, r in dti_qc[dti_qc["status"] != "ok"].iterrows()
            ],
            "sources": ok["map_source"].value_counts().to_dict() if "map_source" in ok else {},
            "masks": ok["mask_source"].value_counts().to_dict() if "mask_source" in ok else {},
            "resampled": int(ok["resampled_to_mask"].astype(bool).sum())
            if "resampled_to_mask" in ok
            else 0,
        }
    return {
        "experiment": experiment,
        "cutoff": _num(cutoff, 4),
        "table1": _table1(folder / "table1.tsv"),
        "groups": groups,
        "hr": hr,
        "nri": nri,
        "figures": figures,
        "radiogenomics": _radiogenomics(folder / "radiogenomics", png),
        "dti_qc": qc,
    }
