"""A toy genome for the omics matrices: genes in order along chromosome arms.

Gene names are ``GENE00001``... except for a few glioma-relevant anchors (EGFR on 7p, PTEN on
10q, CDKN2A on 9p...) that copy-number events target by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import rng_for

__all__ = ["ARM_SIZES_MB", "ANCHORS", "CDKN2A_LOCUS", "EGFR_LOCUS", "make_genome"]

#: Approximate arm lengths (Mb) of the human chromosomes; acrocentric chromosomes have q only.
ARM_SIZES_MB: dict[str, float] = {
    "1p": 125, "1q": 124, "2p": 93, "2q": 150, "3p": 91, "3q": 107, "4p": 50, "4q": 141,
    "5p": 48, "5q": 133, "6p": 61, "6q": 110, "7p": 60, "7q": 99, "8p": 45, "8q": 101,
    "9p": 49, "9q": 92, "10p": 40, "10q": 95, "11p": 53, "11q": 82, "12p": 36, "12q": 98,
    "13q": 96, "14q": 88, "15q": 83, "16p": 36, "16q": 54, "17p": 24, "17q": 57, "18p": 17,
    "18q": 61, "19p": 26, "19q": 32, "20p": 28, "20q": 35, "21q": 35, "22q": 37, "Xp": 60,
    "Xq": 95,
}  # fmt: skip

#: Named genes placed on their real arm.
ANCHORS: dict[str, str] = {
    "FUBP1": "1p", "MYCN": "2p", "IDH1": "2q", "PIK3CA": "3q", "PDGFRA": "4q", "EGFR": "7p",
    "MET": "7q", "CDK6": "7q", "CDKN2A": "9p", "CDKN2B": "9p", "MTAP": "9p", "PTEN": "10q",
    "MGMT": "10q", "CDK4": "12q", "MDM2": "12q", "RB1": "13q", "TP53": "17p", "NF1": "17q",
    "CIC": "19q", "ATRX": "Xq",
}  # fmt: skip

#: Genes lost together in a CDKN2A/B homozygous deletion (GISTIC -2).
CDKN2A_LOCUS: tuple[str, ...] = ("CDKN2A", "CDKN2B", "MTAP")
#: Genes gained together in an EGFR amplification (GISTIC +2).
EGFR_LOCUS: tuple[str, ...] = ("EGFR",)


def make_genome(n_genes: int) -> pd.DataFrame:
    """Lay ``n_genes`` genes out along the chromosome arms.

    Each arm gets a share of genes proportional to its length (at least 2, anchors included);
    the layout depends only on ``n_genes``.

    Parameters
    ----------
    n_genes
        Total number of genes (>= 2 per arm plus anchors, i.e. >= 102).

    Returns
    -------
    pandas.DataFrame
        (n_genes, 3): ``gene`` (unique name), ``chrom_arm`` (``"1p"``...) and ``position``
        (0-based rank along the genome).
    """
    arms = list(ARM_SIZES_MB)
    n_anchor = {a: sum(1 for v in ANCHORS.values() if v == a) for a in arms}
    minimum = sum(max(2, n_anchor[a]) for a in arms)
    if n_genes < minimum:
        raise ValueError(f"n_genes must be at least {minimum}, got {n_genes}")
    sizes = np.array([ARM_SIZES_MB[a] for a in arms], dtype=np.float64)
    counts = np.maximum(np.floor(sizes / sizes.sum() * n_genes).astype(int), 2)
    counts = np.maximum(counts, [n_anchor[a] for a in arms])
    order = np.argsort(-sizes)
    k = 0
    while counts.sum() != n_genes:  # hand out / take back the rounding remainder, largest first
        i = order[k % len(arms)]
        step = 1 if counts.sum() < n_genes else -1
        if step > 0 or counts[i] > max(2, n_anchor[arms[i]]):
            counts[i] += step
        k += 1
    rng = rng_for(0, "genome", n_genes)
    names, arm_col, serial = [], [], 1
    for arm, count in zip(arms, counts, strict=True):
        anchors = [g for g, a in ANCHORS.items() if a == arm]
        slots = sorted(rng.choice(count, size=len(anchors), replace=False).tolist())
        anchor_at = dict(zip(slots, anchors, strict=True))
        for j in range(count):
            if j in anchor_at:
                names.append(anchor_at[j])
            else:
                names.append(f"GENE{serial:05d}")
                serial += 1
            arm_col.append(arm)
    return pd.DataFrame({"gene": names, "chrom_arm": arm_col, "position": np.arange(n_genes)})
