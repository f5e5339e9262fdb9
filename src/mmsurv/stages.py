"""One typed function per workflow stage, called by the rule adapters and the CLI alike.

Each takes the validated configuration and explicit input/output paths, so a stage runs the
same way under Snakemake (``workflow/scripts/*.py``) and from the ``mmsurv`` command line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mmsurv.io import atomic_path, read_tsv, write_tsv

__all__ = [
    "run_cohort",
    "run_splits",
    "run_train",
    "run_collect",
    "run_evaluate",
    "run_report",
    "run_tile",
    "run_wsi_qc",
    "run_extract",
    "run_rna",
    "run_scna",
    "run_scna_umap",
    "run_attention",
    "run_gradcam",
    "run_mri_preprocess",
    "run_mri_segmenter",
    "run_mri_qc",
    "run_radiomics_patient",
    "run_radiomics",
]

log = logging.getLogger(__name__)


def run_cohort(config: Mapping[str, Any], out: str | Path) -> pd.DataFrame:
    """Validate every input; write ``results/cohort/cohort.tsv`` (patients x modalities)."""
    from mmsurv.cohort import build_cohort

    table = build_cohort(config)
    write_tsv(table, out)
    return table


def run_splits(config: Mapping[str, Any], endpoint: str, out: str | Path) -> pd.DataFrame:
    """Write ``results/splits/{endpoint}.tsv`` (patient_id, fold, split)."""
    from mmsurv.cohort import load_samples, make_splits

    splits = make_splits(load_samples(config), config, endpoint)
    counts = splits.groupby(["fold", "split"]).size().unstack(fill_value=0)
    log.info("%s splits (patients per fold and split):\n%s", endpoint, counts.to_string())
    write_tsv(splits, out)
    return splits


def run_train(
    config: Mapping[str, Any],
    experiment: str,
    fold: int,
    cohort: str | Path,
    splits: Mapping[str, str | Path],
    out_dir: str | Path,
    threads: int = 1,
    features: Sequence[str | Path] = (),
    rna: str | Path | None = None,
    mri: Sequence[str | Path] = (),
    radiomics: str | Path | None = None,
    scna: str | Path | None = None,
    dti: Sequence[str | Path] = (),
) -> None:
    """Train one (experiment, fold); see :func:`mmsurv.models.train.train_fold`.

    ``features`` are the slides' feature files (``{slide_id}.h5``), ``rna`` the cleaned RNA
    matrix of the omics stage, ``mri`` the patients' MRI preprocessing records
    (``preprocess.json``), ``radiomics`` the radiomics table, ``scna`` the SCNA matrix, ``dti``
    the patients' DTI slice records (``{patient}.json``), for experiments with those inputs.
    """
    from mmsurv.cohort import load_samples
    from mmsurv.models.train import train_fold
    from mmsurv.plan import slides_table

    train_fold(
        config,
        experiment,
        int(fold),
        samples=load_samples(config),
        cohort=read_tsv(cohort),
        splits={ep: read_tsv(p) for ep, p in splits.items()},
        out_dir=out_dir,
        threads=threads,
        features={Path(f).stem: f for f in features} if features else None,
        rna=rna,
        slides=slides_table(config) if features else None,
        mri=list(mri) or None,
        radiomics=radiomics,
        scna=scna,
        dti=list(dti) or None,
    )


def _rna_by_patient(config: Mapping[str, Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The cohort's RNA matrix (genes x samples, as read) restricted to the first sample of
    each patient of the samples sheet, and the sample -> patient mapping
    (``cohort.id_pattern``)."""
    from mmsurv.cohort import load_samples, map_samples, read_matrix

    cohort = config["cohort"]
    matrix = read_matrix(cohort["rna"]).apply(pd.to_numeric)
    mapping = map_samples(list(matrix.columns), cohort["id_pattern"])
    patients = set(load_samples(config)["patient_id"])
    keep = {s: p for s, p in mapping.items() if p in patients}
    return matrix[list(keep)], keep


def _patients_by_gene(matrix: pd.DataFrame, keep: Mapping[str, str]) -> pd.DataFrame:
    """A genes x samples matrix as patients x genes (samples renamed to their patients)."""
    table = matrix.T.rename(index=dict(keep))
    table.index.name = "patient_id"
    table.columns = [str(g) for g in table.columns]
    return table


def run_rna(config: Mapping[str, Any], out: str | Path) -> pd.DataFrame:
    """Write ``results/omics/rna.parquet``: patients x genes, per-sample log-normalised.

    Sample columns are mapped to patients with ``cohort.id_pattern`` (the first sample of a
    patient is kept); only patients of the samples sheet are kept. No statistic across
    patients is computed here: filtering, gene selection and z-scoring happen inside each
    model on its training patients.
    """
    from mmsurv.omics.rna import log_normalise

    matrix, keep = _rna_by_patient(config)
    logged = log_normalise(matrix, config["omics"]["rna_values"])
    table = _patients_by_gene(logged, keep)
    log.info(
        "RNA: %d patients x %d genes (%s -> log2)",
        table.shape[0],
        table.shape[1],
        config["omics"]["rna_values"],
    )
    with atomic_path(out) as tmp:
        table.astype("float32").to_parquet(tmp)
    return table


def run_scna(config: Mapping[str, Any], out: str | Path) -> pd.DataFrame:
    """Write ``results/omics/scna.parquet``: patients x genes copy number, every SCNA sample.

    Sample columns are mapped to patients with ``cohort.id_pattern`` (the first sample of a
    patient is kept); patients outside the samples sheet (SCNA-only) are kept as well, for the
    UMAP and for a PCA the config lets fit on them. Genes with a missing value are dropped; no
    statistic across patients is computed here (the PCA is fitted inside each model).
    """
    from mmsurv.cohort import load_samples, read_matrix
    from mmsurv.omics.scna import clean_scna

    cohort = config["cohort"]
    if not cohort.get("scna"):
        raise ValueError("the config names no SCNA matrix (cohort.scna)")
    table = clean_scna(read_matrix(cohort["scna"]), cohort["id_pattern"])
    patients = set(load_samples(config)["patient_id"].astype(str))
    in_sheet = int(table.index.isin(sorted(patients)).sum())
    log.info(
        "SCNA: %d patients x %d genes: %d in the samples sheet, %d SCNA-only",
        table.shape[0],
        table.shape[1],
        in_sheet,
        len(table) - in_sheet,
    )
    with atomic_path(out) as tmp:
        table.to_parquet(tmp)
    return table


def run_scna_umap(
    config: Mapping[str, Any], scna: str | Path, out_png: str | Path, out_tsv: str | Path
) -> None:
    """UMAP of every SCNA sample coloured by subtype: the figure and its coordinates.

    Groups come from the samples sheet's column ``labels.subtype`` when the config has that
    label (patients outside the sheet or without a value: ``"no label"``), else every sample
    is one group, ``"SCNA sample"``. ``out_tsv`` columns: ``patient_id``, ``umap1``,
    ``umap2``, ``group``, ``in_samples``. Seeded with ``seed``; a descriptive picture, never a
    model input.
    """
    from mmsurv.cohort import load_samples
    from mmsurv.omics.scna import group_labels, plot_umap, umap_embedding

    table = pd.read_parquet(scna)
    table.index = table.index.astype(str)
    samples = load_samples(config)
    sheet = samples.drop_duplicates("patient_id").set_index("patient_id")
    sheet.index = sheet.index.astype(str)
    column = (config.get("labels") or {}).get("subtype")
    if column is not None:
        groups = sheet[column]
        what = f"coloured by {column}"
    else:
        groups = pd.Series("SCNA sample", index=table.index)
        what = "no subtype label configured"
    coords = umap_embedding(table, seed=int(config["seed"]))
    labels = group_labels(coords.index, groups)
    in_samples = coords.index.isin(sheet.index)
    rows = coords.reset_index().assign(group=labels.to_numpy(), in_samples=in_samples)
    write_tsv(rows, out_tsv)
    title = (
        f"SCNA UMAP of {len(coords)} samples ({int(in_samples.sum())} in the samples sheet, "
        f"{int((~in_samples).sum())} SCNA-only), {what}"
    )
    plot_umap(coords, groups, out_png, title)
    log.info("SCNA UMAP groups: %s", labels.value_counts().to_dict())


def run_collect(
    fold_dirs: Sequence[str | Path], out_predictions: str | Path, out_survival: str | Path
) -> None:
    """Concatenate the folds' predictions and survival curves of one experiment."""
    preds, curves = [], []
    for fold_dir in fold_dirs:
        fold_dir = Path(fold_dir)
        p = read_tsv(fold_dir / "predictions.tsv")
        preds.append(p)
        c = pd.read_parquet(fold_dir / "survival.parquet")
        curves.append(c.assign(fold=int(p["fold"].iloc[0])))
    write_tsv(pd.concat(preds, ignore_index=True).fillna({"slide_id": ""}), out_predictions)
    with atomic_path(out_survival) as tmp:
        pd.concat(curves, ignore_index=True).to_parquet(tmp, index=False)


def run_evaluate(
    config: Mapping[str, Any],
    experiment: str,
    predictions: str | Path,
    survival: str | Path,
    out_metrics: str | Path,
    out_km: str | Path,
    out_calibration: str | Path | None = None,
    out_roc: str | Path | None = None,
    out_subgroups: str | Path | None = None,
) -> pd.DataFrame:
    """Write ``results/metrics/{experiment}.tsv`` and the experiment's Kaplan-Meier figure,
    its calibration and time-dependent ROC figures, and the C-index within each subgroup of
    ``evaluation.subgroup_label`` (``results/metrics/{experiment}.subgroups.tsv``; no rows
    when the label is not configured), when their paths are given."""
    from mmsurv.evaluation import (
        assign_risk_groups,
        evaluate_experiment,
        plot_km,
        write_diagnostics,
    )

    preds = read_tsv(predictions)
    surv = pd.read_parquet(survival)
    truth_path = config["cohort"].get("truth")
    truth = read_tsv(truth_path) if truth_path else None
    metrics = evaluate_experiment(experiment, preds, surv, config, truth)
    write_tsv(metrics, out_metrics)
    patient_rows = preds[preds["slide_id"].fillna("").astype(str) == ""]
    grouped = assign_risk_groups(patient_rows, config["evaluation"]["risk_group_quantile"])
    plot_km(grouped, experiment, out_km)
    if out_calibration is not None and out_roc is not None:
        write_diagnostics(config["evaluation"], experiment, preds, surv, out_calibration, out_roc)
    if out_subgroups is not None:
        write_tsv(_subgroup_rows(config, experiment, preds, truth), out_subgroups)
    return metrics


def _subgroup_rows(
    config: Mapping[str, Any], experiment: str, preds: pd.DataFrame, truth: pd.DataFrame | None
) -> pd.DataFrame:
    """Subgroup C-index rows of one experiment (empty when no subgroup label applies)."""
    from mmsurv.cohort import load_samples
    from mmsurv.evaluation import SUBGROUP_COLUMNS, subgroup_metrics

    key = config["evaluation"]["subgroup_label"]
    column = config["labels"].get(key) if key else None
    if column is None:
        if key:
            log.info("evaluation.subgroup_label %r is not a key of labels: no subgroups", key)
        return pd.DataFrame(columns=SUBGROUP_COLUMNS)
    samples = load_samples(config)
    groups = samples.set_index("patient_id")[column]
    oracle = truth.set_index("patient_id")["risk"] if truth is not None else None
    seed = int(config["seed"])
    return subgroup_metrics(experiment, preds, groups, config["evaluation"], seed, oracle)


def run_report(
    config: Mapping[str, Any],
    cohort: str | Path,
    metrics: Sequence[str | Path],
    km: Mapping[str, str | Path],
    splits: Mapping[str, str | Path],
    excluded: Mapping[str, str],
    out_metrics: str | Path,
    out_html: str | Path,
    out_forest: str | Path,
    curves: Mapping[str, str | Path] | None = None,
    attention: Mapping[str, str | Path] | None = None,
    features: Mapping[str, str | Path] | None = None,
    wsi_qc: str | Path | None = None,
    calibration: Mapping[str, str | Path] | None = None,
    roc: Mapping[str, str | Path] | None = None,
    gradcam: Mapping[str, str | Path] | None = None,
    mri_qc: str | Path | None = None,
    subgroups: Sequence[str | Path] = (),
    scna_umap: str | Path | None = None,
    attributions: Mapping[str, str | Path] | None = None,
    signatures: Mapping[str, str | Path] | None = None,
    dti_cam: Mapping[str, str | Path] | None = None,
    dti_qc: str | Path | None = None,
    record: str | Path | None = None,
) -> None:
    """Write ``results/report/metrics.tsv``, the C-index figure and ``index.html``.

    ``gradcam`` maps MRI networks to their Grad-CAM figures; ``mri_qc`` is the imaged
    patients' preprocessing QC table. ``subgroups`` are the experiments' subgroup metric
    tables, ``scna_umap`` the SCNA UMAP figure, ``attributions`` maps subtype classifiers to
    their integrated-gradients figures (seed 2). ``signatures`` maps signature experiments to
    their ``results/signature/{experiment}`` folders, ``dti_cam`` DTI networks to their Grad-CAM
    figures, ``dti_qc`` is the DTI QC table (seed 4). ``record`` is the run's reproducibility
    record (``results/run/record.json``); without it the report has no Reproducibility section.

    ``curves``, ``attention``, ``calibration`` and ``roc`` map experiments to their
    training-curve, attention, calibration and ROC figures, ``features`` encoders to their
    provenance tables, ``wsi_qc`` is the slides' QC table.
    """
    from mmsurv.cohort import load_samples
    from mmsurv.report import (
        oracle_by_modality,
        plot_c_index_forest,
        render_report,
        summarise_split,
    )

    table = pd.concat([read_tsv(p) for p in metrics], ignore_index=True)
    write_tsv(table, out_metrics)
    plot_c_index_forest(summarise_split(table, "test"), out_forest)
    truth_path = config["cohort"].get("truth")
    oracle = None
    label_auc: dict[str, str] = {}
    if truth_path:
        from mmsurv.report.subtypes import label_oracle

        truth, samples = read_tsv(truth_path), load_samples(config)
        split_tables = {ep: read_tsv(p) for ep, p in splits.items()}
        oracle = oracle_by_modality(truth, samples, split_tables, config["endpoints"])
        wanted = sorted({s["label"] for s in config["experiments"].values() if s.get("label")})
        if wanted:
            first = next(iter(split_tables))
            label_auc = label_oracle(truth, samples, split_tables, config["labels"], wanted, first)
    render_report(
        config=config,
        cohort=read_tsv(cohort),
        metrics=table,
        excluded=excluded,
        forest_png=out_forest,
        km_pngs=km,
        oracle=oracle,
        out_html=out_html,
        curves=dict(curves or {}),
        attention=dict(attention or {}),
        features={k: read_tsv(v) for k, v in (features or {}).items()},
        wsi_qc=read_tsv(wsi_qc) if wsi_qc else None,
        gradcam=dict(gradcam or {}),
        mri_qc=read_tsv(mri_qc) if mri_qc else None,
        subgroups=pd.concat([read_tsv(p) for p in subgroups], ignore_index=True)
        if subgroups
        else None,
        label_oracle=label_auc,
        scna_umap=scna_umap,
        attributions=dict(attributions or {}),
        calibration_pngs=dict(calibration or {}),
        roc_pngs=dict(roc or {}),
        signatures=dict(signatures or {}),
        dti_cam=dict(dti_cam or {}),
        dti_qc=read_tsv(dti_qc) if dti_qc else None,
        record=json.loads(Path(record).read_text()) if record else None,
    )


def run_tile(
    config: Mapping[str, Any],
    slide_id: str,
    slide_path: str | Path,
    mpp: float | None,
    out_tiles: str | Path,
    out_thumbnail: str | Path,
) -> bool:
    """Tile one slide: ``results/wsi/tiles/{slide}.h5`` and its QC thumbnail.

    Returns False when the slide was skipped (``wsi.on_error: skip``); see
    :func:`mmsurv.wsi.stage.tile_one_slide`.
    """
    from mmsurv.wsi.stage import tile_one_slide

    return tile_one_slide(
        config["wsi"], int(config["seed"]), slide_id, slide_path, mpp, out_tiles, out_thumbnail
    )


def run_wsi_qc(
    config: Mapping[str, Any], tile_files: Sequence[str | Path], out: str | Path
) -> None:
    """Write ``results/wsi/qc.tsv`` (one row per slide, see :func:`mmsurv.wsi.stage.qc_table`)."""
    from mmsurv.plan import slides_table
    from mmsurv.wsi.stage import qc_table

    write_tsv(qc_table(tile_files, slides_table(config)), out)


def run_extract(
    config: Mapping[str, Any],
    encoder: str,
    slide_id: str,
    slide_path: str | Path,
    mpp: float | None,
    tiles: str | Path,
    out: str | Path,
    threads: int | None = None,
) -> None:
    """Patch features of one slide: ``results/wsi/features/{encoder}/{slide}.h5``.

    A slide skipped at tiling gets a feature file with no rows marked ``skipped`` (its slide
    is not opened again). ``threads`` caps torch's CPU threads (the job's share of the
    cores); the tile-reading workers are ``wsi.num_workers`` processes besides.
    """
    from mmsurv.wsi.extract import extract_features
    from mmsurv.wsi.h5 import read_tiles_h5
    from mmsurv.wsi.stage import is_skipped, write_skipped_features

    _, attrs = read_tiles_h5(tiles)
    if is_skipped(attrs):
        log.warning("%s: skipped at tiling (%s); no features", slide_id, attrs.get("error"))
        write_skipped_features(out, slide_id, str(attrs.get("error", "")))
        return
    wsi = config["wsi"]
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    enc = load_encoder(config, encoder)
    extract_features(
        slide_path,
        tiles,
        out,
        enc,
        slide_id=slide_id,
        batch_size=int(wsi["batch_size"]),
        num_workers=int(wsi["num_workers"]),
        device=config["device"],
        mpp_override=mpp,
        default_mpp=wsi["default_mpp"],
    )


def load_encoder(config: Mapping[str, Any], encoder: str):
    """The encoder ``encoder`` of ``wsi.encoders`` (registry name or plug-in factory)."""
    from mmsurv.wsi.encoders import get_encoder

    spec = config["wsi"]["encoders"][encoder]
    return get_encoder(
        encoder,
        weights=spec.get("weights"),
        seed=int(config["seed"]),
        input_size_px=int(spec.get("input_size_px", 224)),
        factory=spec.get("factory"),
    )


def run_attention(
    config: Mapping[str, Any],
    experiment: str,
    model: str | Path,
    predictions: str | Path,
    features: Sequence[str | Path],
    rna: str | Path | None,
    out: str | Path,
    n_slides: int = 4,
) -> None:
    """Attention heatmaps of an attention model over test slides of one fold.

    The fitted model of the first endpoint is applied to the ``n_slides`` test slides with the
    highest and lowest predicted risk (half each), all patches per slide.
    """
    import joblib

    from mmsurv.cohort import load_samples
    from mmsurv.models.train import experiment_inputs
    from mmsurv.plan import slides_table
    from mmsurv.report.networks import plot_attention
    from mmsurv.wsi.features import load_bag

    models = joblib.load(model)
    endpoint = next(iter(models))
    fitted = models[endpoint]
    preds = read_tsv(predictions).fillna({"slide_id": ""})
    test = preds[(preds["endpoint"] == endpoint) & (preds["split"] == "test")]
    test = test[test["slide_id"] != ""].sort_values("risk", ascending=False)
    half = max(1, n_slides // 2)
    chosen = pd.concat([test.head(half), test.tail(half)]).drop_duplicates("slide_id")
    slides = slides_table(config)
    X, _ = experiment_inputs(
        config,
        experiment,
        load_samples(config),
        {Path(f).stem: f for f in features},
        rna,
        slides,
    )
    X = X.loc[[s for s in chosen["slide_id"] if s in X.index]]
    attention = fitted.predict_attention(X) if len(X) else {}
    sheet = slides.set_index("slide_id")
    panels = []
    for row in chosen.itertuples(index=False):
        if row.slide_id not in attention:
            continue
        _, coords, attrs = load_bag(X.at[row.slide_id, "wsi"])
        default_um = config["wsi"]["tile_size_px"] * config["wsi"]["target_mpp"]
        panels.append(
            {
                "slide_id": row.slide_id,
                "slide_path": sheet.at[row.slide_id, "path"],
                "mpp": sheet.at[row.slide_id, "mpp"],
                "default_mpp": config["wsi"]["default_mpp"],
                "coords": coords,
                "attention": attention[row.slide_id],
                "tile_size_um": float(attrs.get("tile_size_um") or default_um),
                "risk": float(row.risk),
                "split": "test",
            }
        )
    title = f"{experiment} ({endpoint}): attention over test slides, highest and lowest risk"
    plot_attention(panels, title, out)


def run_mri_preprocess(
    config: Mapping[str, Any],
    patient_id: str,
    files: Mapping[str, str],
    out_dir: str | Path,
    out_montage: str | Path,
    segmenter: str | Path | None = None,
) -> bool:
    """Preprocess one patient's MRI into ``results/mri/preprocessed/{patient}/``.

    ``files`` maps channel (sequences and ``mask``) -> path from the images sheet; a patient
    without a mask gets a weak one (``segmenter``: the weak-label network). Returns False when
    the patient was skipped (``mri.on_error: skip``); see
    :func:`mmsurv.mri.stage.preprocess_one_patient`.
    """
    from mmsurv.mri.stage import preprocess_one_patient

    return preprocess_one_patient(config["mri"], patient_id, files, out_dir, out_montage, segmenter)


def run_mri_segmenter(
    config: Mapping[str, Any],
    records: Sequence[str | Path],
    out_model: str | Path,
    out_log: str | Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Train the weak-label segmentation network on the whole-brain inputs of the patients
    preprocessed with a ground-truth mask; write the network and its training log (JSON)."""
    from mmsurv.mri.stage import train_weak_segmenter

    return train_weak_segmenter(
        config["mri"], records, out_model, out_log, config["seed"], threads, config["device"]
    )


def run_mri_qc(records: Sequence[str | Path], out: str | Path) -> None:
    """Write ``results/mri/qc.tsv`` from the patients' ``preprocess.json`` records."""
    from mmsurv.mri.stage import qc_table

    write_tsv(qc_table(records), out)


def run_radiomics_patient(
    config: Mapping[str, Any], patient_id: str, record: str | Path, out: str | Path
) -> None:
    """PyRadiomics features of one preprocessed patient: ``results/mri/radiomics/{patient}.tsv``."""
    from mmsurv.mri.stage import radiomics_one_patient

    radiomics_one_patient(config["mri"], patient_id, record, out)


def run_radiomics(rows: Sequence[str | Path], out: str | Path) -> None:
    """Merge the patients' radiomics rows into ``results/mri/radiomics.parquet``."""
    from mmsurv.mri.stage import merge_radiomics

    merge_radiomics(rows, out)


def run_gradcam(
    config: Mapping[str, Any],
    experiment: str,
    model: str | Path,
    predictions: str | Path,
    records: Sequence[str | Path],
    out: str | Path,
    n_patients: int = 4,
    scna: str | Path | None = None,
) -> None:
    """Class-activation maps of a 3D MRI network over test patients of one fold.

    The fitted model of the first endpoint is applied to the ``n_patients`` test patients with
    the highest and lowest prediction (half each): for a survival network the risk and its
    Grad-CAM map (the image subnetwork's last convolutional layer, see ``grad_cam``), for a
    subtype classifier (``integrated_gradients``) the score and its integrated gradients
    (absolute values summed over channels, scaled to 0..1). ``scna`` is the SCNA matrix of
    an experiment that reads it.
    """
    import joblib
    import numpy as np

    from mmsurv.cohort import load_samples
    from mmsurv.models.mri_model import unit_range
    from mmsurv.models.train import experiment_inputs
    from mmsurv.report.gradcam import plot_gradcam

    models = joblib.load(model)
    endpoint = next(iter(models))
    fitted = models[endpoint]
    classifier = hasattr(fitted, "integrated_gradients")
    key = "score" if classifier else "risk"
    chosen = _extreme_test_patients(read_tsv(predictions), endpoint, key, n_patients)
    X, _ = experiment_inputs(config, experiment, load_samples(config), mri=records, scna=scna)
    X = X.loc[[p for p in chosen["patient_id"] if p in X.index]]
    if classifier:
        ig = np.abs(fitted.integrated_gradients(X)).sum(axis=1) if len(X) else []
        maps = dict(zip(X.index, unit_range(np.asarray(ig)), strict=True))
    else:
        maps = fitted.grad_cam(X) if len(X) else {}
    panels = []
    for _, row in chosen.iterrows():
        if row["patient_id"] not in maps:
            continue
        with np.load(X.at[row["patient_id"], "mri"]) as crop:
            channels = {c: crop[c] for c in fitted.channels}
            weak = "mask" not in crop.files
            mask = crop["weak_mask"] if weak else crop["mask"]
        cam = maps[row["patient_id"]]
        if cam.shape != mask.shape:  # a network trained at another grid (input_size)
            cam = _resize_map(cam, mask.shape)
        caption = (
            f"score {row['score']:.2f}, label {_label_text(row['label'])}" if classifier else None
        )
        panels.append(
            {
                "patient_id": row["patient_id"],
                "risk": float(row["risk"]),
                "time": float(row["time"]),
                "event": int(row["event"]),
                "channels": channels,
                "mask": mask,
                "cam": cam,
                "caption": caption,
                "weak": weak,
            }
        )
    name = "integrated gradients" if classifier else "Grad-CAM"
    plot_gradcam(panels, f"{experiment} ({endpoint}), test patients: {name}", out, name)


def run_signature(
    config: Mapping[str, Any],
    experiment: str,
    predictions: str | Path,
    variables: Mapping[str, str],
    outputs: Mapping[str, str | Path],
) -> dict[str, Any]:
    """The seed-4 signature analysis of one experiment into ``results/signature/{experiment}/``
    (see :func:`mmsurv.evaluation.signature_stage.analyse_signature`)."""
    from mmsurv.cohort import load_samples
    from mmsurv.evaluation.signature_stage import analyse_signature

    return analyse_signature(
        config,
        experiment,
        predictions,
        load_samples(config),
        variables,
        outputs,
        truth=config["cohort"].get("truth"),
    )


def run_radiogenomics(
    config: Mapping[str, Any],
    experiment: str,
    groups: str | Path,
    rna: str | Path,
    outputs: Mapping[str, str | Path],
) -> dict[str, Any]:
    """The seed-4 radiogenomics of one signature into
    ``results/signature/{experiment}/radiogenomics/`` (see
    :func:`mmsurv.omics.radiogenomics_stage.analyse_radiogenomics`). ``rna`` is the omics
    stage's log2 CPM matrix; the raw counts are read from ``cohort.rna`` when
    ``omics.rna_values`` is ``counts``."""
    from mmsurv.omics.radiogenomics_stage import analyse_radiogenomics

    counts = None
    if config["omics"]["rna_values"] == "counts":
        counts = _patients_by_gene(*_rna_by_patient(config))
    return analyse_radiogenomics(
        config["radiogenomics"],
        experiment,
        groups,
        pd.read_parquet(rna),
        counts,
        config["cohort"]["gene_sets"],
        outputs,
        seed=int(config["seed"]),
        cutoff_quantiles=tuple(config["signature"]["cutoff_quantiles"]),
    )


def run_dti_slices(
    config: Mapping[str, Any],
    patient_id: str,
    files: Mapping[str, str],
    outputs: Mapping[str, str | Path],
    mri_mask: str | None = None,
    mri_record: str | None = None,
) -> bool:
    """One patient's 16-slice DTI input, record and montage (see
    :func:`mmsurv.dti.stage.prepare_one_patient`); False when skipped (``dti.on_error``)."""
    from mmsurv.dti.stage import prepare_one_patient

    return prepare_one_patient(
        config["dti"],
        config["mri"],
        patient_id,
        files,
        out_slices=outputs["slices"],
        out_record=outputs["record"],
        out_montage=outputs["montage"],
        mri_mask=mri_mask,
        mri_record=mri_record,
    )


def run_dti_qc(records: Sequence[str | Path], out: str | Path) -> None:
    """Write ``results/dti/qc.tsv`` from the patients' DTI records."""
    from mmsurv.dti.stage import qc_table

    write_tsv(qc_table(records), out)


def run_dti_cam(
    config: Mapping[str, Any],
    experiment: str,
    model: str | Path,
    predictions: str | Path,
    records: Sequence[str | Path],
    out: str | Path,
    n_patients: int = 4,
) -> None:
    """Grad-CAM of a DTI network (first fold, first endpoint) for the ``n_patients`` test
    patients with the highest and lowest signature (half each), over their input slices."""
    import joblib
    import numpy as np

    from mmsurv.models.dti_model import DTI_MAPS
    from mmsurv.models.train import usable_slices
    from mmsurv.report.dti_cam import plot_dti_cam

    models = joblib.load(model)
    endpoint = next(iter(models))
    fitted = models[endpoint]
    chosen = _extreme_test_patients(read_tsv(predictions), endpoint, "risk", n_patients)
    stacks = usable_slices(records)
    chosen = chosen[chosen["patient_id"].isin(stacks)]
    X = pd.DataFrame({"dti": [stacks[p] for p in chosen["patient_id"]]}, index=chosen["patient_id"])
    maps = fitted.grad_cam(X) if len(X) else {}
    panels = [
        {
            "patient_id": row["patient_id"],
            "risk": float(row["risk"]),
            "time": float(row["time"]),
            "event": int(row["event"]),
            "slices": np.load(stacks[row["patient_id"]]),
            "cam": maps[row["patient_id"]],
        }
        for _, row in chosen.iterrows()
    ]
    plot_dti_cam(panels, DTI_MAPS, f"{experiment} ({endpoint}), test patients: Grad-CAM", out)


def _extreme_test_patients(
    predictions: pd.DataFrame, endpoint: str, key: str, n_patients: int
) -> pd.DataFrame:
    """The test rows of ``endpoint`` with the highest and lowest ``key`` (half each)."""
    test = predictions[(predictions["endpoint"] == endpoint) & (predictions["split"] == "test")]
    test = test.sort_values(key, ascending=False)
    half = max(1, n_patients // 2)
    return pd.concat([test.head(half), test.tail(half)]).drop_duplicates("patient_id")


def _resize_map(cam: Any, shape: tuple[int, ...]) -> Any:
    """A (D, H, W) map resized (trilinear) to ``shape``."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(cam.astype("float32"))[None, None]
    return F.interpolate(x, size=tuple(shape), mode="trilinear", align_corners=False)[0, 0].numpy()


def _label_text(value: Any) -> str:
    """A label cell as text: 0 / 1, or 'unknown'."""
    return "unknown" if pd.isna(value) else str(int(float(value)))
