"""End to end: the whole workflow on the smoke demo cohort, through Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mmsurv.evaluation.evaluate import METRIC_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
PRED_COLUMNS = ["patient_id", "slide_id", "endpoint", "fold", "split", "risk", "time", "event"]

pytestmark = pytest.mark.e2e


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "smoke.yaml"),
        *args,
    ]
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return res


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """Run the default workflow on the smoke preset once; return the working directory."""
    workdir = tmp_path_factory.mktemp("e2e")
    (workdir / "smoke.yaml").write_text(
        yaml.safe_dump(
            {
                "results": "results",
                "demo": {"preset": "smoke", "folder": "resources/demo"},
                "evaluation": {"bootstrap": 200},
            }
        )
    )
    _snakemake(workdir, "--cores", "2")
    return workdir


def test_demo_cohort_was_written_by_the_workflow(run):
    assert (run / "resources/demo/smoke-seed0/samples.tsv").is_file()
    assert (run / "resources/demo/smoke-seed0/truth.tsv").is_file()


def test_cohort_and_splits(run):
    cohort = pd.read_csv(run / "results/cohort/cohort.tsv", sep="\t")
    assert {"patient_id", "clinical", "wsi", "mri", "dti", "rna", "scna"} <= set(cohort.columns)
    assert cohort["patient_id"].is_unique and cohort["wsi"].any() and cohort["rna"].any()
    for endpoint in ("os", "pfs"):
        split = pd.read_csv(run / f"results/splits/{endpoint}.tsv", sep="\t")
        assert list(split.columns) == ["patient_id", "fold", "split"]
        assert split["patient_id"].is_unique
        assert set(split["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize(
    "experiment",
    ["clinical_small_coxph", "clinical_small_rsf", "clinical_full_coxph", "clinical_full_rsf"],
)
def test_predictions_and_metrics(run, experiment):
    preds = pd.read_csv(
        run / f"results/predictions/{experiment}.tsv", sep="\t", keep_default_na=False
    )
    assert list(preds.columns) == PRED_COLUMNS
    assert np.isfinite(preds["risk"].astype(float)).all()
    metrics = pd.read_csv(run / f"results/metrics/{experiment}.tsv", sep="\t")
    assert list(metrics.columns) == METRIC_COLUMNS
    test = metrics[metrics["split"] == "test"]
    assert set(test["endpoint"]) == {"os", "pfs"}
    assert test["c_index"].between(0, 1).all() and test["c_index_oracle"].between(0, 1).all()
    assert (test["c_index_lo"] <= test["c_index"]).all()
    assert (test["c_index"] <= test["c_index_hi"]).all()
    assert test["ibs"].notna().all()
    for name in ("model.joblib", "train_log.json", "survival.parquet"):
        assert (run / f"results/models/{experiment}/fold0/{name}").is_file()


def test_report(run):
    table = pd.read_csv(run / "results/report/metrics.tsv", sep="\t")
    assert table["experiment"].nunique() == 4
    html = (run / "results/report/index.html").read_text()
    for experiment in table["experiment"].unique():
        assert experiment in html
    assert "oracle C" in html and html.count("data:image/png;base64,") == 5


def test_rerun_is_a_no_op_and_one_stage_can_be_forced(run):
    assert "Nothing to be done" in _snakemake(run, "--cores", "2", "-n").stdout
    forced = _snakemake(
        run, "--cores", "2", "-n", "--forcerun", "train", "--until", "evaluate"
    ).stdout
    assert "train" in forced and "evaluate" in forced and "report " not in forced
    assert "cohort " not in forced


def test_editing_a_clinical_set_reruns_exactly_its_experiments(run):
    cohort = yaml.safe_load((run / "resources/demo/smoke-seed0/config.yaml").read_text())
    cohort["clinical"]["sets"]["small"] = ["age", "grade"]
    edited = yaml.safe_load((run / "smoke.yaml").read_text()) | cohort
    (run / "edited.yaml").write_text(yaml.safe_dump(edited))
    res = _snakemake(run, "-n", "--configfile", str(run / "edited.yaml"))
    planned = res.stdout + res.stderr
    assert planned.count("rule train:") == 2, planned[-3000:]
    assert "models/clinical_small_coxph/fold0" in planned
    assert "models/clinical_small_rsf/fold0" in planned
    assert "models/clinical_full_coxph/fold0" not in planned
    assert "rule cohort:" not in planned and "rule splits:" not in planned


def test_snakemake_report(run):
    _snakemake(run, "--report", "results/report.html")
    assert (run / "results/report.html").stat().st_size > 10_000
