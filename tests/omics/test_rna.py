"""RNA-seq: per-sample log normalisation and the training-fitted preprocessor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.omics.rna import RNAPreprocessor, log_normalise, rna_frame


def test_log_normalise_counts_on_known_numbers():
    counts = pd.DataFrame({"A": [250_000, 750_000, 0], "B": [1, 1, 2]}, index=["g1", "g2", "g3"])
    out = log_normalise(counts, "counts")
    expected = pd.DataFrame(
        {
            "A": np.log2([250_001.0, 750_001.0, 1.0]),  # library 1e6: CPM = count
            "B": np.log2([250_001.0, 250_001.0, 500_001.0]),  # library 4
        },
        index=counts.index,
    )
    pd.testing.assert_frame_equal(out, expected)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("tpm", np.log2([[1.0, 4.0], [8.0, 2.0]])), ("log", [[0.0, 3.0], [7.0, 1.0]])],
)
def test_log_normalise_tpm_and_log(kind, expected):
    values = pd.DataFrame([[0.0, 3.0], [7.0, 1.0]], index=["g1", "g2"], columns=["A", "B"])
    np.testing.assert_allclose(log_normalise(values, kind).to_numpy(), expected)


@pytest.mark.parametrize(
    ("matrix", "kind", "message"),
    [
        ({"S1": [1, 2], "S2": [-1, 3]}, "counts", "negative counts in sample.*S2"),
        ({"S1": [1, 2], "S2": [-1, 3]}, "tpm", "negative tpm in sample.*S2"),
        ({"S1": [0, 0], "S2": [1, 3]}, "counts", "zero total count: S1"),
        ({"S1": [1, np.nan], "S2": [1, 3]}, "counts", "missing.*S1"),
        ({"S1": [1, 2]}, "fpkm", "unknown expression kind"),
    ],
)
def test_log_normalise_rejects_bad_input(matrix, kind, message):
    with pytest.raises(ValueError, match=message):
        log_normalise(pd.DataFrame(matrix), kind)


def _expression(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Logged expression: 30 genes of different spread, one never expressed, one constant."""
    rng = np.random.default_rng(seed)
    spread = np.linspace(0.1, 2.0, 30)
    values = 6.0 + rng.normal(size=(n, 30)) * spread
    frame = pd.DataFrame(values, columns=[f"g{i}" for i in range(30)])
    frame["off"] = 0.2
    frame["flat"] = 5.0
    return frame


def test_preprocessor_statistics_come_from_training_rows_only():
    X = _expression()
    train, other = X.iloc[:40].copy(), X.iloc[40:].copy()
    # a gene silent in training but high in the other rows is still dropped
    train["late"] = 0.0
    other["late"] = 12.0
    other["g29"] += 50.0  # wild values elsewhere do not move the training statistics
    prep = RNAPreprocessor(n_top_genes=100).fit(train)
    assert "late" not in prep.genes_ and "off" not in prep.genes_
    assert len(prep.genes_) == 31  # 30 varying genes + the constant (expressed) one
    col = prep.genes_.index("g29")
    mean, sd = train["g29"].mean(), train["g29"].std(ddof=0)
    np.testing.assert_allclose(prep.transform(other)[:, col], (other["g29"] - mean) / sd)
    z = prep.transform(train)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    flat = prep.genes_.index("flat")
    np.testing.assert_array_equal(z[:, flat], 0.0)  # std 0 -> scale 1, centred to 0


def _planted(seed: int) -> tuple[pd.DataFrame, list[str]]:
    """200 genes at log-means 3-9 with spread 0.3, five of them with spread 1.5."""
    rng = np.random.default_rng(seed)
    spread = np.full(200, 0.3)
    wide = [7, 50, 99, 150, 180]
    spread[wide] = 1.5
    values = rng.uniform(3, 9, 200) + rng.normal(size=(60, 200)) * spread
    frame = pd.DataFrame(values, columns=[f"g{i}" for i in range(200)])
    return frame, [f"g{i}" for i in wide]


def test_gene_selection_is_scanpys_seurat_ranking():
    import anndata as ad
    import scanpy as sc

    X, wide = _planted(seed=0)
    prep = RNAPreprocessor(n_top_genes=20).fit(X)
    adata = ad.AnnData(X.to_numpy(), var=pd.DataFrame(index=X.columns))
    adata.obs_names = [f"s{i}" for i in range(len(X))]
    adata.uns["log1p"] = {"base": 2.0}
    hvg = sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=20, inplace=False)
    assert prep.genes_ == list(X.columns[hvg["highly_variable"].to_numpy()])
    # Seurat's dispersion is normalised within mean bins, so it is not raw variance; a planted
    # high-variance gene alone in its bin can lose its place, but most are found
    assert len(set(wide) & set(RNAPreprocessor(n_top_genes=5).fit(X).genes_)) >= 4


def test_preprocessor_is_deterministic_and_order_free():
    X = _expression()
    prep = RNAPreprocessor(n_top_genes=5).fit(X)
    assert len(prep.genes_) == 5
    assert RNAPreprocessor(n_top_genes=5).fit(X).genes_ == prep.genes_
    rows = X.sample(frac=1.0, random_state=1)
    assert RNAPreprocessor(n_top_genes=5).fit(rows).genes_ == prep.genes_
    shuffled = X[X.columns[::-1]]
    np.testing.assert_array_equal(prep.transform(shuffled), prep.transform(X))
    with pytest.raises(KeyError, match=prep.genes_[0]):
        prep.transform(X.drop(columns=prep.genes_[0]))


def test_expression_filter_threshold_and_fraction():
    X = _expression(n=50)
    X["rare"] = 0.0
    X.loc[X.index[:9], "rare"] = 4.0  # expressed in 18% of samples
    X["common"] = 0.0
    X.loc[X.index[:10], "common"] = 4.0  # 20%
    prep = RNAPreprocessor(n_top_genes=100, min_expression=1.0, min_fraction=0.2).fit(X)
    assert "common" in prep.genes_ and "rare" not in prep.genes_
    assert prep.n_expressed_genes_ == 32


def test_patient_duplicates_are_counted_once():
    X = _expression(n=20)
    repeated = pd.concat([X, X.iloc[:5], X.iloc[:5]], ignore_index=True)
    pids = [f"P{i}" for i in range(20)] + [f"P{i}" for i in range(5)] * 2
    dedup = RNAPreprocessor(n_top_genes=10).fit(repeated, patient_ids=pids)
    plain = RNAPreprocessor(n_top_genes=10).fit(X)
    assert dedup.n_samples_ == 20 and dedup.genes_ == plain.genes_
    np.testing.assert_allclose(dedup.mean_, plain.mean_)
    naive = RNAPreprocessor(n_top_genes=10).fit(repeated)
    assert not np.allclose(naive.mean_, plain.mean_)


def test_array_input_and_rna_frame():
    X = _expression(n=30)
    prep = RNAPreprocessor(n_top_genes=4).fit(X.to_numpy())
    assert len(prep.genes_) == 4 and set(prep.genes_) <= {str(i) for i in range(32)}
    assert prep.transform(X.to_numpy()).shape == (30, 4)
    table = pd.DataFrame({"patient_id": ["a", "b"], "rna:TP53": [1.0, 2.0], "age": [3, 4]})
    assert list(rna_frame(table).columns) == ["TP53"]
    with pytest.raises(ValueError, match="missing RNA"):
        rna_frame(table.assign(**{"rna:TP53": [1.0, np.nan]}))
