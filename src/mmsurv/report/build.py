"""The HTML report: comparison tables with intervals, oracle columns and figures."""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

import mmsurv
from mmsurv.evaluation.evaluate import METRIC_COLUMNS
from mmsurv.evaluation.metrics import harrell_c
from mmsurv.evaluation.subgroups import SUBGROUP_COLUMNS
from mmsurv.io import atomic_path

__all__ = ["summarise_split", "oracle_by_modality", "table3", "render_report"]

#: Metric columns that identify a row or do not apply to survival experiments.
_KEYS = ("experiment", "endpoint", "level", "fold", "split", "auc")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mmsurv.report", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def summarise_split(metrics: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per (experiment, endpoint) on ``split``: the fold's values, or over k folds the
    mean of each metric (the interval columns then hold the mean of the fold intervals, and
    ``c_index_sd`` the mean of the folds' bootstrap SDs) and ``c_index_sd_folds``, the SD of
    the C-index across folds (NaN for one fold)."""
    rows = metrics[(metrics["split"] == split) & (metrics["level"] == "patient")]
    numeric = [c for c in METRIC_COLUMNS if c not in _KEYS and c in rows.columns]
    grouped = rows.groupby(["experiment", "endpoint"], sort=False)
    out = grouped[numeric].mean()
    out["n"] = grouped["n"].sum()
    out["events"] = grouped["events"].sum()
    out["folds"] = grouped["fold"].nunique()
    out["c_index_sd_folds"] = grouped["c_index"].std(ddof=1)
    return out.reset_index()


def oracle_by_modality(
    truth: pd.DataFrame,
    samples: pd.DataFrame,
    splits: Mapping[str, pd.DataFrame],
    endpoints: Mapping[str, Mapping[str, str]],
) -> pd.DataFrame:
    """Harrell's C of each true risk component on the test patients, per endpoint.

    Rows: endpoint, component (``risk`` = total, ``risk_<modality>``), n, c_index.
    """
    comps = [c for c in truth.columns if c.startswith("risk")]
    rows = []
    for name, ep in endpoints.items():
        test = splits[name]
        test = test.loc[test["split"] == "test", "patient_id"].unique()
        data = samples.set_index("patient_id").loc[test, [ep["time"], ep["event"]]]
        data = data.join(truth.set_index("patient_id")[comps])
        for comp in comps:
            rows.append(
                {
                    "endpoint": name,
                    "component": "total" if comp == "risk" else comp.removeprefix("risk_"),
                    "n": len(data),
                    "c_index": harrell_c(
                        data[ep["time"]].to_numpy(float),
                        data[ep["event"]].to_numpy(int),
                        data[comp].to_numpy(float),
                    ),
                }
            )
    return pd.DataFrame(rows)


def _png(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _fmt(value: float, digits: int = 3) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and np.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _pvalue(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _interval(c: float, lo: float, hi: float) -> str:
    """``C (lo-hi)`` or empty."""
    if c is None or np.isnan(c):
        return ""
    return f"{_fmt(c)} ({_fmt(lo)}&ndash;{_fmt(hi)})"


def _level_rows(metrics: pd.DataFrame, experiments: Mapping[str, Any]) -> list[dict[str, str]]:
    """Rows of the slide/case-level table for experiments with WSI or RNA inputs."""
    from mmsurv.report.networks import level_table

    wanted = [e for e, spec in experiments.items() if {"wsi", "rna"} & set(spec["inputs"])]
    sub = metrics[metrics["experiment"].isin(wanted)]
    if sub.empty:
        return []
    out = []
    for r in level_table(sub, "test").itertuples(index=False):
        spec = experiments[r.experiment]
        out.append(
            {
                "experiment": r.experiment,
                "model": spec["model"],
                "inputs": ", ".join(f"{k}: {v}" for k, v in spec["inputs"].items()),
                "endpoint": r.endpoint,
                "n_slides": "" if np.isnan(r.n_slides) else str(int(r.n_slides)),
                "slide": _interval(r.c_slide, r.c_slide_lo, r.c_slide_hi),
                "n_patients": "" if np.isnan(r.n_patients) else str(int(r.n_patients)),
                "patient": _interval(r.c_patient, r.c_patient_lo, r.c_patient_hi),
                "oracle": _fmt(r.c_oracle),
            }
        )
    return out


def table3(
    summary: pd.DataFrame,
    experiments: Mapping[str, Any],
    oracle: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The test split in the layout of seed-3 Table 3: one row per experiment and, for each
    endpoint, "C-index (SD)" (Harrell's C, SD over the patient-bootstrap resamples), its 95%
    interval, the Brier score at the horizon and the integrated Brier score.

    Parameters
    ----------
    summary
        :func:`summarise_split` of the test split (patient level; k folds: fold means).
    oracle
        :func:`oracle_by_modality` rows; its ``total`` component gives an oracle row (C only).

    Returns
    -------
    ``endpoints`` (names), ``horizon`` (days, text), ``folds`` (largest number of folds),
    ``rows`` (experiment, model, ``cells``: endpoint -> c_sd, ci, brier, ibs) and ``oracle``
    (endpoint -> C text, or ``None``).
    """
    endpoints = list(dict.fromkeys(summary["endpoint"]))
    horizons = summary["horizon_days"].dropna().unique() if "horizon_days" in summary else []
    blank = {"c_sd": "", "ci": "", "brier": "", "ibs": ""}
    rows = []
    for name, part in summary.groupby("experiment", sort=False):
        cells = {ep: dict(blank) for ep in endpoints}
        for _, r in part.iterrows():
            c = _fmt(r["c_index"])
            sd = r.get("c_index_sd", np.nan)
            cells[r["endpoint"]] = {
                "c_sd": f"{c} ({_fmt(sd)})" if c and not np.isnan(sd) else c,
                "ci": f"{_fmt(r['c_index_lo'])}&ndash;{_fmt(r['c_index_hi'])}"
                if not np.isnan(r["c_index_lo"])
                else "",
                "brier": _fmt(r.get("brier", np.nan)),
                "ibs": _fmt(r["ibs"]),
            }
        rows.append(
            {
                "experiment": name,
                "model": experiments.get(name, {}).get("model", ""),
                "cells": cells,
            }
        )
    oracle_row = None
    if oracle is not None and not oracle.empty:
        total = oracle[oracle["component"] == "total"].set_index("endpoint")["c_index"]
        oracle_row = {ep: _fmt(total.get(ep, np.nan)) for ep in endpoints}
    return {
        "endpoints": endpoints,
        "horizon": ", ".join(f"{h:g}" for h in horizons),
        "folds": int(summary["folds"].max()) if len(summary) else 0,
        "rows": rows,
        "oracle": oracle_row,
    }


def _encoder_summary(name: str, table: pd.DataFrame) -> dict[str, Any]:
    """What the report says about one encoder's features (random initialisation stated)."""
    used = table[table["skipped"] == 0] if "skipped" in table else table
    weights = sorted({str(w) for w in used["weights"].dropna()} - {""})
    random = bool(
        (used["weights"].astype(str) == "random-init").any()
        or (used["pretrained"].astype(str).isin(["False", "false", "0"])).any()
    )
    return {
        "name": name,
        "slides": len(used),
        "tiles": int(used["n_tiles"].sum()),
        "dim": ", ".join(str(d) for d in sorted(set(used["dim"]))),
        "ids": ", ".join(sorted({str(i) for i in used["encoder_id"].dropna()} - {""})),
        "weights": ", ".join(weights) or "not recorded (features made by another tool)",
        "devices": ", ".join(
            sorted({f"{d} {t}" for d, t in zip(used["device"], used["dtype"], strict=True)} - {" "})
        ),
        "random": random,
    }


def _qc_summary(qc: pd.DataFrame | None) -> dict[str, Any] | None:
    """Counts of the WSI QC table and the skipped slides with their reasons."""
    if qc is None:
        return None
    skipped = qc[qc["status"] == "skipped"]
    return {
        "slides": len(qc),
        "ok": int((qc["status"] == "ok").sum()),
        "no_tissue": qc.loc[qc["status"] == "no_tissue", "slide_id"].tolist(),
        "skipped": list(zip(skipped["slide_id"], skipped["reason"].fillna(""), strict=True)),
        "tiles": int(qc["n_tiles"].sum()),
        "median_tiles": float(qc.loc[qc["status"] == "ok", "n_tiles"].median())
        if (qc["status"] == "ok").any()
        else 0.0,
    }


def _mri_qc_summary(qc: pd.DataFrame | None, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Counts of the MRI QC table, the N4 effect per sequence and the skipped patients."""
    if qc is None:
        return None
    ok = qc[qc["status"] == "ok"]
    n4 = []
    for seq in config["mri"]["sequences"]:
        before, after = f"cv_before_{seq}", f"cv_after_{seq}"
        if before in ok and after in ok and len(ok):
            n4.append((seq, float(ok[before].median()), float(ok[after].median())))
    skipped = qc[qc["status"] == "skipped"]
    mri = config["mri"]
    sources = ok["mask_source"] if "mask_source" in ok else pd.Series(dtype=str)
    return {
        "patients": len(qc),
        "ok": len(ok),
        "weak_network": int((sources == "weak_network").sum()),
        "weak_file": int((sources == "weak_file").sum()),
        "n4": n4,
        "skipped": list(zip(skipped["patient_id"], skipped["reason"].fillna(""), strict=True)),
        "settings": (
            f"orientation {mri['orientation']}, spacing "
            f"{'of the reference' if mri['spacing_mm'] is None else mri['spacing_mm']} mm, "
            f"N4 {'shrink ' + str(mri['n4']['shrink_factor']) if mri['n4']['enabled'] else 'off'}"
            f", crop {'x'.join(str(v) for v in mri['crop_size'])} voxels, "
            f"margin {mri['margin_mm']:g} mm"
        ),
    }


def _record_summary(record: Mapping[str, Any] | None, results: str) -> dict[str, Any] | None:
    """What the Reproducibility section shows of a run record (None: no section)."""
    if record is None:
        return None
    git = record.get("git", {})
    if git.get("commit", "unknown") == "unknown":
        commit = f"unknown ({git.get('reason', 'no git checkout')})"
    else:
        commit = git["commit"]
        if git.get("dirty") is True:
            n = len(git.get("changes", []))
            commit += f" with uncommitted changes ({n} file{'s' if n != 1 else ''})"
        elif git.get("dirty") == "unknown":
            commit += " (uncommitted changes unknown)"
    seeds = []
    for name, value in record.get("seeds", {}).items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        seeds.append((name, str(value)))
    device = record.get("device", {})
    seen = device.get("torch", "not installed")
    if seen != "not installed":
        gpus = device.get("cuda_devices") or []
        seen = f"torch {seen}, " + (
            f"CUDA visible ({', '.join(gpus)})" if device.get("cuda_available") else "no CUDA GPU"
        )
    return {
        "commit": commit,
        "created": record.get("created", ""),
        "mmsurv": record.get("mmsurv", ""),
        "python": record.get("python", ""),
        "platform": record.get("platform", ""),
        "hostname": record.get("hostname", ""),
        "seeds": seeds,
        "device": device.get("requested", ""),
        "device_seen": seen,
        "command": (record.get("invocation") or {}).get("command"),
        "packages": list(record.get("packages", {}).items()),
        "config": f"{results}/run/config.yaml",
        "record": f"{results}/run/record.json",
    }


def render_report(
    *,
    config: Mapping[str, Any],
    cohort: pd.DataFrame,
    metrics: pd.DataFrame,
    excluded: Mapping[str, str],
    forest_png: str | Path,
    km_pngs: Mapping[str, str | Path],
    oracle: pd.DataFrame | None,
    out_html: str | Path,
    curves: Mapping[str, str | Path] | None = None,
    attention: Mapping[str, str | Path] | None = None,
    features: Mapping[str, pd.DataFrame] | None = None,
    wsi_qc: pd.DataFrame | None = None,
    calibration_pngs: Mapping[str, str | Path] | None = None,
    roc_pngs: Mapping[str, str | Path] | None = None,
    gradcam: Mapping[str, str | Path] | None = None,
    mri_qc: pd.DataFrame | None = None,
    subgroups: pd.DataFrame | None = None,
    label_oracle: Mapping[str, str] | None = None,
    scna_umap: str | Path | None = None,
    attributions: Mapping[str, str | Path] | None = None,
    signatures: Mapping[str, str | Path] | None = None,
    dti_cam: Mapping[str, str | Path] | None = None,
    dti_qc: pd.DataFrame | None = None,
    record: Mapping[str, Any] | None = None,
) -> None:
    """Write the self-contained HTML report (figures embedded).

    ``curves`` / ``attention`` / ``calibration_pngs`` / ``roc_pngs``: experiment ->
    training-curve / attention / calibration / time-dependent ROC figure; ``features``:
    encoder -> provenance table (:func:`mmsurv.report.networks.features_provenance`);
    ``wsi_qc``: the slides' QC table; ``gradcam``: experiment -> Grad-CAM figure; ``mri_qc``:
    the imaged patients' preprocessing QC table (``results/mri/qc.tsv``); ``subgroups``: the
    experiments' subgroup metrics (seed-2 Table II); ``label_oracle``: label -> oracle AUC text
    (:func:`mmsurv.report.subtypes.label_oracle`); ``scna_umap``: the SCNA UMAP figure;
    ``attributions``: classifier experiment -> integrated-gradients figure; ``signatures``:
    experiment -> its seed-4 folder ``results/signature/{experiment}``; ``dti_cam``: DTI
    network -> its Grad-CAM figure; ``dti_qc``: ``results/dti/qc.tsv`` (shown with the
    signatures of experiments that read DTI); ``record``: the run's reproducibility record
    (:func:`mmsurv.provenance.build_record`, ``results/run/record.json``), shown in a last
    Reproducibility section (left out when None).
    """
    from mmsurv.report.signature import signature_section
    from mmsurv.report.subtypes import table1, table2

    test = summarise_split(metrics, "test")
    val = summarise_split(metrics, "val")
    experiments = config["experiments"]
    sequences = config.get("mri", {}).get("sequences", [])

    def rows_of(table: pd.DataFrame) -> list[dict[str, str]]:
        out = []
        for _, r in table.iterrows():
            spec = experiments.get(r["experiment"], {})
            c = _fmt(r["c_index"])
            if r["folds"] > 1:
                c += f" &plusmn; {_fmt(r['c_index_sd_folds'])} (sd over {int(r['folds'])} folds)"
            out.append(
                {
                    "experiment": r["experiment"],
                    "model": spec.get("model", ""),
                    "inputs": ", ".join(f"{k}: {v}" for k, v in spec.get("inputs", {}).items()),
                    "endpoint": r["endpoint"],
                    "n": str(int(r["n"])),
                    "events": str(int(r["events"])),
                    "c_index": c,
                    "ci": f"{_fmt(r['c_index_lo'])}&ndash;{_fmt(r['c_index_hi'])}"
                    + (f" (mean of {int(r['folds'])} fold intervals)" if r["folds"] > 1 else ""),
                    "uno": _fmt(r["c_index_uno"]),
                    "ibs": _fmt(r["ibs"]),
                    "td_auc": _fmt(r["td_auc"]),
                    "logrank_p": _pvalue(r["logrank_p"]),
                    "oracle": _fmt(r["c_index_oracle"]),
                }
            )
        return out

    level_rows = _level_rows(metrics, experiments)
    mods = ["clinical", "wsi", "mri", "mask", "dti", "rna", "scna"]
    html = _ENV.get_template("index.html.j2").render(
        title=config["report"]["title"],
        created=_dt.datetime.now().isoformat(timespec="seconds"),
        version=mmsurv.__version__,
        seed=config["seed"],
        split=config["splits"],
        n_patients=len(cohort),
        modalities=[(m, int(cohort[m].sum())) for m in mods if m in cohort],
        endpoints=[
            (c.removeprefix("endpoint_"), int(cohort[c].sum()))
            for c in cohort.columns
            if c.startswith("endpoint_")
        ],
        excluded=excluded,
        test_rows=rows_of(test),
        table3=table3(test, experiments, oracle),
        val_rows=rows_of(val),
        has_oracle=bool(metrics["c_index_oracle"].notna().any()),
        oracle=None if oracle is None else oracle.to_dict("records"),
        fmt=_fmt,
        forest=_png(forest_png),
        km=[(name, _png(p)) for name, p in km_pngs.items()],
        calibration=[(name, _png(p)) for name, p in (calibration_pngs or {}).items()],
        roc=[(name, _png(p)) for name, p in (roc_pngs or {}).items()],
        level_rows=level_rows,
        curves=[(name, _png(p)) for name, p in (curves or {}).items()],
        attention=[(name, _png(p)) for name, p in (attention or {}).items()],
        encoders=[_encoder_summary(name, t) for name, t in (features or {}).items()],
        wsi_qc=_qc_summary(wsi_qc),
        gradcam=[(name, _png(p)) for name, p in (gradcam or {}).items()],
        mri_qc=_mri_qc_summary(mri_qc, config),
        table1=table1(metrics, experiments, sequences),
        table2=table2(
            subgroups if subgroups is not None else pd.DataFrame(columns=SUBGROUP_COLUMNS),
            experiments,
            sequences,
            None,
        ),
        subgroup_label=config.get("evaluation", {}).get("subgroup_label"),
        label_oracle=dict(label_oracle or {}),
        scna_extra=any(
            s.get("params", {}).get("pca_extra")
            for s in experiments.values()
            if "scna" in s["inputs"]
        ),
        scna_umap=_png(scna_umap) if scna_umap else None,
        attributions=[(name, _png(p)) for name, p in (attributions or {}).items()],
        signatures=[
            signature_section(
                name,
                folder,
                _png,
                (dti_cam or {}).get(name),
                dti_qc if "dti" in experiments.get(name, {}).get("inputs", {}) else None,
            )
            for name, folder in (signatures or {}).items()
        ],
        record=_record_summary(record, config.get("results", "results")),
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)
