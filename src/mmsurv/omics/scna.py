"""Somatic copy number (SCNA): per-sample cleaning, a training-fitted PCA and the UMAP picture.

Three pieces with different honesty rules (DESIGN.md section 5):

- :func:`clean_scna` is *per-sample* work (ids mapped, values checked, genes with a missing
  value dropped), so the omics stage runs it on every SCNA sample before any split, SCNA-only
  patients (outside the samples sheet) included.
- :class:`ScnaPCA` is *fitted*: the caller chooses its samples (one fold's training patients,
  plus SCNA-only patients where the config says so, as the seed paper did: Nuechterlein et al.
  fitted their 50-d SCNA PCA on all non-validation samples); it is stored with the model.
- :func:`umap_embedding` and :func:`plot_umap` draw all SCNA samples coloured by subtype (the
  seed paper's Fig. 5). The picture is unsupervised and never an input of a model.
"""

from __future__ import annotations

import logging
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from mmsurv.cohort.matrices import map_samples
from mmsurv.omics.rna import prefixed_frame

__all__ = [
    "SCNA_PREFIX",
    "NO_LABEL",
    "clean_scna",
    "scna_frame",
    "ScnaPCA",
    "umap_embedding",
    "group_labels",
    "plot_umap",
]

log = logging.getLogger(__name__)

#: Prefix of the copy-number columns of a model's input table (``scna:{gene}``).
SCNA_PREFIX = "scna:"

#: Group of the UMAP points whose patient has no subtype (or is not in the samples sheet).
NO_LABEL = "no label"

_NO_LABEL_COLOUR = "#d3d3d3"


def clean_scna(matrix: pd.DataFrame, id_pattern: str) -> pd.DataFrame:
    """Map a genes x samples copy-number matrix to patients; check values; drop incomplete genes.

    Parameters
    ----------
    matrix
        Copy number, shape (genes, samples), genes as the index, as returned by
        :func:`mmsurv.cohort.read_matrix` (values may still be strings). Gene-level values of any
        scale (GISTIC -2..2, log2 ratios).
    id_pattern
        Regular expression whose first group is the patient id of a sample column. The first
        sample (sorted) of a patient is kept; columns that do not match are dropped, logged.

    Returns
    -------
    pandas.DataFrame
        Shape (patients, genes), float32, index ``patient_id`` (every mapped patient, whether or
        not in the samples sheet), columns the gene names (str). Genes with a missing value in
        any kept sample are dropped (never filled), with a log line giving their count.

    Raises
    ------
    ValueError
        When no column maps to a patient, gene ids repeat, or a value is not a finite number
        (naming the sample and the gene).
    """
    mapping = map_samples([str(c) for c in matrix.columns], id_pattern)
    if not mapping:
        raise ValueError(
            f"no SCNA column maps to a patient with id_pattern {id_pattern!r} "
            f"(first columns: {', '.join(map(str, list(matrix.columns)[:3]))})"
        )
    unmapped = [c for c in matrix.columns if str(c) not in mapping]
    if unmapped:
        log.warning(
            "SCNA: %d column(s) do not match id_pattern: %s",
            len(unmapped),
            ", ".join(map(str, unmapped[:5])),
        )
    genes = matrix.index.astype(str)
    if genes.has_duplicates:
        dup = genes[genes.duplicated()].unique()
        raise ValueError(f"SCNA: duplicate gene id(s): {', '.join(dup[:10])}")
    raw = matrix.copy()
    raw.index = genes
    raw.columns = [str(c) for c in raw.columns]
    raw = raw[list(mapping)]
    values = _numeric(raw)
    complete = values.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        log.info(
            "SCNA: %d of %d gene(s) dropped for a missing value in at least one sample",
            n_dropped,
            len(values),
        )
    if not complete.any():
        raise ValueError("SCNA: every gene has a missing value in some sample")
    table = values.loc[complete].T.rename(index=mapping).astype(np.float32)
    table.index.name = "patient_id"
    table.columns = [str(g) for g in table.columns]
    log.info("SCNA: %d patient(s) x %d gene(s)", table.shape[0], table.shape[1])
    return table


def _numeric(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` (genes x samples) as float64; a non-numeric or infinite value is an error."""
    values = raw.apply(pd.to_numeric, errors="coerce").astype(float)
    bad = (values.isna() & raw.notna()) | np.isinf(values)
    if bad.to_numpy().any():
        sample = bad.columns[bad.any(axis=0)][0]
        gene = bad.index[bad[sample].to_numpy()][0]
        n_bad = int(bad.to_numpy().sum())
        raise ValueError(
            f"SCNA: non-numeric value {raw.at[gene, sample]!r} in sample {sample!r}, gene "
            f"{gene!r} ({n_bad} such value(s) in all)"
        )
    return values


def scna_frame(X: pd.DataFrame) -> pd.DataFrame:
    """The ``scna:{gene}`` columns of ``X`` as units x genes float64 (index of ``X``); a unit
    with a missing value is an error (see :func:`mmsurv.omics.rna.prefixed_frame`)."""
    return prefixed_frame(X, SCNA_PREFIX, "SCNA")


class ScnaPCA:
    """Principal components of gene-level copy number, fitted on the samples the caller gives.

    Centred, not scaled (copy-number values share one scale), scikit-learn ``PCA`` with
    ``svd_solver="full"`` (exact, deterministic). The seed paper keeps 50 components for its
    networks and 5 for its SCNA-only Cox baseline.

    Parameters
    ----------
    n_components
        Components wanted; capped at ``min(n_samples - 1, n_genes)`` when fitting (warned).
    seed
        ``random_state`` of the PCA (unused by the exact solver; kept for provenance).

    Attributes
    ----------
    fitted_ids_ : list[str]
        Patient ids of the fitted samples, in input order.
    genes_ : list[str]
        Genes of the fit, in the order :meth:`transform` uses.
    n_components_ : int
        Components kept.
    explained_variance_ratio_ : numpy.ndarray
        Fraction of the fitted samples' variance per component, shape (n_components_,).
    pca_ : sklearn.decomposition.PCA
        The fitted PCA.
    """

    def __init__(self, n_components: int = 50, seed: int = 0) -> None:
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.n_components = int(n_components)
        self.seed = int(seed)

    def fit(self, frame: pd.DataFrame) -> Self:
        """Fit on ``frame``, shape (samples, genes), indexed by patient id.

        Raises
        ------
        ValueError
            With fewer than 2 samples, duplicate patient ids or genes, or a non-finite value.
        """
        from sklearn.decomposition import PCA

        if len(frame) < 2:
            raise ValueError(f"SCNA PCA needs at least 2 samples, got {len(frame)}")
        ids = [str(i) for i in frame.index]
        if len(set(ids)) != len(ids):
            dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique()
            raise ValueError(f"SCNA PCA: duplicate patient id(s): {', '.join(dup[:10])}")
        genes = [str(g) for g in frame.columns]
        if len(set(genes)) != len(genes):
            raise ValueError("SCNA PCA: duplicate gene names")
        values = frame.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = pd.Index(ids)[~np.isfinite(values).all(axis=1)]
            raise ValueError(f"SCNA PCA: non-finite values for {', '.join(bad[:10])}")
        n_samples, n_genes = values.shape
        n_comp = min(self.n_components, n_samples - 1, n_genes)
        if n_comp < self.n_components:
            log.warning(
                "SCNA PCA: %d component(s) asked, %d kept (%d samples x %d genes)",
                self.n_components,
                n_comp,
                n_samples,
                n_genes,
            )
        self.pca_ = PCA(n_components=n_comp, svd_solver="full", random_state=self.seed)
        self.pca_.fit(values)
        self.fitted_ids_ = ids
        self.genes_ = genes
        self.n_components_ = int(n_comp)
        self.explained_variance_ratio_ = np.asarray(self.pca_.explained_variance_ratio_, float)
        log.info(
            "SCNA PCA on %d samples x %d genes: %d components, %.1f%% of the variance",
            n_samples,
            n_genes,
            n_comp,
            100 * self.explained_variance_ratio_.sum(),
        )
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Project samples, shape (n, genes; any column order, extra columns ignored).

        Returns
        -------
        numpy.ndarray
            Shape (n, n_components_), float64.

        Raises
        ------
        ValueError
            When ``frame`` lacks a fitted gene (a few are named).
        """
        if not hasattr(self, "pca_"):
            raise RuntimeError("ScnaPCA is not fitted")
        frame = frame.rename(columns=str)
        missing = [g for g in self.genes_ if g not in frame.columns]
        if missing:
            raise ValueError(
                f"SCNA lacks {len(missing)} gene(s) of the fitted PCA: {', '.join(missing[:5])}"
            )
        values = frame[self.genes_].to_numpy(dtype=np.float64)
        return np.asarray(self.pca_.transform(values), dtype=np.float64)

    @property
    def component_names(self) -> list[str]:
        """``["scna_pc1", ..., f"scna_pc{n_components_}"]`` (after fitting)."""
        if not hasattr(self, "n_components_"):
            raise RuntimeError("ScnaPCA is not fitted")
        return [f"scna_pc{i + 1}" for i in range(self.n_components_)]


def umap_embedding(
    table: pd.DataFrame, seed: int, n_pcs: int = 50, n_neighbors: int = 15
) -> pd.DataFrame:
    """Two-dimensional UMAP of SCNA samples (scanpy: PCA, kNN graph, UMAP), seeded.

    Parameters
    ----------
    table
        Copy number, shape (samples, genes), indexed by patient id.
    seed
        ``random_state`` of ``sc.pp.pca``, ``sc.pp.neighbors`` and ``sc.tl.umap``: the same
        table and seed give the same coordinates.
    n_pcs
        Principal components of the graph, capped at ``min(samples - 1, genes - 1)``.
    n_neighbors
        Neighbours per sample, capped at ``samples - 1``.

    Returns
    -------
    pandas.DataFrame
        Index ``patient_id`` (the table's order), columns ``umap1``, ``umap2`` (float64).

    Raises
    ------
    ValueError
        With fewer than 3 samples or 2 genes, or non-finite values.
    """
    import anndata as ad
    import scanpy as sc

    n_samples, n_genes = table.shape
    if n_samples < 3 or n_genes < 2:
        raise ValueError(
            f"a UMAP needs at least 3 samples and 2 genes, got {n_samples} x {n_genes}"
        )
    values = table.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("SCNA UMAP: the table has non-finite values")
    ids = [str(i) for i in table.index]
    adata = ad.AnnData(
        X=values,
        obs=pd.DataFrame(index=ids),
        var=pd.DataFrame(index=[str(g) for g in table.columns]),
    )
    n_comps = min(int(n_pcs), n_samples - 1, n_genes - 1)
    k = min(int(n_neighbors), n_samples - 1)
    with _relay_warnings("scanpy UMAP"):
        sc.pp.pca(adata, n_comps=n_comps, svd_solver="full", random_state=seed)
        sc.pp.neighbors(adata, n_neighbors=k, use_rep="X_pca", random_state=seed)
        sc.tl.umap(adata, random_state=seed)
    log.info(
        "SCNA UMAP: %d samples x %d genes, %d PCs, %d neighbours, seed %d",
        n_samples,
        n_genes,
        n_comps,
        k,
        seed,
    )
    coords = pd.DataFrame(
        np.asarray(adata.obsm["X_umap"], dtype=np.float64),
        index=pd.Index(ids, name="patient_id"),
        columns=["umap1", "umap2"],
    )
    return coords


@contextmanager
def _relay_warnings(what: str) -> Iterator[None]:
    """Log third-party warnings raised inside the block instead of raising or printing them.

    scanpy, umap-learn and numba warn about properties of the data (a small or disconnected
    neighbour graph, the spectral initialisation falling back to a dense solver); for a
    descriptive picture these belong in the stage's log, where the user sees them.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        log.warning("%s: %s: %s", what, w.category.__name__, w.message)


def group_labels(patients: pd.Index | list[str], groups: pd.Series) -> pd.Series:
    """The group of each patient as text; patients absent from ``groups`` or NaN: ``NO_LABEL``.

    Parameters
    ----------
    patients
        Patient ids, shape (n,).
    groups
        Group (e.g. WHO subtype) per patient id; integral numbers are written without ``.0``.

    Returns
    -------
    pandas.Series
        Shape (n,), str, indexed by ``patients``.
    """
    index = pd.Index([str(p) for p in patients], name="patient_id")
    known = groups.copy()
    known.index = known.index.astype(str)
    known = known[~known.index.duplicated()].dropna()
    if pd.api.types.is_float_dtype(known) and (known == np.round(known)).all():
        known = known.astype(np.int64)
    text = known.astype(str)
    return text.reindex(index).fillna(NO_LABEL).astype(str)


def plot_umap(coords: pd.DataFrame, groups: pd.Series, out_png: str | Path, title: str) -> None:
    """Scatter of UMAP coordinates coloured by group, written atomically as a PNG.

    Parameters
    ----------
    coords
        Index patient id, columns ``umap1``, ``umap2`` (from :func:`umap_embedding`).
    groups
        Group per patient id (subtype names). Patients absent or without a group are drawn in
        light grey as ``"no label"``.
    out_png
        Output path.
    title
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mmsurv.io import atomic_path

    labels = group_labels(coords.index, groups)
    counts = labels.value_counts()
    order = [g for g in counts.index if g != NO_LABEL]
    order = sorted(order, key=lambda g: (-counts[g], g))
    cmap = plt.get_cmap("tab10" if len(order) <= 10 else "tab20")
    colours = {g: cmap(i % cmap.N) for i, g in enumerate(order)}
    fig, ax = plt.subplots(figsize=(7.0, 5.5))
    for group in [*order, *([NO_LABEL] if NO_LABEL in counts.index else [])]:
        mask = (labels == group).to_numpy()
        ax.scatter(
            coords["umap1"].to_numpy()[mask],
            coords["umap2"].to_numpy()[mask],
            s=14,
            color=colours.get(group, _NO_LABEL_COLOUR),
            label=f"{group} (n={int(counts[group])})",
            alpha=0.85,
            linewidths=0,
            zorder=1 if group == NO_LABEL else 2,
        )
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
