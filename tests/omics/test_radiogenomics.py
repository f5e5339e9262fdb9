"""Radiogenomics: DEGs (pydeseq2), gene-set over-representation and ssGSEA scores (gseapy)."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest
import requests
from scipy import stats

from mmsurv.omics.radiogenomics import (
    CORRELATION_COLUMNS,
    DEG_COLUMNS,
    ENRICHMENT_COLUMNS,
    correlate_with_signature,
    differential_expression,
    enrichment,
    pathway_scores,
    plot_volcano,
    signature_gene_mean,
)
from mmsurv.omics.rna import log_normalise

N_SAMPLES, N_GENES, N_MODULE, FOLD = 24, 150, 15, 2.5
MODULE = [f"MOD{j}" for j in range(N_MODULE)]


def _simulate(fold: float = FOLD, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Negative-binomial counts (samples x genes) with a planted module up ``fold`` x in high.

    Gene means are log-normal (module genes moderately expressed, for power), library sizes
    vary by ~20 %, dispersion is 0.04 + 1 / mean (variance mu + phi mu^2). Two genes are
    never expressed.
    """
    rng = np.random.default_rng(seed)
    ids = [f"TCGA-RG-{i:04d}" for i in range(N_SAMPLES)]
    groups = pd.Series(np.where(np.arange(N_SAMPLES) % 2 == 0, "high", "low"), index=ids)
    base = np.exp(rng.normal(4.5, 1.0, N_GENES))
    base[:N_MODULE] = np.exp(rng.normal(5.0, 0.3, N_MODULE))
    mu = base[None, :] * np.exp(rng.normal(0.0, 0.2, N_SAMPLES))[:, None]
    high = (groups == "high").to_numpy()
    mu[np.ix_(high, np.arange(N_MODULE))] *= fold
    r = 1.0 / (0.04 + 1.0 / base)
    counts = rng.negative_binomial(np.broadcast_to(r, mu.shape), r / (r + mu))
    genes = MODULE + [f"GENE{j}" for j in range(N_MODULE, N_GENES)]
    frame = pd.DataFrame(counts, index=ids, columns=genes)
    frame["OFF1"] = 0
    frame["OFF2"] = 0
    return frame, groups


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.Series]:
    return _simulate()


@pytest.fixture(scope="module")
def deg(cohort) -> pd.DataFrame:
    counts, groups = cohort
    return differential_expression(counts, groups)


@pytest.fixture(scope="module")
def gene_sets(cohort) -> dict[str, list[str]]:
    counts, _ = cohort
    rng = np.random.default_rng(1)
    others = [g for g in counts.columns if g.startswith("GENE")]
    sets = {"DEMO_RISK_MODULE": list(MODULE)}
    for k in range(4):
        sets[f"DEMO_RANDOM_{k + 1}"] = sorted(rng.choice(others, size=20, replace=False))
    sets["TOO_SMALL"] = ["GENE20", "GENE21", "NOT_MEASURED"]
    return sets


@pytest.fixture(scope="module")
def expression(cohort) -> pd.DataFrame:
    counts, _ = cohort
    return log_normalise(counts.T, "counts").T  # samples x genes, log2(CPM + 1)


def test_differential_expression_finds_planted_module(deg, cohort):
    counts, _ = cohort
    assert list(deg.columns) == DEG_COLUMNS
    assert list(deg.index) == list(counts.columns) and deg.index.name == "gene"
    module = deg.loc[MODULE]
    assert module["significant"].all()
    assert (module["direction"] == "up").all()
    np.testing.assert_allclose(module["log2_fold_change"].median(), np.log2(FOLD), atol=0.3)
    # the module genes are the strongest hits
    assert set(deg["padj"].nsmallest(N_MODULE).index) == set(MODULE)
    # BH at FDR 0.25 admits ~25 % false discoveries, and 10 % of the genes going up biases
    # DESeq2's median-of-ratios size factors, so some null genes come out with small fold
    # changes (mostly "down"); stricter thresholds below leave exactly the module.
    others = deg.drop(index=MODULE)
    assert others["significant"].sum() <= deg["significant"].sum() / 2


@pytest.mark.parametrize(("fdr", "min_abs_lfc"), [(0.01, 0.10), (0.25, 0.75)])
def test_differential_expression_stricter_thresholds_leave_only_the_module(
    cohort, fdr, min_abs_lfc
):
    counts, groups = cohort
    res = differential_expression(counts, groups, fdr=fdr, min_abs_lfc=min_abs_lfc)
    assert set(res.index[res["significant"]]) == set(MODULE)
    assert set(res.index[res["direction"] == "up"]) == set(MODULE)


def test_differential_expression_without_signal_finds_almost_nothing():
    counts, groups = _simulate(fold=1.0)
    null = differential_expression(counts, groups)
    assert null["significant"].sum() <= 2


def test_differential_expression_columns_follow_thresholds(deg):
    sig = (deg["padj"] < 0.25) & (deg["log2_fold_change"].abs() > 0.10)
    pd.testing.assert_series_equal(deg["significant"], sig, check_names=False)
    assert set(deg.loc[~deg["significant"], "direction"]) == {""}
    assert not deg.loc[deg["padj"].isna(), "significant"].any()
    # all-zero genes are dropped before fitting but reported, with NaN statistics
    off = deg.loc[["OFF1", "OFF2"]]
    assert (off["base_mean"] == 0).all()
    assert off[["log2_fold_change", "lfc_se", "stat", "p_value", "padj"]].isna().all().all()
    fitted = deg.drop(index=["OFF1", "OFF2"])
    assert fitted[["log2_fold_change", "p_value"]].notna().all().all()


def test_differential_expression_validates_groups(cohort):
    counts, groups = cohort
    small = counts.iloc[:6, :20]
    with pytest.raises(ValueError, match="without a group: TCGA-RG-0005"):
        differential_expression(small, groups.iloc[:5])
    with pytest.raises(ValueError, match="grouped but without counts: TCGA-RG-0006"):
        differential_expression(small, groups.iloc[:7])
    labels = groups.iloc[:6].copy()
    labels.iloc[0] = "medium"
    with pytest.raises(ValueError, match="'high' or 'low'.*medium"):
        differential_expression(small, labels)
    one_high = pd.Series(["high"] + ["low"] * 5, index=small.index)
    with pytest.raises(ValueError, match=r"at least 2 samples: high \(n=1\)"):
        differential_expression(small, one_high)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (-1, "negative counts for sample.*TCGA-RG-0002"),
        (0.5, "non-integer counts for sample.*TCGA-RG-0002"),
        (np.nan, "missing or infinite.*TCGA-RG-0002"),
    ],
)
def test_differential_expression_validates_counts(cohort, change, message):
    counts, groups = cohort
    bad = counts.iloc[:6, :20].astype(float)
    bad.iloc[2, 3] = change
    with pytest.raises(ValueError, match=message):
        differential_expression(bad, groups.iloc[:6])


def test_differential_expression_rejects_all_zero_counts(cohort):
    counts, groups = cohort
    with pytest.raises(ValueError, match="every gene has zero counts"):
        differential_expression(counts.iloc[:6, :5] * 0, groups.iloc[:6])


def test_enrichment_ranks_planted_set_first(deg, gene_sets):
    query = deg.index[deg["significant"]].tolist()
    table = enrichment(query, deg.index.tolist(), gene_sets)
    assert list(table.columns) == ENRICHMENT_COLUMNS
    assert "TOO_SMALL" not in set(table["term"])  # 2 genes in the background < min_size 5
    assert len(table) == 5  # every tested set has a row, overlapping or not
    top = table.iloc[0]
    assert top["term"] == "DEMO_RISK_MODULE"
    assert (top["overlap"], top["set_size"], top["n_genes"]) == (N_MODULE, N_MODULE, len(query))
    assert top["fdr"] < 1e-6
    assert set(top["genes"].split(";")) == set(MODULE)
    assert (table["fdr"].iloc[1:] > 0.05).all()
    assert table["p_value"].is_monotonic_increasing
    # the p-value is the hypergeometric upper tail over the background
    n_bg = len(deg)
    for row in table.itertuples():
        expected = stats.hypergeom.sf(row.overlap - 1, n_bg, row.set_size, row.n_genes)
        assert row.p_value == pytest.approx(expected if row.overlap else 1.0, rel=1e-9)
    np.testing.assert_allclose(
        table["fdr"], stats.false_discovery_control(table["p_value"], method="bh")
    )


def test_enrichment_empty_query_and_bad_input(deg, gene_sets):
    empty = enrichment([], deg.index.tolist(), gene_sets)
    assert empty.empty and list(empty.columns) == ENRICHMENT_COLUMNS
    with pytest.raises(ValueError, match="not in the background: NOPE"):
        enrichment(["MOD0", "NOPE"], deg.index.tolist(), gene_sets)
    with pytest.raises(ValueError, match="no gene set"):
        enrichment(["MOD0"], deg.index.tolist(), gene_sets, min_size=100)


def test_pathway_scores_shape_and_planted_set(expression, gene_sets, cohort):
    _, groups = cohort
    scores = pathway_scores(expression, gene_sets)
    kept = [s for s in gene_sets if s != "TOO_SMALL"]
    assert list(scores.index) == list(expression.index)
    assert list(scores.columns) == kept
    assert scores.dtypes.eq(float).all() and np.isfinite(scores.to_numpy()).all()
    planted = scores["DEMO_RISK_MODULE"]
    high, low = planted[groups == "high"], planted[groups == "low"]
    assert high.min() > low.max()


def test_pathway_scores_keep_input_order_with_numeric_ids(expression, gene_sets):
    # Entrez-like gene ids and integer patient ids must not trip gseapy's id guessing.
    genes = {g: str(1000 + i) for i, g in enumerate(expression.columns)}
    numeric = expression.rename(columns=genes).iloc[::-1]
    numeric.index = range(len(numeric))
    sets = {k: [genes[g] for g in v if g in genes] for k, v in gene_sets.items()}
    scores = pathway_scores(numeric, sets)
    reference = pathway_scores(expression.iloc[::-1], gene_sets)
    assert list(scores.index) == list(range(len(numeric)))
    np.testing.assert_allclose(scores.to_numpy(), reference.to_numpy())


def test_pathway_scores_rejects_no_usable_set(expression):
    with pytest.raises(ValueError, match="no gene set"):
        pathway_scores(expression, {"S": ["MOD0", "MOD1"]})


def test_correlate_with_signature_finds_planted_set(expression, gene_sets, cohort):
    _, groups = cohort
    rng = np.random.default_rng(2)
    signature = pd.Series(
        (groups == "high").to_numpy() * 1.0 + rng.normal(0, 0.3, len(groups)), index=groups.index
    )
    scores = pathway_scores(expression, gene_sets)
    table = correlate_with_signature(scores, signature.iloc[::-1])
    assert list(table.columns) == CORRELATION_COLUMNS
    top = table.iloc[0]
    assert top["term"] == "DEMO_RISK_MODULE"
    assert top["n"] == N_SAMPLES and top["r"] > 0.7 and top["fdr"] < 1e-3
    expected = stats.pearsonr(scores["DEMO_RISK_MODULE"], signature)
    assert top["r"] == pytest.approx(expected.statistic)
    assert table["p_value"].is_monotonic_increasing
    # Ranks are compositional: with 150 genes, the module rising pushes the other genes' ranks
    # down, so the random sets correlate negatively, never as strongly positively.
    assert (table["r"].iloc[1:] < 0.3).all()


def test_correlate_with_signature_uses_shared_patients_and_handles_constants():
    idx = [f"P{i}" for i in range(6)]
    scores = pd.DataFrame({"A": [1.0, 2, 3, 4, 5, 9], "FLAT": 1.0}, index=idx)
    signature = pd.Series([2.0, 4, 6, 8, np.nan], index=["P0", "P1", "P2", "P3", "P4"])
    table = correlate_with_signature(scores, pd.concat([signature, pd.Series({"X": 1.0})]))
    a = table.set_index("term").loc["A"]
    assert a["n"] == 4 and a["r"] == pytest.approx(1.0)
    flat = table.iloc[-1]
    assert flat["term"] == "FLAT" and np.isnan(flat["r"]) and np.isnan(flat["fdr"])
    with pytest.raises(ValueError, match="at least 3 patients"):
        correlate_with_signature(scores, signature.iloc[:2])


def test_signature_gene_mean(expression):
    mean = signature_gene_mean(expression, ["MOD0", "MOD1", "NOT_MEASURED"])
    pd.testing.assert_series_equal(
        mean, expression[["MOD0", "MOD1"]].mean(axis=1), check_names=False
    )
    assert list(mean.index) == list(expression.index)
    with pytest.raises(ValueError, match="none of the 2 gene"):
        signature_gene_mean(expression, ["X", "Y"])


def test_nothing_goes_online(monkeypatch, deg, gene_sets, expression):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    query = deg.index[deg["significant"]].tolist()
    assert enrichment(query, deg.index.tolist(), gene_sets).iloc[0]["term"] == "DEMO_RISK_MODULE"
    assert pathway_scores(expression, gene_sets).shape == (N_SAMPLES, 5)


def test_plot_volcano_writes_png(deg, tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figure to inspect it
    path = tmp_path / "figs" / "volcano.png"
    plot_volcano(deg, path, fdr=0.25, min_abs_lfc=0.10, title="DLS high vs low", label_top=5)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert [p.name for p in path.parent.iterdir()] == ["volcano.png"]  # no temporary left
    (fig,) = figures
    ax = fig.axes[0]
    n_nan = int(deg["padj"].isna().sum())
    assert n_nan >= 2 and f"{n_nan} gene(s) without padj not shown" in ax.get_title()
    labels = {t.get_text() for t in ax.texts}
    assert labels == set(deg.loc[deg["significant"], "padj"].nsmallest(5).index)
    n_up = int((deg["direction"] == "up").sum())
    assert any(f"up in high ({n_up})" == t.get_text() for t in ax.get_legend().get_texts())
    monkeypatch.undo()
    plt.close(fig)
    with pytest.raises(ValueError, match="padj"):
        plot_volcano(deg.drop(columns="padj"), path, fdr=0.25, min_abs_lfc=0.1, title="x")


def test_pydeseq2_fallback_warning_is_logged_not_raised(caplog):
    # Equal dispersion for every gene: pydeseq2's parametric trend fit does not converge and
    # it warns (UserWarning) before switching to a mean trend; that must reach the log only.
    rng = np.random.default_rng(0)
    ids = [f"P{i}" for i in range(12)]
    mu = np.exp(rng.normal(4.0, 1.0, 60))[None, :] * np.exp(rng.normal(0.0, 0.2, 12))[:, None]
    counts = pd.DataFrame(rng.negative_binomial(10, 10 / (10 + mu)), index=ids)
    counts.columns = [f"G{j}" for j in range(60)]
    groups = pd.Series(["high", "low"] * 6, index=ids)
    with caplog.at_level("WARNING", logger="mmsurv.omics.radiogenomics"):
        res = differential_expression(counts, groups)
    assert "dispersion trend curve fitting did not converge" in caplog.text
    assert res["p_value"].notna().all()
