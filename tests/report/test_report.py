"""The HTML report and its summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmsurv.evaluation.evaluate import METRIC_COLUMNS
from mmsurv.report import plot_c_index_forest, render_report, summarise_split
from mmsurv.report.build import table3


def _metrics(folds=1, endpoints=("os",)):
    rows = []
    for exp in ("a_cox", "b_rsf"):
        for fold in range(folds):
            for split in ("train", "val", "test"):
                for endpoint in endpoints:
                    rows.append(_row(exp, endpoint, fold, split))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def _row(exp, endpoint, fold, split):
    return {
        "experiment": exp,
        "endpoint": endpoint,
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
        "c_index_sd": 0.05 + 0.01 * fold,
        "brier": 0.18 if exp == "a_cox" else np.nan,
        "horizon_days": 365.0,
    }


def test_summarise_split_over_folds():
    s = summarise_split(_metrics(folds=3), "test").set_index("experiment")
    assert abs(s.loc["a_cox", "c_index"] - 0.7) < 1e-9 and s.loc["a_cox", "folds"] == 3
    assert s.loc["a_cox", "n"] == 30
    assert abs(s.loc["a_cox", "c_index_sd_folds"] - 0.1) < 1e-9
    assert abs(s.loc["a_cox", "c_index_sd"] - 0.06) < 1e-9  # mean bootstrap SD
    one = summarise_split(_metrics(folds=1), "test").set_index("experiment")
    assert one.loc["a_cox", "c_index_sd"] == 0.05 and np.isnan(one.loc["a_cox", "c_index_sd_folds"])


def test_table3_rows_per_experiment_and_endpoint():
    summary = summarise_split(_metrics(endpoints=("os", "dm")), "test")
    oracle = pd.DataFrame(
        {"endpoint": ["os", "dm"], "component": ["total"] * 2, "n": [10, 10], "c_index": [0.8, 0.7]}
    )
    t = table3(summary, {"a_cox": {"model": "coxph"}}, oracle)
    assert t["endpoints"] == ["os", "dm"] and t["horizon"] == "365" and t["folds"] == 1
    assert [r["experiment"] for r in t["rows"]] == ["a_cox", "b_rsf"]
    cell = t["rows"][0]["cells"]["dm"]
    assert cell == {
        "c_sd": "0.600 (0.050)",
        "ci": "0.500&ndash;0.800",
        "brier": "0.180",
        "ibs": "0.200",
    }
    assert t["rows"][1]["cells"]["os"]["brier"] == ""  # no survival function
    assert t["oracle"] == {"os": "0.800", "dm": "0.700"}
    assert table3(summary, {}, None)["oracle"] is None


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
        calibration_pngs={"a_cox": forest, "b_rsf": forest},
        roc_pngs={"a_cox": forest},
    )
    html = out.read_text()
    assert "wsi_abmil" in html and "the cohort has no wsi data" in html
    assert html.count("data:image/png;base64,") == 5
    assert 'alt="calibration b_rsf"' in html and 'alt="time-dependent ROC a_cox"' in html
    # the seed-3 Table 3 layout: a row per experiment with the bootstrap SD, then the oracle
    assert "C-index (SD)" in html and "Brier @ 365 d" in html
    assert html.count("0.600 (0.050)") == 2 and "<i>oracle (true risk)</i>" in html
    assert "0.500&ndash;0.800" in html and "oracle C" in html and "0.810" in html
    assert '<td class="l">coxph</td>' in html
    assert "Reproducibility" not in html  # no run record given


def test_render_report_shows_the_run_record(config, tmp_path):
    from mmsurv.provenance import build_record

    metrics = _metrics()
    forest = tmp_path / "forest.png"
    plot_c_index_forest(summarise_split(metrics), forest)
    cohort = pd.DataFrame({"patient_id": ["P1"], "clinical": [True], "endpoint_os": [True]})
    config = {**config, "experiments": {"a_cox": config["experiments"]["cox_small"]}}
    record = build_record(config, tmp_path, {"command": "snakemake --cores 8"})
    record["git"] = {"commit": "a" * 40, "short": "a" * 12, "dirty": True, "changes": [" M x"]}
    record["packages"] = {"numpy": "2.4.6", "openslide-bin": "not installed"}
    out = tmp_path / "index.html"
    render_report(
        config=config,
        cohort=cohort,
        metrics=metrics,
        excluded={},
        forest_png=forest,
        km_pngs={"a_cox": forest},
        oracle=None,
        out_html=out,
        record=record,
    )
    html = out.read_text()
    section = html[html.index("<h2>Reproducibility</h2>") :]
    assert "a" * 40 + " with uncommitted changes (1 file)" in section
    assert record["created"] in section and "snakemake --cores 8" in section
    assert "results/run/config.yaml" in section and "results/run/record.json" in section
    assert '<td class="l">training</td><td class="l">fold0: 0</td>' in section
    assert '<td class="l">numpy</td><td class="l">2.4.6</td>' in section
    assert '<td class="l">openslide-bin</td><td class="l">not installed</td>' in section
    assert f'<td class="l">{config["device"]}</td>' in section
