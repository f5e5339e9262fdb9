"""SCNA: per-sample cleaning, the PCA fitted on given samples, the UMAP picture and the stage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.decomposition import PCA

from mmsurv.cli import main
from mmsurv.config import validate_config
from mmsurv.omics.scna import (
    NO_LABEL,
    ScnaPCA,
    clean_scna,
    group_labels,
    plot_umap,
    scna_frame,
    umap_embedding,
)
from mmsurv.stages import run_scna, run_scna_umap

ID_PATTERN = r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _copy_number(n: int, n_genes: int = 12, seed: int = 0) -> pd.DataFrame:
    """Samples x genes GISTIC-like values (-2..2), index ``P{i}``."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-2, 3, (n, n_genes)).astype(float)
    return pd.DataFrame(
        values, index=[f"P{i}" for i in range(n)], columns=[f"g{j}" for j in range(n_genes)]
    )


# --- clean_scna ---------------------------------------------------------------------------


def test_clean_scna_maps_barcodes_and_keeps_scna_only_patients(caplog):
    matrix = pd.DataFrame(
        {
            "TCGA-AA-0002-01A": ["1", "0", "-1"],
            "TCGA-AA-0001-01A": ["0", "2", "0"],
            "TCGA-AA-0001-10A": ["-2", "-2", "-2"],  # second sample of a patient: dropped
            "TCGA-ZZ-0099-01A": ["1", "1", "1"],  # SCNA-only patient: kept
            "normal_pool": ["0", "0", "0"],  # matches no patient: dropped
        },
        index=["EGFR", "PTEN", "CDKN2A"],
    )
    with caplog.at_level(logging.WARNING):
        table = clean_scna(matrix, ID_PATTERN)
    assert table.index.name == "patient_id"
    assert list(table.index) == ["TCGA-AA-0001", "TCGA-AA-0002", "TCGA-ZZ-0099"]
    assert list(table.columns) == ["EGFR", "PTEN", "CDKN2A"]
    assert table.dtypes.eq(np.float32).all()
    np.testing.assert_array_equal(table.loc["TCGA-AA-0001"].to_numpy(), [0.0, 2.0, 0.0])
    assert "normal_pool" in caplog.text


def test_clean_scna_drops_a_gene_with_a_missing_value(caplog):
    matrix = pd.DataFrame(
        {"TCGA-AA-0001-01A": [1.0, np.nan, 0.0], "TCGA-AA-0002-01A": [0.0, 1.0, 2.0]},
        index=["g1", "g2", "g3"],
    )
    with caplog.at_level(logging.INFO):
        table = clean_scna(matrix, ID_PATTERN)
    assert list(table.columns) == ["g1", "g3"]
    assert not table.isna().any().any()
    assert "1 of 3 gene(s) dropped" in caplog.text


@pytest.mark.parametrize(
    ("value", "message"),
    [("amp", r"'amp' in sample 'TCGA-AA-0002-01A', gene 'g2'"), ("inf", r"sample.*gene 'g2'")],
)
def test_clean_scna_rejects_a_non_numeric_value_naming_sample_and_gene(value, message):
    matrix = pd.DataFrame(
        {"TCGA-AA-0001-01A": ["1", "0"], "TCGA-AA-0002-01A": ["0", value]}, index=["g1", "g2"]
    )
    with pytest.raises(ValueError, match=message):
        clean_scna(matrix, ID_PATTERN)


def test_clean_scna_without_any_mapped_column_is_an_error():
    with pytest.raises(ValueError, match="no SCNA column maps"):
        clean_scna(pd.DataFrame({"S1": [1.0]}, index=["g1"]), ID_PATTERN)


def test_scna_frame_strips_the_prefix_and_rejects_missing_units():
    X = pd.DataFrame({"age": [50, 60], "scna:EGFR": [1, 0], "scna:PTEN": [-1, 0]}, index=["A", "B"])
    frame = scna_frame(X)
    assert list(frame.columns) == ["EGFR", "PTEN"] and frame.dtypes.eq(np.float64).all()
    with pytest.raises(ValueError, match="no 'scna:"):
        scna_frame(X[["age"]])
    X.loc["B", "scna:PTEN"] = np.nan
    with pytest.raises(ValueError, match="units without SCNA must be left out"):
        scna_frame(X)


# --- ScnaPCA ------------------------------------------------------------------------------


def test_pca_records_fitted_ids_and_matches_sklearns_projection():
    train, new = _copy_number(30, seed=1), _copy_number(7, seed=2)
    pca = ScnaPCA(n_components=4, seed=0).fit(train)
    assert pca.fitted_ids_ == list(train.index)
    assert pca.genes_ == list(train.columns)
    assert pca.n_components_ == 4 and pca.component_names == [f"scna_pc{i}" for i in (1, 2, 3, 4)]
    assert pca.explained_variance_ratio_.shape == (4,)
    out = pca.transform(new)
    assert out.shape == (7, 4) and out.dtype == np.float64
    reference = PCA(n_components=4, svd_solver="full").fit(train.to_numpy())
    np.testing.assert_allclose(out, reference.transform(new.to_numpy()), atol=1e-10)


def test_pca_caps_components_at_samples_minus_one(caplog):
    with caplog.at_level(logging.WARNING):
        pca = ScnaPCA(n_components=50).fit(_copy_number(6))
    assert pca.n_components_ == 5 and pca.transform(_copy_number(3)).shape == (3, 5)
    assert "50 component(s) asked, 5 kept" in caplog.text


def test_pca_does_not_depend_on_gene_order():
    train, new = _copy_number(25, seed=3), _copy_number(5, seed=4)
    pca = ScnaPCA(n_components=3).fit(train)
    shuffled = new[new.columns[::-1]].assign(extra_gene=9.0)  # other order, an extra column
    np.testing.assert_allclose(pca.transform(shuffled), pca.transform(new))
    refit = ScnaPCA(n_components=3).fit(train[train.columns[::-1]])
    np.testing.assert_allclose(np.abs(refit.transform(new)), np.abs(pca.transform(new)))


def test_pca_names_missing_genes():
    pca = ScnaPCA(n_components=2).fit(_copy_number(10))
    with pytest.raises(ValueError, match="lacks 2 gene.*g0, g1"):
        pca.transform(_copy_number(3).drop(columns=["g0", "g1"]))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_copy_number(1), "at least 2 samples"),
        (_copy_number(4).set_axis(["A", "A", "B", "C"]), "duplicate patient id.*A"),
    ],
)
def test_pca_rejects_too_few_or_duplicate_samples(frame, message):
    with pytest.raises(ValueError, match=message):
        ScnaPCA().fit(frame)


# --- UMAP ---------------------------------------------------------------------------------


def test_umap_is_deterministic_for_a_seed():
    table = _copy_number(40, n_genes=20, seed=5)
    first = umap_embedding(table, seed=3)
    second = umap_embedding(table, seed=3)
    assert first.shape == (40, 2) and list(first.columns) == ["umap1", "umap2"]
    assert first.index.name == "patient_id" and list(first.index) == list(table.index)
    pd.testing.assert_frame_equal(first, second)
    assert np.isfinite(first.to_numpy()).all()


def test_umap_needs_three_samples():
    with pytest.raises(ValueError, match="at least 3 samples"):
        umap_embedding(_copy_number(2), seed=0)


def test_group_labels_marks_unknown_patients():
    labels = group_labels(["A", "B", "C"], pd.Series({"A": "codel", "B": np.nan}))
    assert labels.tolist() == ["codel", NO_LABEL, NO_LABEL]
    assert group_labels(["A"], pd.Series({"A": 1.0})).tolist() == ["1"]


def test_plot_umap_writes_a_png(tmp_path):
    coords = pd.DataFrame(
        np.random.default_rng(0).normal(size=(12, 2)),
        index=[f"P{i}" for i in range(12)],
        columns=["umap1", "umap2"],
    )
    groups = pd.Series(["IDHwt"] * 5 + ["codel"] * 4, index=coords.index[:9])
    out = tmp_path / "fig" / "umap.png"
    plot_umap(coords, groups, out, "SCNA UMAP")
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["umap.png"]  # no temporary left


# --- stage and command --------------------------------------------------------------------


@pytest.fixture
def scna_raw_config(raw_config: dict[str, Any], cohort_dir: Path) -> dict[str, Any]:
    """The small cohort plus an SCNA matrix (40 cohort patients, 8 SCNA-only) and subtypes."""
    samples = pd.read_csv(cohort_dir / "samples.tsv", sep="\t", dtype={"patient_id": str})
    rng = np.random.default_rng(7)
    samples["who_subtype"] = rng.choice(["IDHwt", "IDHmut-codel", "IDHmut-noncodel"], len(samples))
    samples.loc[[0, 1], "who_subtype"] = np.nan
    samples.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    patients = [*samples["patient_id"].iloc[:40], *[f"TCGA-XX-{i:04d}" for i in range(8)]]
    genes = [f"G{i}" for i in range(25)]
    matrix = pd.DataFrame(
        rng.integers(-2, 3, (len(genes), len(patients))),
        index=pd.Index(genes, name="gene"),
        columns=[f"{p}-01A" for p in patients],
    ).astype(float)
    matrix.iloc[3, 5] = np.nan  # gene G3 is dropped
    matrix.insert(0, "chrom_arm", ["7p"] * 10 + ["10q"] * 15)
    matrix.to_csv(cohort_dir / "scna.tsv", sep="\t")
    raw_config["cohort"]["scna"] = str(cohort_dir / "scna.tsv")
    raw_config["labels"]["subtype"] = "who_subtype"
    return raw_config


def test_run_scna_keeps_every_sample_and_the_umap_colours_by_subtype(scna_raw_config, tmp_path):
    config = validate_config(scna_raw_config)
    out = tmp_path / "omics" / "scna.parquet"
    table = run_scna(config, out)
    saved = pd.read_parquet(out)
    assert saved.shape == (48, 24) and "G3" not in saved.columns
    assert saved.index.name == "patient_id" and saved.dtypes.eq(np.float32).all()
    assert sum(p.startswith("TCGA-XX-") for p in saved.index) == 8
    pd.testing.assert_frame_equal(saved, table)
    png, tsv = tmp_path / "omics" / "umap.png", tmp_path / "omics" / "umap.tsv"
    run_scna_umap(config, out, png, tsv)
    coords = pd.read_csv(tsv, sep="\t")
    assert list(coords.columns) == ["patient_id", "umap1", "umap2", "group", "in_samples"]
    assert len(coords) == 48 and coords["in_samples"].sum() == 40
    extra = coords[~coords["in_samples"]]
    assert (extra["group"] == NO_LABEL).all()
    assert set(coords["group"]) == {"IDHwt", "IDHmut-codel", "IDHmut-noncodel", NO_LABEL}
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_run_scna_umap_without_a_subtype_label_has_one_group(scna_raw_config, tmp_path):
    del scna_raw_config["labels"]["subtype"]
    config = validate_config(scna_raw_config)
    out = tmp_path / "scna.parquet"
    run_scna(config, out)
    run_scna_umap(config, out, tmp_path / "u.png", tmp_path / "u.tsv")
    assert set(pd.read_csv(tmp_path / "u.tsv", sep="\t")["group"]) == {"SCNA sample"}


def test_cli_scna_writes_matrix_and_umap(scna_raw_config, tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(scna_raw_config))
    out, png, tsv = tmp_path / "scna.parquet", tmp_path / "umap.png", tmp_path / "umap.tsv"
    args = ["scna", "--config", str(cfg), "--out", str(out)]
    assert main([*args, "--umap", str(png)]) == 1
    assert "--umap and --umap-tsv go together" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--umap", str(png), "--umap-tsv", str(tsv)]) == 0
    assert pd.read_parquet(out).shape == (48, 24)
    assert png.is_file() and len(pd.read_csv(tsv, sep="\t")) == 48
