"""RNA-seq counts, GISTIC-like gene-level copy number and a small GMT of gene sets.

RNA (genes x samples, negative-binomial counts)::

    log mu_gj = log L_j + log p_g + beta_g a_j + gamma_g [IDHwt_j] + 0.35 cn_gj
    count_gj ~ NB(mean mu_gj, dispersion phi_g)         (variance mu + phi mu^2)

with library size ``L_j`` (log-normal), baseline proportions ``p_g``, the planted module's
loadings ``beta_g`` (non-zero for the module genes only), the patient's module activity
``a_j`` (``rna_module_activity``), subtype genes ``gamma_g`` and a copy-number dosage effect
(homozygous deletions silence the gene).

SCNA (genes x samples, integers -2..2): arm-level events (chr7 gain + chr10 loss, 1p/19q
co-deletion, random arm gains/losses), focal CDKN2A/B deletion and EGFR amplification, and short
random segments.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import rng_for
from .genome import ANCHORS, CDKN2A_LOCUS, EGFR_LOCUS

__all__ = ["sample_barcode", "copy_number", "rna_counts", "pick_module", "gene_sets", "write_gmt"]


def sample_barcode(patient_id: str) -> str:
    """Primary-tumour sample barcode of a patient: ``TCGA-D0-0001`` -> ``TCGA-D0-0001-01A``."""
    return f"{patient_id}-01A"


def copy_number(genome: pd.DataFrame, traits: pd.DataFrame, seed: int) -> np.ndarray:
    """Gene-level copy number of every patient in ``traits``.

    Parameters
    ----------
    genome
        (G, 3) output of :func:`mmsurv.demo.genome.make_genome`.
    traits
        (n, ...) patients with the ``scna_*`` event columns and ``patient_id``.
    seed
        Cohort seed.

    Returns
    -------
    numpy.ndarray
        (G, n) int8 GISTIC-like values in -2..2.
    """
    arms = genome["chrom_arm"].to_numpy()
    genes = genome["gene"].to_numpy()
    arm_names = list(dict.fromkeys(arms))
    n_genes, n = len(genome), len(traits)
    cn = np.zeros((n_genes, n), dtype=np.int8)
    for j, row in enumerate(traits.itertuples(index=False)):
        rng = rng_for(seed, "scna", int(row.patient_id.rsplit("-", 1)[1]))
        arm_value = {a: 0 for a in arm_names}
        for a in arm_names:  # random arm-level aneuploidy
            u = rng.random()
            arm_value[a] = 1 if u < 0.04 else (-1 if u < 0.08 else 0)
        if row.scna_chr7_gain_chr10_loss:
            arm_value.update({"7p": 1, "7q": 1, "10p": -1, "10q": -1})
        if row.scna_codel:
            arm_value.update({"1p": -1, "19q": -1})
        col = np.array([arm_value[a] for a in arms], dtype=np.int8)
        for _ in range(rng.poisson(3)):  # short focal segments
            start = rng.integers(0, n_genes)
            col[start : start + rng.integers(2, 9)] += rng.choice(np.array([-1, 1], np.int8))
        col = np.clip(col, -2, 2)
        if row.scna_cdkn2a_homdel:
            col[np.isin(genes, CDKN2A_LOCUS)] = -2
        if row.scna_egfr_amp:
            col[np.isin(genes, EGFR_LOCUS)] = 2
        cn[:, j] = col
    return cn


def pick_module(genome: pd.DataFrame, n_module: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Choose the planted module genes and their loadings.

    Returns
    -------
    index : numpy.ndarray
        (n_module,) row numbers in ``genome`` (never an anchor gene).
    beta : numpy.ndarray
        (n_module,) log-fold loadings: 80 % positive (0.6..1.2), the rest negative.
    """
    rng = rng_for(seed, "rna-module")
    candidates = np.flatnonzero(~genome["gene"].isin(list(ANCHORS)).to_numpy())
    index = np.sort(rng.choice(candidates, size=n_module, replace=False))
    n_up = int(round(0.8 * n_module))
    beta = np.concatenate([rng.uniform(0.6, 1.2, n_up), -rng.uniform(0.4, 0.8, n_module - n_up)])
    return index, rng.permutation(beta)


def rna_counts(
    genome: pd.DataFrame,
    traits: pd.DataFrame,
    cn: np.ndarray,
    module: tuple[np.ndarray, np.ndarray],
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Negative-binomial counts for the patients in ``traits``.

    Parameters
    ----------
    genome
        (G, 3) gene layout.
    traits
        (n, ...) patients with ``who_subtype`` and ``rna_module_activity``.
    cn
        (G, n) copy number of the same patients.
    module
        Output of :func:`pick_module`.
    seed
        Cohort seed.

    Returns
    -------
    counts : numpy.ndarray
        (G, n) int64 read counts.
    subtype_genes : numpy.ndarray
        (G,) subtype effect ``gamma_g`` on the log scale (0 for most genes).
    """
    rng = rng_for(seed, "rna")
    n_genes, n = cn.shape
    log_p = rng.normal(0.0, 1.5, n_genes)
    log_p -= np.log(np.exp(log_p).sum())
    phi = np.exp(rng.normal(np.log(0.2), 0.4, n_genes))
    gamma = np.zeros(n_genes)
    free = np.setdiff1d(np.arange(n_genes), module[0])
    sub = rng.choice(free, size=max(10, n_genes // 25), replace=False)
    gamma[sub] = rng.choice([-1.0, 1.0], sub.size) * rng.uniform(0.7, 1.5, sub.size)
    beta = np.zeros(n_genes)
    beta[module[0]] = module[1]
    library = n_genes * 1500.0 * np.exp(rng.normal(0.0, 0.3, n))
    idhwt = (traits["who_subtype"].to_numpy() == "IDHwt").astype(float)
    activity = traits["rna_module_activity"].to_numpy()
    log_mu = (
        np.log(library)[None, :]
        + log_p[:, None]
        + beta[:, None] * activity[None, :]
        + gamma[:, None] * idhwt[None, :]
        + 0.35 * np.clip(cn, -1, 2)
    )
    mu = np.exp(log_mu) * np.where(cn <= -2, 0.05, 1.0)
    r = 1.0 / phi[:, None]
    counts = rng.negative_binomial(np.broadcast_to(r, mu.shape), r / (r + mu))
    return counts.astype(np.int64), gamma


def gene_sets(
    genome: pd.DataFrame, module_index: np.ndarray, gamma: np.ndarray, seed: int
) -> list[tuple[str, str, list[str]]]:
    """Ten gene sets: the planted module, subtype genes, arm sets and random null sets.

    Returns
    -------
    list of (name, description, genes)
    """
    rng = rng_for(seed, "gmt")
    genes = genome["gene"].to_numpy()
    arms = genome["chrom_arm"].to_numpy()

    def arm_set(*names: str) -> list[str]:
        members = genes[np.isin(arms, names)]
        return sorted(rng.choice(members, size=min(40, members.size), replace=False).tolist())

    others = np.setdiff1d(np.arange(len(genes)), module_index)
    half = rng.choice(module_index, size=module_index.size // 2, replace=False)
    partial = np.sort(np.concatenate([half, rng.choice(others, size=10, replace=False)]))
    sets = [
        ("DEMO_RISK_MODULE", "synthetic: planted risk module", genes[module_index].tolist()),
        (
            "DEMO_RISK_PARTIAL",
            "synthetic: half the module and 10 bystanders",
            genes[partial].tolist(),
        ),
        ("DEMO_IDHWT_UP", "synthetic: higher in IDH-wildtype", genes[gamma > 0].tolist()),
        ("DEMO_IDHWT_DOWN", "synthetic: lower in IDH-wildtype", genes[gamma < 0].tolist()),
        ("DEMO_CHR7", "synthetic: chr7 genes", arm_set("7p", "7q")),
        ("DEMO_CHR10", "synthetic: chr10 genes", arm_set("10p", "10q")),
        ("DEMO_1P19Q", "synthetic: 1p and 19q genes", arm_set("1p", "19q")),
    ]
    for k in range(3):
        size = int(rng.integers(15, 41))
        sets.append(
            (
                f"DEMO_RANDOM_{k + 1}",
                "synthetic: random genes (null set)",
                sorted(rng.choice(genes, size=size, replace=False).tolist()),
            )
        )
    return sets


def write_gmt(sets: list[tuple[str, str, list[str]]]) -> str:
    """Format gene sets as GMT text (one tab-separated line per set: name, description, genes)."""
    return "".join("\t".join([name, desc, *members]) + "\n" for name, desc, members in sets)
