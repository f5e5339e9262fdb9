"""The DTI stage of the workflow: one patient's 16-slice input, its record, its QC row.

Per patient: the maps (given, or a tensor fit of the raw DWI) are put on the tumour mask's grid
(:func:`mmsurv.dti.maps.to_mask_grid`), maps and mask are reoriented to LPS so that numpy axis
0 is axial, and :func:`mmsurv.dti.slices.extract_slices` crops 4 axial slices of each map to
the tumour box. Outputs: ``results/dti/slices/{patient}.npy`` ((16, H, W) float32; FA
unitless, diffusivities in 10^-3 mm^2/s), ``{patient}.json`` beside it (the record, ``status``
``ok``), and the montage ``results/dti/qc/{patient}.png``. A patient that cannot be used gets
:func:`skipped_record` (``status`` ``skipped`` and the reason), as the MRI stage does;
:func:`qc_table` lists every patient for ``results/dti/qc.tsv``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from mmsurv.io import atomic_path
from mmsurv.mri.io import VolumeError, read_mask
from mmsurv.mri.preprocess import _about, reorient, tumor_binary
from mmsurv.mri.stage import read_record, skip_figure

from .maps import MAPS, _covered, load_maps, to_mask_grid
from .slices import extract_slices, map_scale, plot_slices, tumor_crops

__all__ = [
    "DTISettings",
    "ORIENTATION",
    "QC_COLUMNS",
    "prepare_patient",
    "prepare_one_patient",
    "skipped_record",
    "write_record",
    "qc_table",
]

_log = logging.getLogger(__name__)

#: Orientation both maps and mask are brought to: numpy axis 0 (z) is then inferior-superior.
ORIENTATION = "LPS"
#: Columns of ``results/dti/qc.tsv``.
QC_COLUMNS = [
    "patient_id",
    "status",
    "reason",
    "map_source",
    "mask_source",
    "resampled_to_mask",
    "tumor_in_maps",
    "box_depth",
    "box_height",
    "box_width",
    *(f"{name}_mean" for name in MAPS),
]


@dataclass(frozen=True)
class DTISettings:
    """Parameters of :func:`prepare_patient`.

    Attributes
    ----------
    n_slices
        Axial slices per map inside the tumour box (the study: 4, i.e. 16 crops).
    slice_size
        (H, W) pixels each crop is resized to.
    margin_mm
        In-plane margin around the tumour box, in mm (``ceil(margin / spacing)`` voxels per
        in-plane axis of the mask grid).
    tumor_labels
        Mask labels counted as tumour (BraTS 1, 2, 4; a binary 0/1 mask also fits).
    b0_threshold
        Raw DWI: volumes with b <= this (s/mm^2) are b=0 volumes.
    fit_method
        Raw DWI: dipy ``TensorModel`` fit method ("WLS", "OLS", "NLLS", ...).
    mask_tolerance_mm
        Maps whose grid's corners lie within this (mm) of the mask's are not resampled.
    """

    n_slices: int = 4
    slice_size: tuple[int, int] = (64, 64)
    margin_mm: float = 0.0
    tumor_labels: tuple[int, ...] = (1, 2, 4)
    b0_threshold: float = 50.0
    fit_method: str = "WLS"
    mask_tolerance_mm: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "slice_size", tuple(int(s) for s in self.slice_size))
        object.__setattr__(self, "tumor_labels", tuple(int(t) for t in self.tumor_labels))
        problems = []
        if self.n_slices < 1:
            problems.append(f"n_slices must be >= 1, got {self.n_slices}")
        if len(self.slice_size) != 2 or min(self.slice_size) < 1:
            problems.append(f"slice_size must be 2 positive integers, got {self.slice_size}")
        if self.margin_mm < 0 or self.mask_tolerance_mm < 0 or self.b0_threshold < 0:
            problems.append("margin_mm, mask_tolerance_mm and b0_threshold must be >= 0")
        if not self.tumor_labels:
            problems.append("tumor_labels must not be empty")
        if problems:
            raise ValueError("invalid DTI settings: " + "; ".join(problems))

    @classmethod
    def from_config(cls, dti: Mapping[str, Any], mri: Mapping[str, Any]) -> DTISettings:
        """Settings from the config's ``dti`` and ``mri`` sections (missing keys: defaults).

        ``dti``: ``n_slices``, ``slice_size``, ``margin_mm``, ``b0_threshold``,
        ``fit_method``; ``mri``: ``tumor_labels``, ``mask_tolerance_mm``.
        """
        d = cls()
        return cls(
            n_slices=int(dti.get("n_slices", d.n_slices)),
            slice_size=tuple(dti.get("slice_size", d.slice_size)),
            margin_mm=float(dti.get("margin_mm", d.margin_mm)),
            tumor_labels=tuple(mri.get("tumor_labels", d.tumor_labels)),
            b0_threshold=float(dti.get("b0_threshold", d.b0_threshold)),
            fit_method=str(dti.get("fit_method", d.fit_method)),
            mask_tolerance_mm=float(mri.get("mask_tolerance_mm", d.mask_tolerance_mm)),
        )


def _finite(value: float) -> float | None:
    """``value`` rounded for the record, None when not finite (JSON has no NaN)."""
    return round(float(value), 6) + 0.0 if math.isfinite(value) else None


def _margin_vox(margin_mm: float, image: sitk.Image) -> tuple[int, int]:
    """(rows, cols) = (y, x) voxels covering ``margin_mm`` on the grid of ``image``."""
    sx, sy = image.GetSpacing()[:2]
    return tuple(int(math.ceil(margin_mm / s - 1e-9)) for s in (sy, sx))


def _write_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def write_record(record: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a patient's record as JSON (indented), atomically; parent folders are created."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, default=str))


def skipped_record(patient: str, reason: str) -> dict[str, Any]:
    """The record of a patient left out: ``patient_id``, ``status`` ``skipped``, ``reason``."""
    return {"patient_id": patient, "status": "skipped", "reason": str(reason)}


def _on_mask_grid(
    patient: str,
    maps: Mapping[str, sitk.Image],
    labels: sitk.Image,
    settings: DTISettings,
    mask_path: str | os.PathLike,
) -> tuple[dict[str, sitk.Image], bool]:
    """The maps on the mask's grid; maps within tolerance take the mask's exact geometry."""
    with _about(patient, mask_path):
        on_grid, resampled = to_mask_grid(maps, labels, settings.mask_tolerance_mm)
    if not resampled:
        on_grid = {name: sitk.Image(image) for name, image in on_grid.items()}
        for image in on_grid.values():
            image.CopyInformation(labels)
    return on_grid, resampled


def prepare_patient(
    patient: str,
    files: Mapping[str, str | os.PathLike],
    mask_path: str | os.PathLike,
    settings: DTISettings,
    *,
    out_slices: str | os.PathLike,
    out_record: str | os.PathLike,
    out_montage: str | os.PathLike,
    mask_source: str = "ground_truth",
) -> dict[str, Any]:
    """Build one patient's 16-slice DTI input and write it, its record and its montage.

    Parameters
    ----------
    patient
        Patient named in the record and every error.
    files
        Channel -> path from the images sheet: ``fa``, ``md``, ``ad``, ``rd`` (used when all
        four are there) or ``dwi``, ``bval``, ``bvec`` (tensor fit); others are ignored.
    mask_path
        Tumour mask (BraTS labels or 0/1): the sheet's, or the MRI stage's weak mask.
    settings
        Parameters (``DTISettings()`` for the defaults).
    out_slices
        ``.npy`` receiving the (len(MAPS) * n_slices, H, W) float32 stack (map-major).
    out_record
        ``.json`` receiving the record.
    out_montage
        ``.png`` receiving the montage (rows maps, columns slices, tumour outline in red).
    mask_source
        Where the mask came from (``ground_truth``, ``weak_network``, ``weak_file``), recorded.

    Returns
    -------
    dict
        The record: ``patient_id``, ``status`` (``ok``), ``map_source`` (``given`` or
        ``tensor_fit``), ``mask_source``, ``resampled_to_mask``, ``orientation``,
        ``spacing_mm`` (x, y, z of the grid the slices come from), ``box`` (tight tumour box,
        ``z``/``y``/``x`` -> [start, stop) voxels of that grid), ``crop`` (in-plane crop with
        the margin), ``margin_vox``, ``slices`` (z indices), ``slice_size`` ([H, W]),
        ``shape`` (of the ``.npy``), ``order`` (``"fa@z12"`` ...), ``tumor_voxels``,
        ``tumor_in_maps`` (share of tumour voxels inside the maps' extent), ``tumor_mean``
        (map -> mean inside the whole 3-D tumour; FA unitless, diffusivities in
        10^-3 mm^2/s) and ``units``.

    Raises
    ------
    VolumeError
        Naming the patient and the file: no usable DTI channels, unreadable or inconsistent
        maps or DWI, a failed tensor fit's checks, an unreadable or empty mask, labels outside
        ``tumor_labels``, maps and mask without overlap, non-finite slice values.
    """
    maps, source = load_maps(
        files, patient, b0_threshold=settings.b0_threshold, fit_method=settings.fit_method
    )
    labels = read_mask(mask_path, patient)
    tumor_image = tumor_binary(labels, settings.tumor_labels, patient_id=patient, path=mask_path)
    on_grid, resampled = _on_mask_grid(patient, maps, labels, settings, mask_path)
    in_maps = 1.0
    if resampled:
        covered = _covered(next(iter(maps.values())), labels)
        in_maps = float(covered[sitk.GetArrayViewFromImage(tumor_image) > 0].mean())
        if in_maps < 1.0:
            _log.warning(
                "patient %s: %.0f %% of the tumour lies outside the DTI maps",
                patient,
                100.0 * (1.0 - in_maps),
            )
    tumor_image = reorient(tumor_image, ORIENTATION)
    oriented = {name: reorient(on_grid[name], ORIENTATION) for name in MAPS}
    tumor = sitk.GetArrayFromImage(tumor_image) > 0
    arrays = {name: sitk.GetArrayFromImage(image) for name, image in oriented.items()}
    with _about(patient, mask_path):
        stack, crop = extract_slices(
            arrays,
            tumor,
            n_slices=settings.n_slices,
            size=settings.slice_size,
            margin_vox=_margin_vox(settings.margin_mm, tumor_image),
        )
    record: dict[str, Any] = {
        "patient_id": patient,
        "status": "ok",
        "map_source": source,
        "mask_source": mask_source,
        "resampled_to_mask": resampled,
        "orientation": ORIENTATION,
        "spacing_mm": [float(s) for s in tumor_image.GetSpacing()],
        "box": crop["box"],
        "crop": crop["crop"],
        "margin_vox": crop["margin_vox"],
        "slices": crop["slices"],
        "slice_size": crop["size"],
        "shape": list(stack.shape),
        "order": crop["order"],
        "tumor_voxels": int(tumor.sum()),
        "tumor_in_maps": _finite(in_maps),
        "tumor_mean": {n: _finite(arrays[n][tumor].mean() * map_scale(n)) for n in MAPS},
        "units": {n: "1" if map_scale(n) == 1.0 else "1e-3 mm^2/s" for n in MAPS},
    }
    _write_npy(stack, out_slices)
    grid = ", resampled to the mask grid" if resampled else ""
    z0, z1 = crop["box"]["z"]
    title = f"{patient}: DTI slices (maps {source}{grid}; mask {mask_source}; box z {z0}..{z1 - 1})"
    plot_slices(stack, crop["order"], out_montage, title, tumor_contours=tumor_crops(tumor, crop))
    write_record(record, out_record)
    _log.info("patient %s: DTI slices %s from %s maps", patient, record["shape"], source)
    return record


def _tumor_mask(
    patient: str, files: Mapping[str, str], mri_mask: str | None, mri_record: str | None
) -> tuple[str, str]:
    """The tumor mask of a patient and its source: the images sheet's, else the MRI stage's
    (its ground-truth or weak mask, as that stage's record says)."""
    if "mask" in files:
        return files["mask"], "ground_truth"
    if mri_mask and mri_record:
        record = read_record(mri_record)
        if record.get("status") != "ok":
            raise VolumeError(
                f"no tumor mask: the images sheet has none and the MRI stage skipped the "
                f"patient ({record.get('reason', '')})",
                patient_id=patient,
                path=mri_record,
            )
        return mri_mask, str(record.get("mask_source", "weak_network"))
    raise VolumeError(
        "no tumor mask: the images sheet has no mask row and the patient has no MRI for a "
        "weak mask (mri.weak_labels)",
        patient_id=patient,
    )


def prepare_one_patient(
    dti: Mapping[str, Any],
    mri: Mapping[str, Any],
    patient: str,
    files: Mapping[str, str],
    *,
    out_slices: str | os.PathLike,
    out_record: str | os.PathLike,
    out_montage: str | os.PathLike,
    mri_mask: str | None = None,
    mri_record: str | None = None,
) -> bool:
    """The DTI job of one patient, with the ``dti.on_error`` policy.

    Parameters
    ----------
    dti, mri
        The config's ``dti`` and ``mri`` sections.
    files
        Channel -> path of the patient's DTI and mask rows of the images sheet.
    mri_mask, mri_record
        The MRI stage's ``mask.nii.gz`` and ``preprocess.json`` of a patient without a mask
        row (its weak mask).

    Returns
    -------
    bool
        False when the patient was skipped (``dti.on_error: skip``): the record says why, the
        montage shows the reason and the ``.npy`` holds an empty array.

    Raises
    ------
    VolumeError
        With ``on_error: fail``: the patient's maps or mask cannot be used (patient, file,
        reason).
    """
    settings = DTISettings.from_config(dti, mri)
    try:
        mask, source = _tumor_mask(patient, files, mri_mask, mri_record)
        prepare_patient(
            patient,
            files,
            mask,
            settings,
            out_slices=out_slices,
            out_record=out_record,
            out_montage=out_montage,
            mask_source=source,
        )
    except (VolumeError, np.linalg.LinAlgError, RuntimeError, MemoryError) as err:
        # bad input (VolumeError) or a numerical / library failure on this patient's data
        if dti["on_error"] != "skip":
            raise
        reason = str(err) if isinstance(err, VolumeError) else f"{type(err).__name__}: {err}"
        _log.warning("patient %s skipped (dti.on_error: skip): %s", patient, reason)
        _write_npy(np.zeros((0,), np.float32), out_slices)
        skip_figure(patient, reason, out_montage)
        write_record(skipped_record(patient, reason), out_record)
        return False
    return True


def qc_table(records: Sequence[Mapping[str, Any] | str | os.PathLike]) -> pd.DataFrame:
    """One row per patient for ``results/dti/qc.tsv``: :data:`QC_COLUMNS`.

    Parameters
    ----------
    records
        Records (dicts) or the paths of their JSON files, ok or skipped.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``status`` (ok / skipped), ``reason``, ``map_source``,
        ``mask_source``, ``resampled_to_mask``, ``tumor_in_maps`` (share of tumour voxels
        inside the maps' extent), ``box_depth`` / ``box_height`` /
        ``box_width`` (voxels of the tight tumour box), ``{map}_mean`` (inside the tumour;
        FA unitless, diffusivities in 10^-3 mm^2/s). Empty strings / NaN for a skipped one.
    """
    rows = []
    for item in records:
        rec = dict(item) if isinstance(item, Mapping) else read_record(item)
        box = rec.get("box") or {}
        extent = {
            f"box_{name}": (box[axis][1] - box[axis][0]) if axis in box else None
            for name, axis in (("depth", "z"), ("height", "y"), ("width", "x"))
        }
        means = rec.get("tumor_mean") or {}
        rows.append(
            {
                "patient_id": rec.get("patient_id"),
                "status": rec.get("status", "ok"),
                "reason": rec.get("reason", ""),
                "map_source": rec.get("map_source", ""),
                "mask_source": rec.get("mask_source", ""),
                "resampled_to_mask": rec.get("resampled_to_mask"),
                "tumor_in_maps": rec.get("tumor_in_maps"),
                **extent,
                **{f"{name}_mean": means.get(name) for name in MAPS},
            }
        )
    table = pd.DataFrame(rows, columns=QC_COLUMNS)
    skipped = int((table["status"] == "skipped").sum())
    _log.info("DTI QC: %d patients, %d skipped", len(table), skipped)
    return table
