"""The seed-4 radiogenomics job: held-out patients, DEGs, enriched and correlated pathways,
the training-cut Kaplan-Meier of the pathway genes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mmsurv.io import read_tsv
from mmsurv.omics.radiogenomics_stage import analyse_radiogenomics
from mmsurv.omics.rna import log_normalise

N, N_GENES, N_MODULE = 60, 120, 15
MODULE = [f"MOD{j}" for j in range(N_MODULE)]
SETTINGS = {
    "splits": ["val", "test"],
    "fdr": 0.25,
    "min_abs_lfc": 0.10,
    "enrichment_fdr": 0.05,
    "correlation_fdr": 0.01,
    "min_set_size": 5,
    "max_set_size": 500,
}
KEYS = ("deg", "enrichment", "correlation", "pathway_km", "summary", "volcano", "pathway_km_plot")


def _cohort(tmp_path, seed: int = 0):
    """A signature that tracks a planted module's expression (and survival)."""
    rng = np.random.default_rng(seed)
    pid = [f"P{i:03d}" for i in range(N)]
    dls = rng.normal(size=N)
    activity = dls + rng.normal(0, 0.3, N)
    base = np.exp(rng.normal(4.5, 1.0, N_GENES))
    base[:N_MODULE] = np.exp(rng.normal(5.0, 0.3, N_MODULE))
    mu = base[None, :] * np.exp(rng.normal(0, 0.15, N))[:, None]
    mu[:, :N_MODULE] *= np.exp(0.6 * activity)[:, None]
    r = 1.0 / (0.04 + 1.0 / base)
    counts = rng.negative_binomial(np.broadcast_to(r, mu.shape), r / (r + mu))
    genes = MODULE + [f"GENE{j}" for j in range(N_MODULE, N_GENES)]
    counts = pd.DataFrame(counts, index=pid, columns=genes)
    t = rng.exponential(900 * np.exp(-0.9 * activity))
    c = rng.uniform(300, 3000, N)
    split = np.array(["train"] * 24 + ["val"] * 12 + ["test"] * 24)
    cutoff = float(np.median(dls[:24]))
    groups = pd.DataFrame(
        {
            "patient_id": pid,
            "split": split,
            "time": np.minimum(t, c).round(1),
            "event": (t <= c).astype(int),
            "dls": dls,
            "group": np.where(dls >= cutoff, "high", "low"),
            "cutoff": cutoff,
        }
    )
    path = tmp_path / "groups.tsv"
    groups.to_csv(path, sep="\t", index=False)
    gmt = tmp_path / "sets.gmt"
    others = genes[N_MODULE:]
    lines = [["PLANTED", "planted module", *MODULE]]
    lines += [[f"RANDOM_{k}", "null", *rng.choice(others, 20, replace=False)] for k in range(4)]
    gmt.write_text("".join("\t".join(line) + "\n" for line in lines))
    expression = log_normalise(counts.T, "counts").T
    return path, counts, expression, gmt


def _run(tmp_path, counts_given=True, settings=SETTINGS, drop_rna=(), train_events=True):
    groups, counts, expression, gmt = _cohort(tmp_path)
    expression = expression.drop(index=list(drop_rna))
    counts = counts.drop(index=list(drop_rna))
    if not train_events:
        table = pd.read_csv(groups, sep="\t")
        table.loc[table["split"] == "train", "event"] = 0
        table.to_csv(groups, sep="\t", index=False)
    outputs = {
        k: tmp_path / f"{k}.{'png' if 'plot' in k or k == 'volcano' else 'tsv'}" for k in KEYS
    }
    outputs["summary"] = tmp_path / "summary.json"
    summary = analyse_radiogenomics(
        settings, "dti_dls", groups, expression, counts if counts_given else None, [gmt], outputs
    )
    return summary, outputs


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("rg"))


def test_only_the_configured_splits_are_compared(result):
    summary, _ = result
    assert summary["n_patients"] == 36  # val + test
    assert summary["n_high"] + summary["n_low"] == 36


def test_planted_module_is_up_enriched_and_correlated(result):
    summary, outputs = result
    deg = read_tsv(outputs["deg"]).set_index("gene")
    up = deg.index[deg["direction"] == "up"]
    assert len(set(up) & set(MODULE)) >= 10
    assert summary["enriched"][:1] == ["PLANTED"]
    assert summary["correlated"] == ["PLANTED"]
    corr = read_tsv(outputs["correlation"]).set_index("term")
    assert corr.loc["PLANTED", "r"] > 0.5 and bool(corr.loc["PLANTED", "enriched"])
    assert json.loads(outputs["summary"].read_text()) == json.loads(json.dumps(summary))


def test_pathway_genes_are_cut_on_training_patients(result):
    summary, outputs = result
    km = read_tsv(outputs["pathway_km"])
    assert list(km["split"]) == ["train", "val", "test"]
    assert (km["cutoff"] == summary["pathway_cutoff"]).all()
    assert summary["pathway_genes"] == N_MODULE
    for key in ("volcano", "pathway_km_plot"):
        assert outputs[key].stat().st_size > 0


def test_without_counts_no_degs_and_the_summary_says_why(tmp_path):
    summary, outputs = _run(tmp_path, counts_given=False)
    assert "raw counts" in summary["deg_note"]
    assert read_tsv(outputs["deg"]).empty
    assert summary["enriched"] == [] and summary["correlated"] == []
    assert outputs["pathway_km_plot"].is_file()


def test_correlation_fdr_is_taken_over_the_enriched_sets_only(result):
    summary, outputs = result
    corr = read_tsv(outputs["correlation"]).set_index("term")
    enriched = corr[corr["enriched"].astype(bool)]
    assert len(enriched) >= 1
    assert corr.loc[~corr["enriched"].astype(bool), "fdr_enriched"].isna().all()
    from scipy import stats

    expected = stats.false_discovery_control(enriched["p_value"].to_numpy(), method="bh")
    np.testing.assert_allclose(enriched["fdr_enriched"].to_numpy(), expected)
    assert corr["fdr"].notna().all()  # the all-sets FDR is kept for every scored set


def _assert_empty_but_complete(summary, outputs):
    for key in ("deg", "enrichment", "correlation", "pathway_km"):
        assert read_tsv(outputs[key]).empty, key
    for key in ("volcano", "pathway_km_plot"):
        assert outputs[key].stat().st_size > 0
    assert json.loads(outputs["summary"].read_text())["notes"] == summary["notes"]


def test_too_few_held_out_patients_with_rna_gives_empty_tables_and_a_note(tmp_path):
    held_out = [f"P{i:03d}" for i in range(24, N)]
    summary, outputs = _run(tmp_path, drop_rna=held_out[2:])  # 2 analysed patients left
    assert summary["n_patients"] == 2
    assert any("Only 2 patient(s)" in n for n in summary["notes"])
    _assert_empty_but_complete(summary, outputs)


def test_no_gene_set_of_allowed_size_gives_a_note(tmp_path):
    summary, outputs = _run(tmp_path, settings={**SETTINGS, "min_set_size": 100})
    assert any("No gene set" in n for n in summary["notes"])
    assert read_tsv(outputs["enrichment"]).empty and read_tsv(outputs["correlation"]).empty
    assert not read_tsv(outputs["deg"]).empty  # DEGs do not need gene sets


def test_no_training_event_skips_the_pathway_cut_with_a_note(tmp_path):
    summary, outputs = _run(tmp_path, train_events=False)
    assert summary["correlated"] == ["PLANTED"]
    assert any("no training patient with RNA-seq has an event" in n for n in summary["notes"])
    assert "pathway_cutoff" not in summary
    assert read_tsv(outputs["pathway_km"]).empty
    assert outputs["pathway_km_plot"].stat().st_size > 0
