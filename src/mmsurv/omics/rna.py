"""RNA-seq expression: per-sample log normalisation and a training-fitted preprocessor.

Two steps with different honesty rules (DESIGN.md section 5):

- :func:`log_normalise` is *per-sample* work (each sample's library size only), so the omics
  stage may run it on the whole cohort before any split.
- :class:`RNAPreprocessor` is *fitted*: which genes are kept and how they are scaled is learned
  from the training units of one fold only, stored on the instance and applied unchanged to
  validation and test units.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal, Self

import numpy as np
import pandas as pd

__all__ = ["RNA_PREFIX", "log_normalise", "prefixed_frame", "rna_frame", "RNAPreprocessor"]

log = logging.getLogger(__name__)

#: Prefix of the expression columns of a model's input table (``rna:{gene}``).
RNA_PREFIX = "rna:"

#: How an expression matrix is scaled on input.
ExpressionKind = Literal["counts", "tpm", "log"]


def log_normalise(counts: pd.DataFrame, kind: ExpressionKind) -> pd.DataFrame:
    """Per-sample log normalisation of a genes x samples expression matrix.

    Parameters
    ----------
    counts
        Expression, shape (genes, samples): genes as the index, samples as the columns.
    kind
        ``"counts"``: raw read counts, returned as log2(CPM + 1), where CPM = count / (sample's
        total count) * 1e6; ``"tpm"``: transcripts per million, returned as log2(TPM + 1);
        ``"log"``: already logged, returned unchanged (a copy).

    Returns
    -------
    pandas.DataFrame
        Same shape, index and columns as ``counts``, float64.

    Raises
    ------
    ValueError
        For an unknown ``kind``; for ``counts``/``tpm``, a missing or negative value or (counts)
        a sample whose total count is zero, naming the samples.
    """
    if kind not in ("counts", "tpm", "log"):
        raise ValueError(f"unknown expression kind {kind!r}; expected 'counts', 'tpm' or 'log'")
    values = counts.astype(float)
    if kind == "log":
        return values.copy()
    missing = values.columns[values.isna().any(axis=0)]
    if len(missing):
        raise ValueError(f"missing expression values in sample(s): {', '.join(map(str, missing))}")
    negative = values.columns[(values < 0).any(axis=0)]
    if len(negative):
        raise ValueError(
            f"negative {kind} in sample(s): {', '.join(map(str, negative))} (expected raw, "
            "non-negative values)"
        )
    if kind == "tpm":
        return np.log2(values + 1.0)
    library = values.sum(axis=0)
    empty = library.index[library <= 0]
    if len(empty):
        raise ValueError(f"sample(s) with zero total count: {', '.join(map(str, empty))}")
    return np.log2(values / library * 1e6 + 1.0)


def prefixed_frame(X: pd.DataFrame, prefix: str, what: str) -> pd.DataFrame:
    """The ``{prefix}{gene}`` columns of a model's input table as a units x genes frame.

    Parameters
    ----------
    X
        Input table, one row per unit, with columns named ``{prefix}{gene}``.
    prefix
        Column prefix (``rna:``, ``scna:``).
    what
        Name of the data in messages (``RNA``, ``SCNA``).

    Returns
    -------
    pandas.DataFrame
        Shape (units, genes), float64, columns named by gene (prefix removed), index of ``X``.

    Raises
    ------
    ValueError
        Without any such column, or when a unit has a missing value (units without the data
        must be left out of a model that reads it, never filled in).
    """
    cols = [c for c in X.columns if isinstance(c, str) and c.startswith(prefix)]
    if not cols:
        raise ValueError(f"X has no '{prefix}{{gene}}' columns")
    frame = X[cols].astype(float)
    frame.columns = [c[len(prefix) :] for c in cols]
    bad = frame.index[frame.isna().any(axis=1)]
    if len(bad):
        raise ValueError(
            f"missing {what} values for {len(bad)} unit(s) ({', '.join(map(str, bad[:5]))}); "
            f"units without {what} must be left out of an {what} model"
        )
    return frame


def rna_frame(X: pd.DataFrame) -> pd.DataFrame:
    """The ``rna:{gene}`` columns of ``X`` as units x genes (see :func:`prefixed_frame`)."""
    return prefixed_frame(X, RNA_PREFIX, "RNA")


class RNAPreprocessor:
    """Gene filtering, highly-variable gene selection and z-scoring, fitted on training units.

    Fitting, on the training samples only (one row per patient, see ``patient_ids``):

    1. drop low-expression genes: those expressed (logged value > ``min_expression``) in fewer
       than ``min_fraction`` of the training samples;
    2. rank the remaining genes by scanpy's normalised dispersion
       (``scanpy.pp.highly_variable_genes(flavor="seurat")``, which un-logs the data using
       ``adata.uns["log1p"]["base"] = log_base``, bins genes by mean expression and z-scores
       each gene's log dispersion within its bin) and keep the ``n_top_genes`` highest
       (capped at the number left). The ranking is ours so that exactly ``n_top_genes`` are
       kept: scanpy's own ``n_top_genes`` cut keeps every gene tied at the cut-off. Ties are
       broken by input column order; genes without a dispersion (constant in training) rank
       last. The result is deterministic. This ranks dispersion relative to genes of similar
       mean, not raw variance: with few genes (sparse bins) a gene alone in its bin gets a
       normalised dispersion of 1 (scanpy's rule), whatever its variance;
    3. z-score each kept gene with its training mean and standard deviation (ddof 0; a
       standard deviation of 0 is replaced by 1, so a constant gene becomes 0).

    Parameters
    ----------
    n_top_genes
        Number of genes kept (at most).
    min_expression
        Logged expression above which a gene counts as expressed in a sample (log2 units).
    min_fraction
        Fraction of training samples in which a gene must be expressed to be kept.
    log_base
        Base of the logarithm of the input, log(x + 1) (2 for log2(CPM + 1)).

    Attributes
    ----------
    genes_ : list[str]
        The kept genes, in output column order.
    mean_, scale_ : numpy.ndarray
        Training mean and standard deviation of each kept gene, shape (len(genes_),).
    n_input_genes_, n_expressed_genes_, n_samples_ : int
        Genes given, genes passing the expression filter, training samples used.
    """

    def __init__(
        self,
        n_top_genes: int = 1000,
        min_expression: float = 1.0,
        min_fraction: float = 0.2,
        log_base: float = 2.0,
    ) -> None:
        if n_top_genes < 1:
            raise ValueError(f"n_top_genes must be at least 1, got {n_top_genes}")
        if not 0.0 <= min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in [0, 1], got {min_fraction}")
        self.n_top_genes = int(n_top_genes)
        self.min_expression = float(min_expression)
        self.min_fraction = float(min_fraction)
        self.log_base = float(log_base)

    def fit(
        self,
        X: pd.DataFrame | np.ndarray,
        patient_ids: Sequence[str] | np.ndarray | pd.Series | None = None,
    ) -> Self:
        """Choose genes and scaling from the training samples ``X``.

        Parameters
        ----------
        X
            Logged expression, shape (samples, genes); a DataFrame's columns are the gene names
            (an array's genes are named by position).
        patient_ids
            Patient of each row, shape (samples,). Rows of the same patient (several slides
            sharing one RNA profile) are counted once: the first row of each patient is used.

        Returns
        -------
        RNAPreprocessor
            ``self``, fitted.
        """
        frame = _as_frame(X)
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()].unique()
            raise ValueError(f"duplicate gene names: {', '.join(map(str, dup[:10]))}")
        if patient_ids is not None:
            pids = pd.Series(np.asarray(patient_ids, dtype=object), index=frame.index)
            if len(pids) != len(frame):
                raise ValueError(f"{len(pids)} patient ids for {len(frame)} rows")
            first = ~pids.duplicated().to_numpy()
            _check_shared_profiles(frame, pids)
            frame = frame.loc[first]
        values = frame.to_numpy(dtype=float)
        if len(values) < 2:
            raise ValueError(f"need at least 2 training samples to fit, got {len(values)}")
        if not np.isfinite(values).all():
            bad = frame.index[~np.isfinite(values).all(axis=1)]
            raise ValueError(f"non-finite expression in sample(s): {', '.join(map(str, bad[:10]))}")
        self.n_input_genes_ = values.shape[1]
        self.n_samples_ = values.shape[0]
        expressed = (values > self.min_expression).mean(axis=0) >= self.min_fraction
        self.n_expressed_genes_ = int(expressed.sum())
        if not expressed.any():
            raise ValueError(
                f"no gene is expressed (> {self.min_expression}) in at least "
                f"{self.min_fraction:.0%} of the {len(values)} training samples"
            )
        kept = np.flatnonzero(expressed)
        order = _rank_by_dispersion(values[:, kept], frame.columns[kept], self.log_base)
        chosen = kept[np.sort(order[: min(self.n_top_genes, len(kept))])]
        self._columns = chosen
        self.genes_ = [str(g) for g in frame.columns[chosen]]
        sub = values[:, chosen]
        self.mean_ = sub.mean(axis=0)
        scale = sub.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        log.info(
            "RNA: %d genes -> %d expressed in >= %.0f%% of %d training samples -> %d kept",
            self.n_input_genes_,
            self.n_expressed_genes_,
            100 * self.min_fraction,
            self.n_samples_,
            len(self.genes_),
        )
        return self

    def transform(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Select the training-chosen genes and z-score them with the training statistics.

        Parameters
        ----------
        X
            Logged expression, shape (samples, genes). A DataFrame needs every gene of
            ``genes_`` as a column (any order, extra columns ignored); an array needs the
            training input's columns, in the same order.

        Returns
        -------
        numpy.ndarray
            Shape (samples, len(genes_)), float64.
        """
        if not hasattr(self, "genes_"):
            raise RuntimeError("RNAPreprocessor is not fitted")
        if isinstance(X, pd.DataFrame):
            frame = X.rename(columns=str)
            missing = [g for g in self.genes_ if g not in frame.columns]
            if missing:
                raise KeyError(f"expression lacks {len(missing)} fitted gene(s): {missing[:10]}")
            values = frame[self.genes_].to_numpy(dtype=float)
        else:
            arr = np.asarray(X, dtype=float)
            if arr.ndim != 2 or arr.shape[1] != self.n_input_genes_:
                raise ValueError(f"expected shape (n, {self.n_input_genes_}), got {arr.shape}")
            values = arr[:, self._columns]
        return (values - self.mean_) / self.scale_

    def fit_transform(
        self,
        X: pd.DataFrame | np.ndarray,
        patient_ids: Sequence[str] | np.ndarray | pd.Series | None = None,
    ) -> np.ndarray:
        """:meth:`fit` on ``X`` then :meth:`transform` every row of ``X``, shape (n, genes)."""
        return self.fit(X, patient_ids).transform(X)


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    """A samples x genes frame with string gene names (an array's genes named by position)."""
    if isinstance(X, pd.DataFrame):
        return X.rename(columns=str)
    arr = np.asarray(X, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D samples x genes array, got shape {arr.shape}")
    return pd.DataFrame(arr, columns=[str(i) for i in range(arr.shape[1])])


def _check_shared_profiles(frame: pd.DataFrame, pids: pd.Series) -> None:
    """Warn when rows of one patient carry different expression (only the first is used)."""
    dup = pids.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    values = frame.loc[dup].to_numpy(dtype=float)
    groups = pids[dup].to_numpy()
    differing = []
    for pid in pd.unique(groups):
        rows = values[groups == pid]
        if not np.allclose(rows, rows[0], equal_nan=True):
            differing.append(str(pid))
    if differing:
        log.warning(
            "RNA: %d patient(s) have rows with different expression; the first row of each is "
            "used for fitting: %s",
            len(differing),
            ", ".join(differing[:10]),
        )


def _rank_by_dispersion(values: np.ndarray, genes: pd.Index, log_base: float) -> np.ndarray:
    """Column indices of ``values`` (samples x genes, logged) by decreasing scanpy dispersion.

    scanpy's ``highly_variable_genes(flavor="seurat")`` gives each gene's normalised dispersion
    (``dispersions_norm``); genes without one (zero variance) come last, ties in input order.
    """
    import anndata as ad
    import scanpy as sc

    adata = ad.AnnData(
        X=values.astype(np.float64),
        obs=pd.DataFrame(index=[f"s{i}" for i in range(values.shape[0])]),
        var=pd.DataFrame(index=[str(g) for g in genes]),
    )
    adata.uns["log1p"] = {"base": log_base}
    with warnings.catch_warnings():
        # a constant gene has zero dispersion; numpy warns on its log inside scanpy
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        hvg = sc.pp.highly_variable_genes(adata, flavor="seurat", inplace=False)
    disp = np.nan_to_num(hvg["dispersions_norm"].to_numpy(dtype=float), nan=-np.inf)
    return np.lexsort((np.arange(len(disp)), -disp))
