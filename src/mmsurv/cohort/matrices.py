"""Genes x samples matrices (RNA-seq, copy number): reading and mapping samples to patients."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mmsurv.cohort.problems import Problem

__all__ = ["read_matrix", "patient_of", "map_samples", "check_matrix"]

log = logging.getLogger(__name__)

#: Leading non-numeric annotation columns a genes x samples table may carry.
ANNOTATION_COLUMNS = ("gene", "gene_id", "gene_name", "symbol", "chrom", "chrom_arm", "cytoband")


def read_matrix(path: str | Path) -> pd.DataFrame:
    """Read a genes x samples matrix (tsv, csv, parquet or h5ad) with genes as the index.

    The first column (or the index of a parquet file) holds gene ids; further annotation columns
    named in ``ANNOTATION_COLUMNS`` are dropped. An ``.h5ad`` file is read with anndata
    (samples x genes, as scanpy stores it) and transposed. Values are returned as read, not yet
    checked to be numeric.
    """
    path = Path(path)
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith(".h5ad"):
        import anndata

        adata = anndata.read_h5ad(path)
        x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
        return pd.DataFrame(x.T, index=adata.var_names.astype(str), columns=adata.obs_names)
    if suffixes.endswith(".parquet"):
        df = pd.read_parquet(path)
        if df.index.dtype == object and df.index.name is not None:
            df = df.reset_index()
    else:
        sep = "," if suffixes.endswith(".csv") else "\t"
        df = pd.read_csv(path, sep=sep, dtype={0: str}, low_memory=False)
    df = df.set_index(df.columns[0])
    df.index = df.index.astype(str)
    df.columns = [str(c) for c in df.columns]
    return df.drop(columns=[c for c in df.columns if c.lower() in ANNOTATION_COLUMNS])


def patient_of(sample_id: str, id_pattern: str) -> str | None:
    """The patient id of a sample id: the first group of ``id_pattern``, else ``None``.

    >>> patient_of("TCGA-02-0001-01A", r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})")
    'TCGA-02-0001'
    """
    match = re.search(id_pattern, sample_id)
    if match is None:
        return None
    return match.group(1) if match.groups() else match.group(0)


def map_samples(columns: list[str], id_pattern: str) -> dict[str, str]:
    """Map sample columns to patients; the first sample (sorted) of a patient is kept."""
    mapping: dict[str, str] = {}
    for sample in sorted(columns):
        patient = patient_of(sample, id_pattern)
        if patient is None:
            continue
        if patient in mapping.values():
            log.warning(
                "patient %s has several samples; keeping the first, %s dropped", patient, sample
            )
            continue
        mapping[sample] = patient
    return mapping


def check_matrix(
    path: str | Path, id_pattern: str, patients: set[str] | None, problems: list[Problem]
) -> set[str]:
    """Validate a matrix and return the set of cohort patients it covers.

    Reported: a missing or unreadable file, non-numeric values (column and first offending
    gene), and a matrix none of whose columns maps to a patient of the samples sheet. Columns
    of patients outside the samples sheet are allowed (e.g. SCNA-only patients) and logged.
    With ``patients=None`` (samples sheet unusable) only the file itself is checked.
    """
    path = Path(path)
    file = str(path)
    if not path.is_file():
        problems.append(Problem(file, "file not found"))
        return set()
    try:
        df = read_matrix(path)
    except Exception as err:  # noqa: BLE001 - any reader error is a problem of this file
        problems.append(Problem(file, f"cannot be read as a genes x samples matrix: {err}"))
        return set()
    numeric = df.apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() & df.notna()
    for col in df.columns[bad.any(axis=0)]:
        gene = bad.index[bad[col].to_numpy()][0]
        row = int(np.flatnonzero(bad[col].to_numpy())[0]) + 2
        problems.append(
            Problem(file, f"non-numeric value {df.at[gene, col]!r} (gene {gene!r})", row, col)
        )
    mapping = map_samples(list(df.columns), id_pattern)
    if patients is None:
        return set()
    covered = {p for p in mapping.values() if p in patients}
    if not covered:
        problems.append(
            Problem(
                file,
                f"no column maps to a patient of the samples sheet with id_pattern "
                f"{id_pattern!r} (first columns: {', '.join(list(df.columns)[:3])})",
            )
        )
    extra = sorted(set(mapping.values()) - patients)
    unmapped = [c for c in df.columns if c not in mapping]
    if extra:
        log.info(
            "%s: %d patient(s) not in the samples sheet (kept for unsupervised use)",
            file,
            len(extra),
        )
    if unmapped:
        log.warning(
            "%s: %d column(s) do not match id_pattern: %s",
            file,
            len(unmapped),
            ", ".join(unmapped[:5]),
        )
    return covered
