"""The cohort stage reports every input defect with file, line and reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mmsurv.cohort import CohortError, build_cohort, patient_of
from mmsurv.config import validate_config


def _edit(path: str, fn) -> None:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    fn(df)
    df.to_csv(path, sep="\t", index=False)


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(CohortError) as info:
        build_cohort(validate_config(raw))
    return [str(p) for p in info.value.problems]


def test_valid_cohort_tabulates_modalities(config):
    table = build_cohort(config)
    assert len(table) == 60
    assert table["clinical"].all()
    assert table["n_slides"].sum() == 10 and table["wsi"].sum() == 10
    assert table["mri"].sum() == 5 and table.loc[0, "mri_channels"] == "t1,t2"
    assert table["mask"].sum() == 5
    assert table["rna"].sum() == 30 and not table["scna"].any()


@pytest.mark.parametrize(
    ("sample", "pattern", "patient"),
    [
        ("TCGA-02-0001-01A", r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", "TCGA-02-0001"),
        ("TCGA-02-0001-01A-01R-1849-01", r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", "TCGA-02-0001"),
        ("P17", r"^(.+)$", "P17"),
        ("sample_x", r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", None),
    ],
)
def test_id_pattern_maps_sample_to_patient(sample, pattern, patient):
    assert patient_of(sample, pattern) == patient


def test_missing_slide_file(raw_config, cohort_dir: Path):
    (cohort_dir / "slides" / "TCGA-AA-0003.svs").unlink()
    (msg,) = _problems(raw_config)
    assert "slides.tsv, line 5" in msg and "file not found" in msg and "TCGA-AA-0003" in msg


def test_missing_samples_sheet(raw_config, cohort_dir: Path):
    (cohort_dir / "samples.tsv").unlink()
    (msg,) = _problems(raw_config)
    assert "samples.tsv" in msg and "file not found" in msg


def test_duplicate_patient_id(raw_config):
    _edit(
        raw_config["cohort"]["samples"],
        lambda df: df.__setitem__(
            "patient_id", df["patient_id"].where(df.index != 45, "TCGA-AA-0004")
        ),
    )
    (msg,) = _problems(raw_config)
    assert "duplicate patient_id 'TCGA-AA-0004' on lines 6, 47" in msg


@pytest.mark.parametrize("sheet", ["slides", "images"])
def test_row_with_unknown_patient(raw_config, sheet):
    _edit(
        raw_config["cohort"][sheet],
        lambda df: df.__setitem__(
            "patient_id", df["patient_id"].where(df.index != 1, "TCGA-ZZ-9999")
        ),
    )
    (msg,) = _problems(raw_config)
    assert f"{sheet}.tsv, line 3" in msg and "'TCGA-ZZ-9999' is not in the samples sheet" in msg


def test_negative_time(raw_config):
    _edit(
        raw_config["cohort"]["samples"],
        lambda df: df.__setitem__("os_days", df["os_days"].where(df.index != 2, "-5")),
    )
    (msg,) = _problems(raw_config)
    assert "samples.tsv, line 4" in msg and "negative time os_days=-5" in msg


@pytest.mark.parametrize("value", ["2", "yes", "0.5"])
def test_event_not_binary(raw_config, value):
    _edit(
        raw_config["cohort"]["samples"],
        lambda df: df.__setitem__("os_event", df["os_event"].where(df.index != 0, value)),
    )
    (msg,) = _problems(raw_config)
    assert "samples.tsv, line 2" in msg
    assert "os_event" in msg and ("not 0 or 1" in msg or "not a number" in msg)


def test_unknown_channel(raw_config):
    _edit(
        raw_config["cohort"]["images"],
        lambda df: df.__setitem__("channel", df["channel"].where(df.index != 4, "t3")),
    )
    (msg,) = _problems(raw_config)
    assert "images.tsv, line 6" in msg and "unknown channel 't3'" in msg


def test_matrix_without_matching_patient(raw_config, cohort_dir: Path):
    rna = pd.read_csv(cohort_dir / "rna.tsv", sep="\t", index_col=0)
    rna.columns = [c.replace("TCGA-AA", "TCGA-BB") for c in rna.columns]
    rna.to_csv(cohort_dir / "rna.tsv", sep="\t")
    (msg,) = _problems(raw_config)
    assert "rna.tsv" in msg and "no column maps to a patient" in msg


@pytest.mark.parametrize(
    ("column", "value"), [("age", "fifty"), ("os_days", "12d"), ("kps", "n/a")]
)
def test_non_numeric_value_in_samples(raw_config, column, value):
    _edit(
        raw_config["cohort"]["samples"],
        lambda df: df.__setitem__(column, df[column].where(df.index != 5, value)),
    )
    (msg,) = _problems(raw_config)
    assert "samples.tsv, line 7" in msg and f"{column!r} is not a number: {value!r}" in msg


def test_non_numeric_value_in_matrix(raw_config, cohort_dir: Path):
    rna = pd.read_csv(cohort_dir / "rna.tsv", sep="\t", index_col=0, dtype=str)
    rna.iloc[3, 2] = "NA?"
    rna.to_csv(cohort_dir / "rna.tsv", sep="\t")
    (msg,) = _problems(raw_config)
    assert "rna.tsv, line 5, column 'TCGA-AA-0002-01A'" in msg and "'NA?'" in msg


def test_non_numeric_mpp_in_slides(raw_config):
    def add_mpp(df):
        df["mpp"] = ""
        df.loc[2, "mpp"] = "half"

    _edit(raw_config["cohort"]["slides"], add_mpp)
    (msg,) = _problems(raw_config)
    assert "slides.tsv, line 4" in msg and "'mpp' is not a number" in msg


def test_every_problem_reported_at_once(raw_config, cohort_dir: Path):
    _edit(
        raw_config["cohort"]["samples"],
        lambda df: df.__setitem__("os_days", df["os_days"].where(df.index != 2, "-1")),
    )
    _edit(
        raw_config["cohort"]["images"],
        lambda df: df.__setitem__("channel", df["channel"].where(df.index != 0, "pet")),
    )
    (cohort_dir / "slides" / "TCGA-AA-0000.svs").unlink()
    problems = _problems(raw_config)
    assert len(problems) == 3
    assert any("negative time" in p for p in problems)
    assert any("unknown channel 'pet'" in p for p in problems)
    assert any("file not found" in p for p in problems)


def test_missing_configured_column(raw_config):
    raw_config["clinical"]["numeric"].append("ecog")
    (msg,) = _problems(raw_config)
    assert "column 'ecog' (numeric clinical variable) is missing" in msg


def test_relative_paths_resolve_against_the_sheet_folder(
    raw_config, cohort_dir, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # a different working directory must not matter
    assert build_cohort(validate_config(raw_config))["wsi"].sum() == 10


def test_line_numbers_survive_blank_lines(raw_config, cohort_dir: Path):
    path = cohort_dir / "samples.tsv"
    lines = path.read_text().splitlines()
    lines.insert(2, "")  # a blank line 3
    lines[4] = lines[4].replace(lines[4].split("\t")[1], "-3", 1)  # data on line 5
    path.write_text("\n".join(lines) + "\n")
    (msg,) = _problems(raw_config)
    assert "samples.tsv, line 5" in msg and "negative time" in msg


@pytest.mark.parametrize("key", ["images", "rna"])
def test_missing_sheet_or_matrix(raw_config, cohort_dir: Path, key):
    Path(raw_config["cohort"][key]).unlink()
    (msg,) = _problems(raw_config)
    assert f"{key}.tsv: file not found" in msg


def test_other_inputs_checked_when_samples_sheet_is_missing(raw_config, cohort_dir: Path):
    (cohort_dir / "samples.tsv").unlink()
    (cohort_dir / "slides" / "TCGA-AA-0000.svs").unlink()
    _edit(
        raw_config["cohort"]["images"],
        lambda df: df.__setitem__("channel", df["channel"].where(df.index != 0, "pet")),
    )
    problems = _problems(raw_config)
    assert len(problems) == 3
    assert any("samples.tsv: file not found" in p for p in problems)
    assert any("TCGA-AA-0000.svs" in p for p in problems)
    assert any("unknown channel 'pet'" in p for p in problems)
