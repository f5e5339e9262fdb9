"""The MRI stage of the workflow: one patient's preprocessing job, its QC row, its radiomics.

Per patient, ``results/mri/preprocessed/{patient}/`` receives the preprocessed channels
(``{channel}.nii.gz``), ``mask.nii.gz``, ``head_mask.nii.gz``, the networks' input
``crop.npz`` and ``preprocess.json`` (the QC record, ``status`` ``ok``); the montage goes to
``results/mri/qc/{patient}.png``.

A patient without a tumour mask in the images sheet gets a weak one (the seed-2 paper's weak
labels, ``mri.weak_labels``): the file ``{patient}.nii.gz`` of a user-supplied folder, else the
prediction of the pipeline's own segmentation network (:mod:`mmsurv.mri.weak`, trained on the
patients that have masks) on the whole-brain input; ``preprocess.json`` says which
(``mask_source``) and the montage draws a weak mask dashed.

A patient whose volumes cannot be used (missing or unreadable file, missing required sequence,
empty mask, mask of another geometry) fails its own job with a :class:`VolumeError` naming the
patient and the file. With ``mri.on_error: skip`` the job succeeds instead: ``preprocess.json``
has ``status: skipped`` and the reason, the montage shows the reason, ``crop.npz`` holds no
array and the declared volumes are 1-voxel zero images, so that the DAG completes; every later
step (radiomics, training) reads ``preprocess.json`` and leaves the patient out, and
``results/mri/qc.tsv`` lists them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mmsurv.io import atomic_path
from mmsurv.mri.io import VolumeError, write_volume

__all__ = [
    "settings_from_config",
    "weak_source",
    "train_weak_segmenter",
    "preprocess_one_patient",
    "read_record",
    "usable_crops",
    "qc_table",
    "radiomics_one_patient",
    "merge_radiomics",
    "QC_COLUMNS",
]

log = logging.getLogger(__name__)

#: Columns of ``results/mri/qc.tsv`` before the per-sequence CV columns.
QC_COLUMNS = [
    "patient_id",
    "status",
    "reason",
    "mask_source",
    "reference",
    "size",
    "spacing_mm",
    "box_size",
]


def settings_from_config(mri: Mapping[str, Any]):
    """:class:`~mmsurv.mri.preprocess.PreprocessSettings` of the config's ``mri`` section."""
    from mmsurv.mri.preprocess import PreprocessSettings

    return PreprocessSettings(
        orientation=mri["orientation"],
        reference=tuple(mri["reference"]),
        spacing_mm=None if mri["spacing_mm"] is None else tuple(mri["spacing_mm"]),
        n4_shrink=int(mri["n4"]["shrink_factor"]),
        n4_iterations=tuple(mri["n4"]["iterations"]),
        n4=bool(mri["n4"]["enabled"]),
        margin_mm=float(mri["margin_mm"]),
        crop_size=tuple(mri["crop_size"]),
        brain_size=tuple(mri["brain_size"]),
        subtraction=bool(mri["subtraction"]),
        tumor_labels=tuple(mri["tumor_labels"]),
        mask_tolerance_mm=float(mri["mask_tolerance_mm"]),
        sequences=tuple(mri["sequences"]),
    )


def _write_json(record: Mapping[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))


def skip_figure(patient_id: str, reason: str, path: str | Path) -> None:
    """A QC figure saying that the patient was skipped and why (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.01, 0.5, f"{patient_id}: skipped\n{reason}", va="center", wrap=True, fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _skip_outputs(
    mri: Mapping[str, Any], patient_id: str, reason: str, out_dir: Path, montage: Path
) -> None:
    """The outputs of a skipped patient: the record says why; nothing else holds data."""
    channels = [*mri["sequences"], *(["t1ce_t1"] if mri["subtraction"] else [])]
    empty = sitk.Image([1, 1, 1], sitk.sitkUInt8)
    for name in [*channels, "mask", "head_mask"]:
        write_volume(empty, out_dir / f"{name}.nii.gz")
    for name in ("crop.npz", "brain.npz"):
        with atomic_path(out_dir / name) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh)
    skip_figure(patient_id, reason, montage)
    _write_json(
        {"patient_id": patient_id, "status": "skipped", "reason": reason},
        out_dir / "preprocess.json",
    )


def weak_source(
    mri: Mapping[str, Any], patient_id: str, segmenter: str | Path | None = None
) -> Any:
    """What gives the weak tumour mask of a patient without a ground-truth mask.

    ``mri.weak_labels.folder`` set: that folder's ``{patient}.nii.gz`` (a missing file is a
    :class:`VolumeError`). Otherwise the segmentation network saved at ``segmenter`` (a
    predictor of the whole-brain arrays). ``mri.weak_labels.enabled`` false: a
    :class:`VolumeError` (no mask).
    """
    weak = mri["weak_labels"]
    if not weak["enabled"]:
        raise VolumeError(
            "no tumor mask (channel 'mask') in the images sheet, and mri.weak_labels is off",
            None,
            patient_id,
        )
    if weak["folder"]:
        path = Path(weak["folder"]) / f"{patient_id}.nii.gz"
        if not path.is_file():
            raise VolumeError("weak mask file not found (mri.weak_labels.folder)", path, patient_id)
        return path
    if segmenter is None:
        raise ValueError(f"patient {patient_id} needs the weak-label segmentation network")
    from mmsurv.mri.weak import predict_weak_arrays

    def predict(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return predict_weak_arrays(segmenter, arrays, source=segmenter)

    return predict


def train_weak_segmenter(
    mri: Mapping[str, Any],
    records: Sequence[str | Path],
    out_model: str | Path,
    out_log: str | Path,
    seed: int = 0,
    threads: int = 1,
    device: str = "auto",
) -> dict[str, Any]:
    """Train the weak-label network on the ``brain.npz`` of the patients preprocessed with a
    ground-truth mask (skipped ones left out); write it and its log (JSON, atomically).

    See :func:`mmsurv.mri.weak.train_segmenter`; ``mri.weak_labels`` gives the channels and
    epochs, ``mri.tumor_labels`` what counts as tumour.
    """
    from mmsurv.mri.weak import train_segmenter

    brains = {}
    for path in records:
        record = read_record(path)
        if record.get("status") == "ok" and record.get("mask_source") == "ground_truth":
            brains[str(record["patient_id"])] = Path(path).parent / "brain.npz"
    log.info("weak-label segmenter: %d patients with a ground-truth mask", len(brains))
    weak = mri["weak_labels"]
    meta = train_segmenter(
        brains,
        weak["channels"] or mri["sequences"],
        out_model,
        tumor_labels=mri["tumor_labels"],
        epochs=int(weak["epochs"]),
        seed=int(seed),
        threads=threads,
        device=device,
    )
    _write_json(meta, Path(out_log))
    return meta


def preprocess_one_patient(
    mri: Mapping[str, Any],
    patient_id: str,
    files: Mapping[str, str | os.PathLike],
    out_dir: str | Path,
    montage: str | Path,
    segmenter: str | Path | None = None,
) -> bool:
    """Preprocess one patient (see :func:`mmsurv.mri.preprocess.preprocess_patient`).

    Parameters
    ----------
    mri
        The config's ``mri`` section.
    files
        Channel -> file or DICOM folder from the images sheet (sequences and ``mask``).
    out_dir
        ``results/mri/preprocessed/{patient}``.
    montage
        ``results/mri/qc/{patient}.png``.
    segmenter
        The weak-label segmentation network (``results/mri/weak/segmenter.pt``), for a patient
        without a mask when ``mri.weak_labels`` uses the network.

    Returns
    -------
    bool
        False when the patient was skipped (``mri.on_error: skip``).

    Raises
    ------
    VolumeError
        With ``on_error: fail``: the patient's volumes cannot be used (patient, file, reason).
    """
    from mmsurv.mri.preprocess import preprocess_patient
    from mmsurv.mri.qc import montage as draw_montage

    out_dir, montage = Path(out_dir), Path(montage)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings_from_config(mri)
    sequences = {c: p for c, p in files.items() if c != "mask"}
    try:
        mask = files.get("mask")
        weak = None if mask is not None else weak_source(mri, patient_id, segmenter)
        record, data = preprocess_patient(patient_id, sequences, mask, settings, out_dir, weak)
    except VolumeError as err:
        if mri["on_error"] != "skip":
            raise
        log.warning("patient %s skipped (mri.on_error: skip): %s", patient_id, err)
        _skip_outputs(mri, patient_id, str(err), out_dir, montage)
        return False
    draw_montage(data, montage)
    _write_json({"status": "ok", **record}, out_dir / "preprocess.json")
    log.info("patient %s preprocessed: %s", patient_id, record.get("seconds"))
    return True


def read_record(path: str | Path) -> dict[str, Any]:
    """A patient's ``preprocess.json``."""
    return json.loads(Path(path).read_text())


def usable_crops(records: Sequence[str | Path], region: str = "crop") -> dict[str, str]:
    """patient_id -> network input of every record whose preprocessing succeeded.

    ``region`` ``crop``: the tumour crop ``crop.npz``; ``brain``: the whole-brain ``brain.npz``.
    Skipped patients are left out with a log line.
    """
    if region not in ("crop", "brain"):
        raise ValueError(f"region must be 'crop' or 'brain', got {region!r}")
    crops = {}
    for path in records:
        record = read_record(path)
        if record.get("status") != "ok":
            log.warning("patient %s left out: %s", record.get("patient_id"), record.get("reason"))
            continue
        crops[str(record["patient_id"])] = str(Path(path).parent / f"{region}.npz")
    return crops


def qc_table(records: Sequence[str | Path]) -> pd.DataFrame:
    """One row per imaged patient: ``QC_COLUMNS`` then ``cv_before_{seq}``, ``cv_after_{seq}``."""
    rows = []
    for path in records:
        rec = read_record(path)
        row: dict[str, Any] = {
            "patient_id": rec.get("patient_id"),
            "status": rec.get("status"),
            "reason": rec.get("reason", ""),
            "mask_source": rec.get("mask_source", ""),
            "reference": rec.get("reference", ""),
            "size": "x".join(str(v) for v in rec.get("size", [])),
            "spacing_mm": "x".join(f"{v:.3g}" for v in rec.get("spacing_mm", [])),
            "box_size": "x".join(str(v) for v in (rec.get("box") or {}).get("size", [])),
        }
        for channel, stats in (rec.get("stats") or {}).items():
            row[f"cv_before_{channel}"] = stats.get("cv_before")
            row[f"cv_after_{channel}"] = stats.get("cv_after")
        rows.append(row)
    table = pd.DataFrame(rows)
    for column in QC_COLUMNS:
        if column not in table:
            table[column] = pd.Series(dtype=object)
    extra = [c for c in table.columns if c not in QC_COLUMNS]
    skipped = int((table["status"] == "skipped").sum()) if len(table) else 0
    log.info("MRI QC: %d patients, %d skipped", len(table), skipped)
    return table[QC_COLUMNS + extra]


def radiomics_one_patient(
    mri: Mapping[str, Any], patient_id: str, record: str | Path, out: str | Path
) -> None:
    """PyRadiomics features of one preprocessed patient -> ``results/mri/radiomics/{patient}.tsv``.

    Reads the record's folder (``{sequence}.nii.gz`` and ``mask.nii.gz``). A skipped patient
    gets a file with the header only (no feature rows), which the merge leaves out.
    """
    from mmsurv.mri.radiomics import extract_patient, write_patient_features

    rec = read_record(record)
    if rec.get("status") != "ok":
        log.warning("patient %s has no radiomics: %s", patient_id, rec.get("reason"))
        write_patient_features(pd.Series([], dtype=float, name=patient_id), out)
        return
    spacing = rec.get("spacing_mm") or []
    if spacing and max(spacing) > 1.5 * min(spacing):
        log.warning(
            "patient %s: radiomics on anisotropic voxels %s mm (texture distances of one voxel "
            "differ by axis); set mri.spacing_mm to an isotropic grid for IBSI-style features",
            patient_id,
            spacing,
        )
    folder = Path(record).parent
    sequences = list(mri["radiomics"]["sequences"])
    features = extract_patient(
        patient_id,
        {s: folder / f"{s}.nii.gz" for s in sequences},
        folder / "mask.nii.gz",
        mri["radiomics"]["params"],
        sequences,
        tumor_labels=tuple(mri["tumor_labels"]),
    )
    log.info("patient %s: %d radiomics features", patient_id, len(features))
    write_patient_features(features, out)


def merge_radiomics(rows: Sequence[str | Path], out: str | Path) -> pd.DataFrame:
    """Patients x ``{sequence}_{feature}`` table of every patient with features (parquet)."""
    from mmsurv.mri.radiomics import merge_patient_features, write_radiomics

    with_rows = [p for p in rows if len(pd.read_csv(p, sep="\t", nrows=1))]
    if len(with_rows) < len(rows):
        log.warning("%d patient(s) without radiomics left out", len(rows) - len(with_rows))
    table = merge_patient_features(with_rows)
    write_radiomics(table, out)
    return table
