"""The seed-4 radiogenomics of a signature (Yan et al. 2021, section 2.4): one job per experiment.

On the patients of ``radiogenomics.splits`` (default validation + test: their signature comes
from patients whose outcome never
entered the network's weights) who have RNA-seq:

Every step that cannot run on the cohort at hand (fewer than 3 analysed patients, a risk group
under 2, no gene set of the allowed size among the measured genes, no training patient with RNA
and an event for the pathway cut) writes its table empty with the reason in ``summary.json``
(``notes``) instead of failing the job.

1. DEGs between the signature's risk groups (the training X-tile cut of
   ``results/signature/{experiment}/groups.tsv``) with pydeseq2 on the raw counts;
2. over-representation of the DEGs (up and down together) in the gene sets of
   ``cohort.gene_sets`` among the tested genes (gseapy, offline);
3. per-patient pathway scores (ssGSEA) of every testable set, Pearson-correlated with the
   signature; the sets both enriched and correlated are the signature's pathways. The paper
   scores only its enriched pathways, so the deciding FDR (``fdr_enriched``) is
   Benjamini-Hochberg over the enriched sets alone; every set is scored and ``fdr`` (over all
   sets) is kept so the table shows the rest too;
4. the mean log2 CPM of those pathways' genes per patient: an X-tile cut (search range
   ``signature.cutoff_quantiles``) fitted on the training patients with RNA, applied unchanged
   to the analysed patients; Kaplan-Meier curves
   with log-rank tests and hazard ratios.

Without raw counts (``omics.rna_values`` other than ``counts``) DESeq2 cannot run: the DEG
table is empty and the summary says why; the pathway scores and their correlation still run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mmsurv.evaluation.signature import group_tests, plot_risk_groups, risk_group, xtile_cutoff
from mmsurv.io import atomic_path, read_tsv, write_tsv
from mmsurv.omics.gene_sets import read_gene_sets, restrict
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

__all__ = ["analyse_radiogenomics"]

log = logging.getLogger(__name__)


def _write_json(data: Mapping[str, Any], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=str))


def _fdr_within(table: pd.DataFrame, chosen: pd.Series) -> np.ndarray:
    """Benjamini-Hochberg FDR of ``table["p_value"]`` over the rows where ``chosen`` holds and
    the p-value exists; NaN elsewhere. Shape (len(table),)."""
    out = np.full(len(table), np.nan)
    mask = chosen.to_numpy(bool) & table["p_value"].notna().to_numpy()
    if mask.any():
        out[mask] = stats.false_discovery_control(
            table.loc[mask, "p_value"].to_numpy(float), method="bh"
        )
    return out


def analyse_radiogenomics(
    settings: Mapping[str, Any],
    experiment: str,
    groups: str | Path,
    expression: pd.DataFrame,
    counts: pd.DataFrame | None,
    gene_set_files: Sequence[str | Path],
    outputs: Mapping[str, str | Path],
    seed: int = 0,
    cutoff_quantiles: tuple[float, float] = (0.1, 0.9),
) -> dict[str, Any]:
    """Write the radiogenomics of ``experiment`` (see the module docstring).

    Parameters
    ----------
    settings
        The config's ``radiogenomics`` section.
    groups
        ``results/signature/{experiment}/groups.tsv`` (patient_id, split, dls, group, time,
        event, cutoff).
    expression
        log2 CPM + 1, patients x genes (``results/omics/rna.parquet``).
    counts
        Raw counts, patients x genes, or None when the cohort's RNA is not counts.
    gene_set_files
        Local GMT files.
    outputs
        Paths keyed ``deg``, ``enrichment``, ``correlation``, ``pathway_km``, ``summary``,
        ``volcano``, ``pathway_km_plot``.
    cutoff_quantiles
        The X-tile search range of the pathway-gene cut (``signature.cutoff_quantiles``).

    Returns
    -------
    dict
        The summary also written to ``outputs["summary"]``.
    """
    table = read_tsv(groups)
    table["patient_id"] = table["patient_id"].astype(str)
    expression = expression.copy()
    expression.index = expression.index.astype(str)
    with_rna = table[table["patient_id"].isin(expression.index)]
    cohort = with_rna[with_rna["split"].isin(settings["splits"])].set_index("patient_id")
    summary: dict[str, Any] = {
        "experiment": experiment,
        "splits": list(settings["splits"]),
        "n_patients": len(cohort),
        "n_high": int((cohort["group"] == "high").sum()),
        "n_low": int((cohort["group"] == "low").sum()),
        "fdr": settings["fdr"],
        "min_abs_lfc": settings["min_abs_lfc"],
        "enrichment_fdr": settings["enrichment_fdr"],
        "correlation_fdr": settings["correlation_fdr"],
        "deg_note": "",
        "notes": [],
    }
    notes: list[str] = summary["notes"]
    log.info(
        "%s: %d patients of %s with RNA (%d high, %d low)",
        experiment,
        len(cohort),
        "/".join(settings["splits"]),
        summary["n_high"],
        summary["n_low"],
    )
    sets = restrict(
        read_gene_sets(list(gene_set_files)),
        list(expression.columns),
        settings["min_set_size"],
        settings["max_set_size"],
    )
    log.info(
        "%d gene sets with %d-%d measured genes",
        len(sets),
        settings["min_set_size"],
        settings["max_set_size"],
    )
    if not sets:
        notes.append(
            f"No gene set of cohort.gene_sets has {settings['min_set_size']}-"
            f"{settings['max_set_size']} measured genes: no enrichment or pathway scores."
        )
    if len(cohort) < 3:
        notes.append(
            f"Only {len(cohort)} patient(s) of {'/'.join(settings['splits'])} have RNA-seq "
            "(at least 3 needed): no DEGs, enrichment or pathway correlation."
        )

    # 1. DEGs (pydeseq2 on raw counts)
    deg = pd.DataFrame(columns=DEG_COLUMNS)
    if counts is None:
        summary["deg_note"] = (
            "No DEGs: DESeq2 needs raw counts and omics.rna_values is not 'counts'."
        )
    elif len(cohort) < 3 or min(summary["n_high"], summary["n_low"]) < 2:
        summary["deg_note"] = (
            f"No DEGs: a risk group has fewer than 2 patients ({summary['n_high']} high, "
            f"{summary['n_low']} low)."
        )
    else:
        part = counts.loc[cohort.index]
        deg = differential_expression(
            part,
            cohort["group"],
            fdr=settings["fdr"],
            min_abs_lfc=settings["min_abs_lfc"],
            seed=seed,
        )
    write_tsv(deg.rename_axis("gene").reset_index(), outputs["deg"])
    significant = deg.index[deg["significant"].astype(bool)] if len(deg) else pd.Index([])
    summary["n_up"] = int((deg["direction"] == "up").sum()) if len(deg) else 0
    summary["n_down"] = int((deg["direction"] == "down").sum()) if len(deg) else 0
    summary["top_genes"] = [str(g) for g in deg.loc[significant].sort_values("padj").index[:10]]
    if len(deg):
        plot_volcano(
            deg,
            outputs["volcano"],
            fdr=settings["fdr"],
            min_abs_lfc=settings["min_abs_lfc"],
            title=f"{experiment}: high vs low signature ({len(cohort)} patients)",
        )
    else:
        from mmsurv.mri.stage import skip_figure

        skip_figure(experiment, summary["deg_note"], outputs["volcano"])

    # 2. enrichment of the DEGs among the tested genes
    enriched_table = pd.DataFrame(columns=ENRICHMENT_COLUMNS)
    if len(deg) and sets:
        enriched_table = enrichment(
            [str(g) for g in significant],
            [str(g) for g in deg.index[deg["p_value"].notna()]],  # the tested genes
            sets,
            min_size=settings["min_set_size"],
            max_size=settings["max_set_size"],
        )
    write_tsv(enriched_table, outputs["enrichment"])
    enriched = [
        str(t)
        for t in enriched_table.loc[enriched_table["fdr"] < settings["enrichment_fdr"], "term"]
    ]
    summary["enriched"] = enriched

    # 3. pathway scores correlated with the signature
    correlation = pd.DataFrame(columns=[*CORRELATION_COLUMNS, "enriched", "fdr_enriched"])
    if sets and len(cohort) >= 3:
        scores = pathway_scores(
            expression.loc[cohort.index],
            sets,
            min_size=settings["min_set_size"],
            max_size=settings["max_set_size"],
            seed=seed,
        )
        correlation = correlate_with_signature(scores, cohort["dls"])
        correlation["enriched"] = correlation["term"].isin(enriched)
        correlation["fdr_enriched"] = _fdr_within(correlation, correlation["enriched"])
    correlation["correlated"] = correlation["enriched"].astype(bool) & (
        correlation["fdr_enriched"].astype(float) < settings["correlation_fdr"]
    )
    write_tsv(correlation, outputs["correlation"])
    correlated = [str(t) for t in correlation.loc[correlation["correlated"], "term"]]
    summary["correlated"] = correlated

    # 4. mean expression of the correlated pathways' genes: training cut, held-out KM
    genes = sorted({g for t in correlated for g in sets[t]})
    summary["pathway_genes"] = len(genes)
    km_rows: list[dict[str, Any]] = []
    why_no_km = "no gene set is both enriched among the DEGs and correlated with the signature"
    if genes:
        mean = signature_gene_mean(expression, genes)
        scored = with_rna.assign(pathway_mean=mean.reindex(with_rna["patient_id"]).to_numpy())
        train = scored[scored["split"] == "train"]
        if int(train["event"].sum()) == 0:
            why_no_km = (
                f"no training patient with RNA-seq has an event ({len(train)} training "
                "patients with RNA): the pathway-gene cut cannot be fitted"
            )
            notes.append(f"No pathway-gene Kaplan-Meier: {why_no_km}.")
            genes = []
    if genes:
        try:
            cut = xtile_cutoff(
                train["pathway_mean"].to_numpy(float),
                train["time"].to_numpy(float),
                train["event"].to_numpy(int),
                quantiles=tuple(cutoff_quantiles),
            )
        except ValueError as err:  # too few distinct training values to search
            why_no_km = f"the training cut cannot be fitted ({err})"
            notes.append(f"No pathway-gene Kaplan-Meier: {why_no_km}.")
            genes = []
    if genes:
        summary["pathway_cutoff"] = cut.cutoff
        scored["group"] = risk_group(scored["pathway_mean"].to_numpy(float), cut.cutoff)
        shown = ["train", *[s for s in settings["splits"] if s != "train"]]
        for split in shown:
            part = scored[scored["split"] == split]
            if len(part):
                tests = group_tests(
                    part["group"].to_numpy(),
                    part["time"].to_numpy(float),
                    part["event"].to_numpy(int),
                )
                km_rows.append({"split": split, "cutoff": cut.cutoff, **tests})
        plot_risk_groups(
            scored,
            outputs["pathway_km_plot"],
            f"{experiment}: mean expression of {len(genes)} pathway genes (training cut "
            f"{cut.cutoff:.3g})",
            shown,
        )
    else:
        from mmsurv.mri.stage import skip_figure

        skip_figure(experiment, why_no_km, outputs["pathway_km_plot"])
    columns = ["split", "cutoff", "n", "events", "n_high", "n_low", "logrank_p", "grho_p"]
    write_tsv(
        pd.DataFrame(km_rows, columns=[*columns, "hr", "hr_lo", "hr_hi"]), outputs["pathway_km"]
    )
    _write_json(summary, outputs["summary"])
    log.info("%s radiogenomics: %s", experiment, json.dumps(summary, default=str))
    return summary
