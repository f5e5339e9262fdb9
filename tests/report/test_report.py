"""The HTML report and its summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsurv.evaluation.evaluate import METRIC_COLUMNS
from mmsurv.report import plot_c_index_forest, render_report, summarise_split


def _metrics(folds=1):
    rows = []
    for exp in ("a_cox", "b_rsf"):
        for fold in range(folds):
            for split in ("train", "val", "test"):
                rows.append(
                    {
                        "experiment": exp,
                        "endpoint": "os",
                        "level": "patient",
                        "fold": fold,
                        "split": split,
                        "n": 10,
                        "events": 6,
                        "c_index": 0.6 + 0.1 * fold,
                        "c_index_lo": 0.5,
                        "c_index_hi": 0.8,
                        "c_index_uno": 0.6,
                        "ibs": 0.2,
                        "auc": np.nan,
                        "td_auc": 0.65,
                        "logrank_p": 0.04,
                        "c_index_oracle": 0.8,
                    }
                )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def test_summarise_split_over_folds():
    s = summarise_split(_metrics(folds=3), "test").set_index("experiment")
    assert abs(s.loc["a_cox", "c_index"] - 0.7) < 1e-9 and s.loc["a_cox", "folds"] == 3
    assert s.loc["a_cox", "n"] == 30
    assert abs(s.loc["a_cox", "c_index_sd"] - 0.1) < 1e-9


def test_render_report_contains_tables_figures_and_exclusions(tmp_path):
    metrics = _metrics()
    forest = tmp_path / "forest.png"
    plot_c_index_forest(summarise_split(metrics), forest)
    cohort = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "clinical": [True, True],
            "endpoint_os": [True, False],
            "wsi": [True, False],
        }
    )
    config = {
        "report": {"title": "T"},
        "seed": 0,
        "experiments": {"a_cox": {"model": "coxph", "inputs": {"clinical": "small"}}},
        "splits": {"method": "holdout", "fractions": {"train": 0.7, "val": 0.1, "test": 0.2}},
    }
    oracle = pd.DataFrame(
        {"endpoint": ["os"], "component": ["total"], "n": [10], "c_index": [0.81]}
    )
    out = tmp_path / "index.html"
    render_report(
        config=config,
        cohort=cohort,
        metrics=metrics,
        excluded={"wsi_abmil": "the cohort has no wsi data"},
        forest_png=forest,
        km_pngs={"a_cox": forest},
        oracle=oracle,
        out_html=out,
    )
    html = out.read_text()
    assert "wsi_abmil" in html and "the cohort has no wsi data" in html
    assert html.count("data:image/png;base64,") == 2
    assert "0.500&ndash;0.800" in html and "oracle C" in html and "0.810" in html
    assert '<td class="l">coxph</td>' in html
