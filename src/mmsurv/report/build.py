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
from mmsurv.io import atomic_path

__all__ = ["summarise_split", "oracle_by_modality", "render_report"]

#: Metric columns that identify a row or do not apply to survival experiments.
_KEYS = ("experiment", "endpoint", "level", "fold", "split", "auc")

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("mmsurv.report", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)


def summarise_split(metrics: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """One row per (experiment, endpoint) on ``split``: the fold's values, or over k folds the
    mean of each metric (the interval columns then hold the mean of the fold intervals) and
    ``c_index_sd`` across folds."""
    rows = metrics[(metrics["split"] == split) & (metrics["level"] == "patient")]
    numeric = [c for c in METRIC_COLUMNS if c not in _KEYS]
    grouped = rows.groupby(["experiment", "endpoint"], sort=False)
    out = grouped[numeric].mean()
    out["n"] = grouped["n"].sum()
    out["events"] = grouped["events"].sum()
    out["folds"] = grouped["fold"].nunique()
    out["c_index_sd"] = grouped["c_index"].std(ddof=1)
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
) -> None:
    """Write the self-contained HTML report (figures embedded)."""
    test = summarise_split(metrics, "test")
    val = summarise_split(metrics, "val")
    experiments = config["experiments"]

    def rows_of(table: pd.DataFrame) -> list[dict[str, str]]:
        out = []
        for _, r in table.iterrows():
            spec = experiments.get(r["experiment"], {})
            c = _fmt(r["c_index"])
            if r["folds"] > 1:
                c += f" &plusmn; {_fmt(r['c_index_sd'])} (sd over {int(r['folds'])} folds)"
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
        val_rows=rows_of(val),
        has_oracle=bool(metrics["c_index_oracle"].notna().any()),
        oracle=None if oracle is None else oracle.to_dict("records"),
        fmt=_fmt,
        forest=_png(forest_png),
        km=[(name, _png(p)) for name, p in km_pngs.items()],
    )
    with atomic_path(out_html) as tmp:
        tmp.write_text(html)
