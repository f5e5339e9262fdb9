"""Radiogenomics: what distinguishes the imaging signature's risk groups on RNA-seq.

Reproduces the radiogenomic analysis of a published glioma study, where a DTI deep-learning
signature (DLS) splits patients into high and low risk and the groups are compared on RNA-seq:

1. :func:`differential_expression`: DEGs between the groups with DESeq2 (here pydeseq2) at the
   paper's thresholds, FDR < 0.25 and \\|log2 fold change\\| > 0.10;
2. :func:`enrichment`: over-representation of the DEGs in gene sets (hypergeometric test,
   gseapy's offline ``enrich``);
3. :func:`pathway_scores`: per-patient pathway activity. The paper used GSVA; we use gseapy's
   ssGSEA (Barbie et al. 2009), the single-sample rank-based analogue it runs offline;
4. :func:`correlate_with_signature`: Pearson correlation of each pathway's scores with the DLS;
5. :func:`signature_gene_mean` and :func:`plot_volcano`: a per-patient summary of a gene list
   and the volcano plot of the DEGs (the paper's Fig. 5a).

Nothing here goes online: gene sets are always handed to gseapy as a dict (never a library
name, which gseapy would download) and the enrichment background as a list of genes (never a
BioMart dataset name).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402
from mmsurv.omics.gene_sets import restrict  # noqa: E402

__all__ = [
    "DEG_COLUMNS",
    "ENRICHMENT_COLUMNS",
    "CORRELATION_COLUMNS",
    "differential_expression",
    "enrichment",
    "pathway_scores",
    "correlate_with_signature",
    "signature_gene_mean",
    "plot_volcano",
]

log = logging.getLogger(__name__)

#: Columns of :func:`differential_expression` (index: gene).
DEG_COLUMNS = [
    "base_mean",
    "log2_fold_change",
    "lfc_se",
    "stat",
    "p_value",
    "padj",
    "significant",
    "direction",
]
#: Columns of :func:`enrichment`.
ENRICHMENT_COLUMNS = [
    "term",
    "overlap",
    "set_size",
    "n_genes",
    "p_value",
    "fdr",
    "odds_ratio",
    "genes",
]
#: Columns of :func:`correlate_with_signature`.
CORRELATION_COLUMNS = ["term", "n", "r", "p_value", "fdr"]

_GROUPS = ("low", "high")  # reference level first


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _library_warnings_to_log(package: str, category: type[Warning]) -> Iterator[None]:
    """Turn ``category`` warnings raised inside ``package`` into log records.

    Only warnings of that category attributed to a module of ``package`` are caught (they
    describe data-dependent fallbacks of the fit and are kept as ``logging`` warnings, not
    lost); every other warning is re-issued unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", category=category, module=rf"{re.escape(package)}(\.|$)")
        yield
    for record in caught:
        in_package = f"{os.sep}{package}{os.sep}" in record.filename
        if in_package and issubclass(record.category, category):
            log.warning("%s: %s", package, record.message)
        else:
            warnings.warn_explicit(
                record.message, record.category, record.filename, record.lineno, source=None
            )


def _tokens(prefix: str, n: int) -> list[str]:
    """``n`` opaque identifiers ``{prefix}0 ... {prefix}{n-1}``.

    gseapy guesses identifier types from the names it is given (all-integer names are taken
    as Entrez ids and converted to int; a mostly lower-case query against upper-case sets is
    upper-cased). Handing it upper-case, non-numeric tokens instead of the real names keeps
    those guesses from changing which genes match; results are mapped back afterwards.
    """
    return [f"{prefix}{i}" for i in range(n)]


def _names(values: Sequence[object], what: str) -> list[str]:
    """Check that ``values`` (gene or patient names) are unique; return them as a list."""
    index = pd.Index(values)
    dup = index[index.duplicated()].unique()
    if len(dup):
        raise ValueError(f"duplicate {what}: {', '.join(map(str, dup[:5]))}")
    return list(index)


def _finite_frame(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """``frame`` as float64, rejecting non-numeric, missing or infinite values."""
    try:
        values = frame.astype(float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} must be numeric ({err})") from err
    bad = values.index[~np.isfinite(values.to_numpy()).all(axis=1)]
    if len(bad):
        raise ValueError(
            f"{what} has missing or infinite values for sample(s): {', '.join(map(str, bad[:5]))}"
        )
    return values


# --------------------------------------------------------------------------- DESeq2


def _count_matrix(counts: pd.DataFrame) -> pd.DataFrame:
    """Validate a samples x genes count matrix; return it as int64."""
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"empty count matrix (shape {counts.shape})")
    _names(counts.index, "patient ids in counts")
    _names(counts.columns, "genes in counts")
    values = _finite_frame(counts, "counts")
    array = values.to_numpy()
    negative = values.index[(array < 0).any(axis=1)]
    if len(negative):
        raise ValueError(
            f"negative counts for sample(s): {', '.join(map(str, negative[:5]))} "
            "(DESeq2 needs raw, non-negative integer read counts)"
        )
    fractional = values.index[(array != np.round(array)).any(axis=1)]
    if len(fractional):
        raise ValueError(
            f"non-integer counts for sample(s): {', '.join(map(str, fractional[:5]))} "
            "(DESeq2 needs raw integer read counts, not normalised values)"
        )
    return values.astype(np.int64)


def _group_labels(patients: pd.Index, groups: pd.Series) -> np.ndarray:
    """``groups`` aligned to ``patients``, checked to be ``high``/``low`` with >= 2 each."""
    _names(groups.index, "patient ids in groups")
    missing = patients.difference(groups.index)
    extra = groups.index.difference(patients)
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"without a group: {', '.join(map(str, missing[:10]))}")
        if len(extra):
            parts.append(f"grouped but without counts: {', '.join(map(str, extra[:10]))}")
        raise ValueError(f"counts and groups must cover the same patients; {'; '.join(parts)}")
    labels = groups.reindex(patients)
    bad = labels.index[~labels.isin(_GROUPS)]
    if len(bad):
        raise ValueError(
            f"groups must be 'high' or 'low'; got {sorted(set(map(str, labels[bad])))} for "
            f"patient(s) {', '.join(map(str, bad[:5]))}"
        )
    sizes = labels.value_counts().reindex(list(_GROUPS), fill_value=0)
    small = [f"{g} (n={n})" for g, n in sizes.items() if n < 2]
    if small:
        raise ValueError(f"each group needs at least 2 samples: {', '.join(small)}")
    return labels.to_numpy(dtype=object)


def differential_expression(
    counts: pd.DataFrame,
    groups: pd.Series,
    *,
    fdr: float = 0.25,
    min_abs_lfc: float = 0.10,
    seed: int = 0,
) -> pd.DataFrame:
    """Differentially expressed genes between the high and low risk groups (pydeseq2).

    A negative-binomial GLM ``~ group`` is fitted per gene with DESeq2's defaults (median-of-
    ratios size factors, parametric dispersion trend, Cook's-distance outlier refit), ``low``
    being the reference level, and the Wald test of ``high`` vs ``low`` is reported with
    Benjamini-Hochberg adjusted p-values after DESeq2's independent filtering (optimised at
    ``alpha = fdr``). Genes with zero counts in every sample are dropped before fitting.
    Fold changes are the plain maximum-likelihood log2 fold changes of ``DeseqStats``: no
    LFC shrinkage is applied.

    The defaults are the paper's DEG thresholds: FDR < 0.25 and \\|log2 FC\\| > 0.10.

    Parameters
    ----------
    counts
        Raw read counts, shape (samples, genes): non-negative integers, patient ids as the
        index, gene names as the columns.
    groups
        Risk group per patient, ``"high"`` or ``"low"``, indexed by patient id; exactly the
        patients of ``counts``, at least 2 per group.
    fdr
        Adjusted p-value below which a gene can be significant (and DESeq2's ``alpha``).
    min_abs_lfc
        \\|log2 fold change\\| above which a gene can be significant (log2 units).
    seed
        Kept for a uniform interface with the other analyses; pydeseq2's fit is deterministic
        and draws no random numbers, so it has no effect.

    Returns
    -------
    pandas.DataFrame
        One row per gene of ``counts`` (same order, index named ``gene``), columns
        ``base_mean`` (mean of size-factor-normalised counts), ``log2_fold_change`` (high vs
        low), ``lfc_se``, ``stat`` (Wald statistic), ``p_value``, ``padj``, ``significant``
        (``padj < fdr`` and \\|log2 FC\\| > ``min_abs_lfc``; a NaN ``padj``, from independent
        or Cook's filtering, is never significant) and ``direction`` (``"up"``/``"down"``
        for significant genes higher/lower in ``high``, else ``""``). Genes with all-zero
        counts have ``base_mean`` 0 and NaN statistics.

    Raises
    ------
    ValueError
        For negative, non-integer, missing or non-numeric counts, duplicate ids, patients in
        only one of ``counts`` and ``groups`` (named), labels other than high/low, a group
        with fewer than 2 samples, no gene with a non-zero count, or thresholds out of range.
    """
    del seed  # deterministic fit (see docstring)
    if not 0.0 < fdr <= 1.0:
        raise ValueError(f"fdr must be in (0, 1], got {fdr}")
    if min_abs_lfc < 0:
        raise ValueError(f"min_abs_lfc must be >= 0, got {min_abs_lfc}")
    matrix = _count_matrix(counts)
    labels = _group_labels(matrix.index, groups)
    expressed = (matrix.to_numpy() > 0).any(axis=0)
    if not expressed.any():
        raise ValueError("every gene has zero counts in every sample")
    n_dropped = int((~expressed).sum())
    if n_dropped:
        log.info("differential_expression: dropped %d all-zero gene(s) before fitting", n_dropped)

    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    # Opaque string ids: anndata (under pydeseq2) wants string obs/var names and would warn
    # about converting any other index.
    kept = matrix.loc[:, expressed]
    fit_counts = pd.DataFrame(
        kept.to_numpy(),
        index=_tokens("S", kept.shape[0]),
        columns=_tokens("G", kept.shape[1]),
    )
    metadata = pd.DataFrame(
        {"group": pd.Categorical(labels, categories=list(_GROUPS))}, index=fit_counts.index
    )
    # pydeseq2 reports data-dependent fallbacks (dispersion trend not converging -> mean
    # trend; every gene has a zero -> iterative size factors) as UserWarning: they are logged,
    # not raised, since they describe the fit rather than a misuse.
    with _library_warnings_to_log("pydeseq2", UserWarning):
        dds = DeseqDataSet(
            counts=fit_counts,
            metadata=metadata,
            design="~group",
            refit_cooks=True,
            inference=DefaultInference(n_cpus=1),
            quiet=True,
        )
        dds.deseq2()
        ds = DeseqStats(
            dds,
            contrast=["group", "high", "low"],
            alpha=fdr,
            inference=DefaultInference(n_cpus=1),
            quiet=True,
        )
        ds.summary()
    res = ds.results_df.reindex(fit_counts.columns)

    out = pd.DataFrame(np.nan, index=pd.Index(matrix.columns, name="gene"), columns=DEG_COLUMNS)
    out["base_mean"] = 0.0
    fitted = out.index[expressed]
    for col, src in [
        ("base_mean", "baseMean"),
        ("log2_fold_change", "log2FoldChange"),
        ("lfc_se", "lfcSE"),
        ("stat", "stat"),
        ("p_value", "pvalue"),
        ("padj", "padj"),
    ]:
        out.loc[fitted, col] = res[src].to_numpy(dtype=float)
    lfc = out["log2_fold_change"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        significant = (out["padj"].to_numpy(dtype=float) < fdr) & (np.abs(lfc) > min_abs_lfc)
    out["significant"] = significant
    out["direction"] = np.where(significant & (lfc > 0), "up", np.where(significant, "down", ""))
    return out


# --------------------------------------------------------------------------- enrichment


def _empty_enrichment() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "term": pd.Series(dtype=object),
            "overlap": pd.Series(dtype=np.int64),
            "set_size": pd.Series(dtype=np.int64),
            "n_genes": pd.Series(dtype=np.int64),
            "p_value": pd.Series(dtype=float),
            "fdr": pd.Series(dtype=float),
            "odds_ratio": pd.Series(dtype=float),
            "genes": pd.Series(dtype=object),
        }
    )


def _haldane_odds_ratio(k: int, m: int, n: int, total: int) -> float:
    """gseapy's odds ratio with the Haldane-Anscombe +0.5 correction (see ``enrichment``)."""
    return ((k + 0.5) * (total - m - n + k + 0.5)) / ((m - k + 0.5) * (n - k + 0.5))


def enrichment(
    genes: Sequence[str],
    background: Sequence[str],
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Over-representation of a gene list in gene sets (hypergeometric test, gseapy offline).

    Each set is restricted to the background; sets with ``min_size`` to ``max_size`` genes
    left are tested. With N background genes, a set of m of them, n query genes and k in
    both, the p-value is P(X >= k) for X ~ Hypergeometric(N, m, n) (the one-sided Fisher
    exact test), computed by ``gseapy.enrich`` with the gene sets as a dict and the background
    as a gene list, so nothing is downloaded. A tested set without any query gene gets
    k = 0 and p = 1 (gseapy leaves such sets out; they are kept here so that the FDR is over
    every tested set). ``odds_ratio`` is gseapy's Haldane-Anscombe-corrected
    (k + 0.5)(N - m - n + k + 0.5) / ((m - k + 0.5)(n - k + 0.5)).

    Parameters
    ----------
    genes
        Query genes (e.g. the DEGs), all in ``background``; duplicates are counted once.
    background
        Every gene that could have been in the query (e.g. all genes tested for DE).
    gene_sets
        Set name -> genes (e.g. from :func:`mmsurv.omics.gene_sets.read_gene_sets`).
    min_size, max_size
        Inclusive bounds on a set's size within the background.

    Returns
    -------
    pandas.DataFrame
        One row per tested set, columns ``term``, ``overlap`` (k), ``set_size`` (m),
        ``n_genes`` (n), ``p_value``, ``fdr`` (Benjamini-Hochberg over the tested sets),
        ``odds_ratio`` and ``genes`` (the overlapping genes in set order, joined by ``;``),
        sorted by ``p_value`` (ties by input order). An empty query gives an empty frame with
        these columns.

    Raises
    ------
    ValueError
        For an empty background, query genes missing from the background (named), or no
        set of an allowed size in the background.
    """
    bg = list(dict.fromkeys(background))
    if not bg:
        raise ValueError("empty background")
    query = list(dict.fromkeys(genes))
    in_bg = set(bg)
    outside = [g for g in query if g not in in_bg]
    if outside:
        raise ValueError(
            f"{len(outside)} query gene(s) not in the background: {', '.join(outside[:5])}"
        )
    sets = restrict(gene_sets, bg, min_size, max_size)
    if not sets:
        raise ValueError(
            f"no gene set has {min_size} to {max_size} genes in the background of {len(bg)}"
        )
    if not query:
        return _empty_enrichment()

    token = dict(zip(bg, _tokens("G", len(bg)), strict=True))
    gene_of = {t: g for g, t in token.items()}
    query_set = set(query)
    rows = []
    for name, members in sets.items():
        hits = [g for g in members if g in query_set]
        k, m, n = len(hits), len(members), len(query)
        rows.append(
            {
                "term": name,
                "overlap": k,
                "set_size": m,
                "n_genes": n,
                "p_value": 1.0,
                "odds_ratio": _haldane_odds_ratio(k, m, n, len(bg)),
                "genes": ";".join(hits),
            }
        )
    table = pd.DataFrame(rows)

    hit_sets = {
        name: [token[g] for g in sets[name]] for name in table.loc[table["overlap"] > 0, "term"]
    }
    if hit_sets:
        import gseapy

        enr = gseapy.enrich(
            gene_list=[token[g] for g in query],
            gene_sets=hit_sets,
            background=[token[g] for g in bg],
            outdir=None,
            no_plot=True,
            verbose=False,
        )
        try:
            res = enr.res2d.set_index("Term")
        finally:
            enr.close()
        idx = table.index[table["overlap"] > 0]
        terms = table.loc[idx, "term"]
        got = res.loc[terms]
        expected = [
            f"{k}/{m}"
            for k, m in zip(table.loc[idx, "overlap"], table.loc[idx, "set_size"], strict=True)
        ]
        if list(got["Overlap"]) != expected:  # guard against gseapy re-matching genes
            raise RuntimeError("gseapy's overlaps disagree with the restricted gene sets")
        table.loc[idx, "p_value"] = got["P-value"].to_numpy(dtype=float)
        table.loc[idx, "odds_ratio"] = got["Odds Ratio"].to_numpy(dtype=float)
        hit_genes = [[gene_of[t] for t in str(s).split(";") if t] for s in got["Genes"].to_numpy()]
        if any(
            set(h) != set(g.split(";"))
            for h, g in zip(hit_genes, table.loc[idx, "genes"], strict=True)
        ):
            raise RuntimeError("gseapy's overlapping genes disagree with the restricted gene sets")

    table["fdr"] = stats.false_discovery_control(
        table["p_value"].to_numpy(dtype=float), method="bh"
    )
    table = table.sort_values("p_value", kind="stable").reset_index(drop=True)
    return table[ENRICHMENT_COLUMNS].astype(
        {"overlap": np.int64, "set_size": np.int64, "n_genes": np.int64}
    )


# --------------------------------------------------------------------------- ssGSEA


def pathway_scores(
    expression: pd.DataFrame,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int = 5,
    max_size: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """Single-sample pathway activity per patient (ssGSEA, gseapy offline).

    The paper scored pathways with GSVA; we use ssGSEA (Barbie et al. 2009) as run by
    ``gseapy.ssgsea``, the single-sample, rank-based analogue gseapy offers offline. Each
    patient's genes are ranked by expression (``sample_norm_method="rank"``), the enrichment
    score of a set is the weighted (weight 0.25) running-sum statistic of Barbie et al., and
    the reported normalised score (NES) is ES divided by the range (max - min) of all ES of
    the run, as in the GSVA R package's ssGSEA. Scores are therefore comparable between
    patients and sets of one call, not across calls with other patients or sets.

    Parameters
    ----------
    expression
        Log-scale expression (e.g. log2(CPM + 1)), shape (samples, genes): patient ids as the
        index, gene names as the columns; finite values.
    gene_sets
        Set name -> genes.
    min_size, max_size
        Inclusive bounds on a set's number of measured genes; other sets are left out, as is
        a set covering every measured gene (its ranks carry no information).
    seed
        Seed passed to gseapy (only used by its permutations, which are not run here).

    Returns
    -------
    pandas.DataFrame
        Shape (samples, sets), float64: index the patient ids in input order, columns the
        kept set names in input order.

    Raises
    ------
    ValueError
        For missing, infinite or non-numeric values, duplicate ids, or no set of an allowed
        size among the measured genes.
    """
    if expression.shape[0] == 0:
        raise ValueError("expression has no samples")
    patients = _names(expression.index, "patient ids in expression")
    genes = _names(expression.columns, "genes in expression")
    values = _finite_frame(expression, "expression")
    sets = restrict(gene_sets, genes, min_size, max_size)
    whole = [name for name, members in sets.items() if len(members) >= len(genes)]
    for name in whole:
        log.info("pathway_scores: left out %s, which covers every measured gene", name)
        del sets[name]
    if not sets:
        raise ValueError(
            f"no gene set has {min_size} to {max_size} of the {len(genes)} measured genes "
            "(and fewer than all of them)"
        )

    import gseapy

    token = dict(zip(genes, _tokens("G", len(genes)), strict=True))
    samples = _tokens("S", len(patients))
    data = pd.DataFrame(values.to_numpy().T, index=list(token.values()), columns=samples)
    ss = gseapy.ssgsea(
        data=data,
        gene_sets={name: [token[g] for g in members] for name, members in sets.items()},
        outdir=None,
        sample_norm_method="rank",
        correl_norm_type="rank",
        min_size=min_size,
        max_size=max_size,
        permutation_num=0,
        weight=0.25,
        threads=1,
        seed=seed,
        no_plot=True,
        verbose=False,
    )
    res = ss.res2d
    scores = res.pivot(index="Name", columns="Term", values="NES").astype(float)
    scores = scores.reindex(index=samples, columns=list(sets))
    if scores.isna().any().any():
        raise RuntimeError("gseapy's ssGSEA did not score every sample and set")
    scores.index = pd.Index(patients, name=expression.index.name)
    scores.columns = pd.Index(list(sets), name="term")
    return scores


# --------------------------------------------------------------------------- correlation


def correlate_with_signature(scores: pd.DataFrame, signature: pd.Series) -> pd.DataFrame:
    """Pearson correlation of each set's scores with the imaging signature.

    Parameters
    ----------
    scores
        Pathway scores, shape (samples, sets) (e.g. :func:`pathway_scores`), patient ids as
        the index.
    signature
        Signature value per patient (e.g. the DLS risk score), indexed by patient id.

    Returns
    -------
    pandas.DataFrame
        One row per set, columns ``term``, ``n`` (patients with both values), ``r`` and
        ``p_value`` (``scipy.stats.pearsonr``, two-sided), ``fdr`` (Benjamini-Hochberg,
        ``scipy.stats.false_discovery_control``, over the sets with a p-value), sorted by
        ``p_value``. A set whose scores (or the signature) are constant over its patients
        has NaN ``r``, ``p_value`` and ``fdr`` and comes last.

    Raises
    ------
    ValueError
        For duplicate patient ids, or fewer than 3 patients shared by ``scores`` and
        ``signature`` with a finite signature.
    """
    _names(scores.index, "patient ids in scores")
    _names(signature.index, "patient ids in signature")
    sig = pd.to_numeric(signature, errors="coerce").astype(float)
    sig = sig[np.isfinite(sig.to_numpy())]
    shared = scores.index.intersection(sig.index, sort=False)
    if len(shared) < 3:
        raise ValueError(
            f"need at least 3 patients with both scores and a signature value, got {len(shared)}"
        )
    x = sig.reindex(shared).to_numpy()
    rows = []
    for term in scores.columns:
        y = pd.to_numeric(scores.loc[shared, term], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y)
        n = int(ok.sum())
        r = p = float("nan")
        if n >= 3 and np.ptp(y[ok]) > 0 and np.ptp(x[ok]) > 0:
            res = stats.pearsonr(x[ok], y[ok])
            r, p = float(res.statistic), float(res.pvalue)
        rows.append({"term": term, "n": n, "r": r, "p_value": p})
    table = pd.DataFrame(rows, columns=["term", "n", "r", "p_value"])
    table["fdr"] = np.nan
    tested = table["p_value"].notna()
    if tested.any():
        table.loc[tested, "fdr"] = stats.false_discovery_control(
            table.loc[tested, "p_value"].to_numpy(dtype=float), method="bh"
        )
    table = table.sort_values("p_value", kind="stable", na_position="last")
    return table.reset_index(drop=True)[CORRELATION_COLUMNS]


def signature_gene_mean(expression: pd.DataFrame, genes: Sequence[str]) -> pd.Series:
    """Per-patient mean expression of the given genes that were measured.

    Parameters
    ----------
    expression
        Log-scale expression, shape (samples, genes), patient ids as the index.
    genes
        Genes to average (e.g. the up-regulated DEGs); genes not in ``expression`` are
        skipped (their number is logged).

    Returns
    -------
    pandas.Series
        Shape (samples,), float64, index of ``expression``, in its units (e.g. log2 CPM).

    Raises
    ------
    ValueError
        When none of ``genes`` is in ``expression``, or a used value is missing.
    """
    wanted = list(dict.fromkeys(genes))
    present = [g for g in wanted if g in expression.columns]
    if not present:
        raise ValueError(
            f"none of the {len(wanted)} gene(s) is in the expression matrix "
            f"(first: {', '.join(map(str, wanted[:5]))})"
        )
    if len(present) < len(wanted):
        log.info(
            "signature_gene_mean: %d of %d gene(s) not measured",
            len(wanted) - len(present),
            len(wanted),
        )
    values = _finite_frame(expression[present], "expression")
    return values.mean(axis=1).rename("signature_gene_mean")


# --------------------------------------------------------------------------- volcano


def plot_volcano(
    deg: pd.DataFrame,
    path: str | Path,
    *,
    fdr: float,
    min_abs_lfc: float,
    title: str,
    label_top: int = 10,
) -> None:
    """Volcano plot of :func:`differential_expression` results, written atomically as PNG.

    log2 fold change (x) against -log10(padj) (y); genes significant at the given thresholds
    (``padj < fdr`` and \\|log2 FC\\| > ``min_abs_lfc``, recomputed here so that colours and
    threshold lines agree) are red when up in the high group and green when down (as the
    paper's Fig. 5a), the rest grey. Dashed lines mark the thresholds and the ``label_top``
    significant genes with the smallest ``padj`` are labelled. Genes without ``padj``
    (independent filtering, Cook's outliers, all-zero counts) are not drawn; the title says
    how many. A ``padj`` of 0 is drawn at the smallest positive double.

    Parameters
    ----------
    deg
        Index gene, columns ``log2_fold_change`` and ``padj`` at least.
    path
        PNG file to write.
    fdr, min_abs_lfc
        Thresholds (as in :func:`differential_expression`).
    title
        Figure title.
    label_top
        Number of significant genes to label (0 for none).
    """
    missing = {"log2_fold_change", "padj"} - set(deg.columns)
    if missing:
        raise ValueError(f"deg lacks column(s): {', '.join(sorted(missing))}")
    lfc_all = deg["log2_fold_change"].astype(float)
    padj_all = deg["padj"].astype(float)
    shown = padj_all.notna() & lfc_all.notna()
    n_dropped = int((~shown).sum())
    lfc, padj = lfc_all[shown], padj_all[shown]
    y = -np.log10(padj.clip(lower=np.finfo(float).tiny))
    sig = (padj < fdr) & (lfc.abs() > min_abs_lfc)
    up, down = sig & (lfc > 0), sig & (lfc < 0)
    other = ~(up | down)

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    try:
        ax.scatter(
            lfc[other], y[other], s=9, c="lightgrey", label=f"not significant ({other.sum()})"
        )
        ax.scatter(lfc[up], y[up], s=12, c="tab:red", label=f"up in high ({up.sum()})")
        ax.scatter(lfc[down], y[down], s=12, c="tab:green", label=f"down in high ({down.sum()})")
        ax.axhline(-np.log10(fdr), color="black", lw=0.8, ls="--")
        for x in (-min_abs_lfc, min_abs_lfc):
            ax.axvline(x, color="black", lw=0.8, ls="--")
        if label_top > 0:
            order = np.argsort(padj.where(sig).to_numpy(), kind="stable")[: int(sig.sum())]
            for i in order[:label_top]:
                ax.annotate(
                    str(padj.index[i]),
                    (lfc.iloc[i], y.iloc[i]),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=7,
                )
        ax.set_xlabel("log2 fold change (high vs low)")
        ax.set_ylabel("-log10 adjusted p-value")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        note = f"{n_dropped} gene(s) without padj not shown" if n_dropped else "all genes shown"
        ax.set_title(f"{title}\nFDR < {fdr:g}, |log2 FC| > {min_abs_lfc:g}; {note}", fontsize=10)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
