"""MRI preprocessing of one patient with SimpleITK: one grid, N4, z-score, tumour crop.

Conventions: SimpleITK sizes, indices, spacings and origins are (x, y, z); numpy arrays from
``sitk.GetArrayFromImage`` are (z, y, x); physical lengths and positions are in mm. Steps of
:func:`preprocess_patient`, in order:

1. read every required sequence (float32) and the tumour mask (UInt8);
2. reorient all to ``settings.orientation`` (``sitk.DICOMOrient``; "LPS" is the identity
   direction);
3. choose the reference sequence (first of ``settings.reference`` present) and build the grid
   (its origin, direction and physical extent at ``settings.spacing_mm``);
4. check that the mask has the geometry of the reference sequence (within
   ``settings.mask_tolerance_mm``), then resample the sequences (linear) and the mask (nearest)
   onto the grid;
5. head mask of the reference (Otsu of a smoothed image, largest component, closing, holes
   filled); N4 bias-field correction of each sequence inside it; z-score inside it;
6. optional T1ce - T1 subtraction channel; tumour box plus margin, cropped and resized to
   ``settings.crop_size`` voxels; files written atomically.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .io import VolumeError, read_mask, read_volume, write_volume
from .qc import MontageData

__all__ = [
    "Box",
    "PreprocessSettings",
    "reorient",
    "reference_grid",
    "resample_to",
    "check_same_geometry",
    "head_mask",
    "n4_correct",
    "masked_stats",
    "zscore_in_mask",
    "tumor_binary",
    "tumor_box",
    "box_grid",
    "crop_resize",
    "subtraction",
    "preprocess_patient",
    "WeakSource",
]

_log = logging.getLogger(__name__)

#: A box of voxels: (index_lo (x, y, z), size (x, y, z)).
Box = tuple[tuple[int, int, int], tuple[int, int, int]]

_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
    "bspline": sitk.sitkBSpline,
}


@dataclass(frozen=True)
class PreprocessSettings:
    """Parameters of :func:`preprocess_patient` (lists are stored as tuples).

    Attributes
    ----------
    orientation
        Three-letter orientation code for ``sitk.DICOMOrient`` (e.g. "LPS", "RAS").
    reference
        Candidate reference sequences; the first one present defines the grid and carries the
        tumour mask's geometry.
    spacing_mm
        (x, y, z) voxel size of the output grid in mm; None keeps the reference's spacing.
    n4_shrink
        Shrink factor of the image N4 fits the bias field on (1 = full resolution).
    n4_iterations
        Maximum N4 iterations per fitting level (its length is the number of levels).
    n4
        Whether to run N4 at all.
    margin_mm
        Margin added around the tumour's bounding box, in mm.
    crop_size
        (x, y, z) voxels of the resized tumour crop.
    brain_size
        (x, y, z) voxels the head mask's bounding box is resized to (the whole-brain input).
    subtraction
        Whether to add the ``t1ce_t1`` channel (z-scored T1ce minus z-scored T1).
    tumor_labels
        Mask labels counted as tumour (BraTS 1, 2, 4; a binary 0/1 mask also fits).
    mask_tolerance_mm
        Largest distance (mm) between corresponding corners of the mask and the reference.
    sequences
        Required sequences, in output channel order.
    """

    orientation: str = "LPS"
    reference: tuple[str, ...] = ("t1ce", "t1")
    spacing_mm: tuple[float, float, float] | None = (1.0, 1.0, 1.0)
    n4_shrink: int = 4
    n4_iterations: tuple[int, ...] = (50, 50, 30, 20)
    n4: bool = True
    margin_mm: float = 10.0
    crop_size: tuple[int, int, int] = (64, 64, 64)
    brain_size: tuple[int, int, int] = (64, 64, 48)
    subtraction: bool = False
    tumor_labels: tuple[int, ...] = (1, 2, 4)
    mask_tolerance_mm: float = 1.0
    sequences: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")

    def __post_init__(self) -> None:
        names = ("reference", "n4_iterations", "crop_size", "brain_size", "tumor_labels")
        for name in (*names, "sequences"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.spacing_mm is not None:
            object.__setattr__(self, "spacing_mm", tuple(float(s) for s in self.spacing_mm))
        problems = []
        if self.spacing_mm is not None and (len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0):
            problems.append(f"spacing_mm must be 3 positive numbers, got {self.spacing_mm}")
        for name in ("crop_size", "brain_size"):
            size = getattr(self, name)
            if len(size) != 3 or min(size) < 1:
                problems.append(f"{name} must be 3 positive integers, got {size}")
        if self.n4_shrink < 1 or not self.n4_iterations or min(self.n4_iterations) < 1:
            problems.append("n4_shrink must be >= 1 and n4_iterations positive integers")
        if self.margin_mm < 0 or self.mask_tolerance_mm < 0:
            problems.append("margin_mm and mask_tolerance_mm must be >= 0")
        if not set(self.reference) & set(self.sequences):
            problems.append(f"no reference {self.reference} among sequences {self.sequences}")
        if self.subtraction and not {"t1", "t1ce"} <= set(self.sequences):
            problems.append("subtraction needs both 't1' and 't1ce' in sequences")
        if problems:
            raise ValueError("invalid MRI preprocessing settings: " + "; ".join(problems))


# --- geometry -------------------------------------------------------------------------------


def reorient(image: sitk.Image, orientation: str = "LPS") -> sitk.Image:
    """Permute and flip the axes of ``image`` to ``orientation`` (no interpolation).

    Parameters
    ----------
    image
        3-D image.
    orientation
        Code of the directions the (x, y, z) axes point to, as ``sitk.DICOMOrient`` takes
        it: "LPS" gives the identity direction matrix.

    Returns
    -------
    SimpleITK.Image
        Same voxels and physical positions, axes reordered.
    """
    return sitk.DICOMOrient(image, orientation)


def _direction(image: sitk.Image) -> np.ndarray:
    """The (3, 3) direction matrix; column j is the unit vector of index axis j."""
    return np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)


def reference_grid(reference: sitk.Image, spacing_mm: Sequence[float] | None = None) -> sitk.Image:
    """An empty image covering the physical extent of ``reference`` at a new spacing.

    Parameters
    ----------
    reference
        Image whose direction and extent (voxel size times count, in mm) are kept.
    spacing_mm
        (x, y, z) voxel size of the grid in mm; None keeps the reference's.

    Returns
    -------
    SimpleITK.Image
        UInt8 image of zeros, size ``round(size * spacing / spacing_mm)`` (at least 1) per
        axis, same direction, same centre as the reference. When the extent is a whole
        number of new voxels the outer voxel faces coincide with the reference's (the origin,
        a voxel centre, moves by half the spacing difference); with ``spacing_mm`` None the
        grid is the reference's own.
    """
    old_spacing = np.asarray(reference.GetSpacing(), dtype=np.float64)
    old_size = np.asarray(reference.GetSize(), dtype=np.float64)
    spacing = old_spacing if spacing_mm is None else np.asarray(spacing_mm, dtype=np.float64)
    size = np.maximum(1, np.round(old_size * old_spacing / spacing)).astype(int)
    direction = _direction(reference)
    centre = np.asarray(reference.GetOrigin()) + direction @ (old_spacing * (old_size - 1) / 2)
    origin = centre - direction @ (spacing * (size - 1) / 2)
    grid = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([float(o) for o in origin])
    grid.SetDirection(reference.GetDirection())
    return grid


def resample_to(image: sitk.Image, grid: sitk.Image, interpolator: str = "linear") -> sitk.Image:
    """Resample ``image`` onto the voxels of ``grid`` (identity transform, physical space).

    Parameters
    ----------
    image
        Image to resample; its pixel type is kept.
    grid
        Image giving the output size, spacing, origin and direction (its values are unused).
    interpolator
        "linear" (intensities), "nearest" (labels) or "bspline".

    Returns
    -------
    SimpleITK.Image
        ``image`` sampled at the physical positions of the grid's voxels; 0 outside ``image``.
    """
    if interpolator not in _INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(_INTERPOLATORS)}")
    return sitk.Resample(
        image, grid, sitk.Transform(), _INTERPOLATORS[interpolator], 0.0, image.GetPixelID()
    )


def _corner_points(image: sitk.Image) -> np.ndarray:
    """(8, 3) physical positions (mm) of the centres of the 8 corner voxels."""
    size = image.GetSize()
    ends = [(0, n - 1) for n in size]
    corners = [(i, j, k) for i in ends[0] for j in ends[1] for k in ends[2]]
    return np.array([image.TransformIndexToPhysicalPoint(c) for c in corners])


def check_same_geometry(
    image: sitk.Image,
    reference: sitk.Image,
    tolerance_mm: float = 1.0,
    what: str = "image",
    *,
    patient_id: str | None = None,
    path: str | os.PathLike | None = None,
) -> None:
    """Raise when ``image`` does not lie on the grid of ``reference``.

    The sizes must be equal and each of the 8 corner voxel centres of ``image`` must lie
    within ``tolerance_mm`` of the matching corner of ``reference``; this bounds any
    difference of origin, spacing or direction by its effect in mm.

    Parameters
    ----------
    image, reference
        3-D images.
    tolerance_mm
        Largest corner distance accepted, in mm.
    what
        Name of ``image`` used in the message (e.g. "tumour mask").
    patient_id, path
        Named in the error (``path`` is the file ``image`` came from).

    Raises
    ------
    VolumeError
        Different size, or a corner further than ``tolerance_mm`` away.
    """
    if image.GetSize() != reference.GetSize():
        raise VolumeError(
            f"{what} has size {image.GetSize()} but its reference has {reference.GetSize()} "
            "(x, y, z voxels)",
            path,
            patient_id,
        )
    distance = np.linalg.norm(_corner_points(image) - _corner_points(reference), axis=1).max()
    if distance > tolerance_mm:
        raise VolumeError(
            f"{what} geometry differs from its reference by {distance:.3g} mm at a corner "
            f"(tolerance {tolerance_mm:g} mm): origin {_fmt(image.GetOrigin())} vs "
            f"{_fmt(reference.GetOrigin())}, spacing {_fmt(image.GetSpacing())} vs "
            f"{_fmt(reference.GetSpacing())}, direction {_fmt(image.GetDirection())} vs "
            f"{_fmt(reference.GetDirection())}",
            path,
            patient_id,
        )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


# --- masks and intensities ------------------------------------------------------------------


def head_mask(image: sitk.Image, sigma_mm: float = 2.0, closing_radius: int = 2) -> sitk.Image:
    """Foreground (head) mask: Otsu threshold of a smoothed image, largest part, holes filled.

    Parameters
    ----------
    image
        3-D intensity image (e.g. the reference sequence on the output grid).
    sigma_mm
        Gaussian smoothing before thresholding, in mm.
    closing_radius
        Radius (voxels) of the binary closing applied before filling holes.

    Returns
    -------
    SimpleITK.Image
        UInt8 mask (1 inside), same grid as ``image``.

    Raises
    ------
    VolumeError
        When no foreground is found.
    """
    smooth = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), sigma_mm)
    foreground = sitk.OtsuThreshold(smooth, 0, 1)  # values above the threshold -> 1
    parts = sitk.RelabelComponent(sitk.ConnectedComponent(foreground), sortByObjectSize=True)
    largest = sitk.Cast(parts == 1, sitk.sitkUInt8)
    if closing_radius > 0:
        largest = sitk.BinaryMorphologicalClosing(largest, [closing_radius] * 3, sitk.sitkBall, 1)
    filled = sitk.BinaryFillhole(largest, fullyConnected=False, foregroundValue=1)
    mask = sitk.Cast(filled, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(mask).any():
        raise VolumeError("head mask is empty (no foreground above the Otsu threshold)")
    return mask


def n4_correct(
    image: sitk.Image,
    mask: sitk.Image,
    shrink_factor: int = 4,
    iterations: Sequence[int] = (50, 50, 30, 20),
) -> tuple[sitk.Image, sitk.Image]:
    """N4 bias-field correction, fitted on a shrunk image, applied at full resolution.

    Parameters
    ----------
    image
        3-D intensity image (non-negative).
    mask
        UInt8 mask (1 inside) on the grid of ``image``; voxels with intensity <= 0 are left
        out of the fit.
    shrink_factor
        Integer shrink factor per axis of the image the field is fitted on.
    iterations
        Maximum iterations per fitting level.

    Returns
    -------
    corrected : SimpleITK.Image
        float32 ``image / exp(log_field)``, full resolution.
    log_field : SimpleITK.Image
        float32 natural log of the estimated multiplicative bias field, full resolution.
    """
    image = sitk.Cast(image, sitk.sitkFloat32)
    fit_mask = sitk.Cast((mask > 0) & (image > 0), sitk.sitkUInt8)
    shrink = [int(shrink_factor)] * image.GetDimension()
    small, small_mask = sitk.Shrink(image, shrink), sitk.Shrink(fit_mask, shrink)
    if not sitk.GetArrayViewFromImage(small_mask).any():
        raise VolumeError("N4 mask is empty after shrinking")
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations([int(i) for i in iterations])
    n4.Execute(small, small_mask)
    log_field = sitk.Cast(n4.GetLogBiasFieldAsImage(image), sitk.sitkFloat32)
    corrected = sitk.Cast(image / sitk.Exp(log_field), sitk.sitkFloat32)
    return corrected, log_field


def masked_stats(image: sitk.Image, mask: sitk.Image) -> tuple[float, float, float]:
    """Mean, standard deviation (ddof 0) and coefficient of variation inside ``mask``.

    Parameters
    ----------
    image
        3-D image.
    mask
        Mask (nonzero inside) with the size of ``image``.

    Returns
    -------
    tuple of float
        ``(mean, sd, cv)``; ``cv = sd / |mean|`` (NaN when the mean is 0).
    """
    inside = _inside(image, mask)
    values = sitk.GetArrayViewFromImage(image)[inside].astype(np.float64)
    mean, sd = float(values.mean()), float(values.std())
    return mean, sd, sd / abs(mean) if mean else math.nan


def _inside(image: sitk.Image, mask: sitk.Image) -> np.ndarray:
    """(z, y, x) boolean array of the mask's voxels; error when empty or of another size."""
    if image.GetSize() != mask.GetSize():
        raise VolumeError(f"mask size {mask.GetSize()} differs from image size {image.GetSize()}")
    inside = sitk.GetArrayViewFromImage(mask) > 0
    if not inside.any():
        raise VolumeError("mask is empty")
    return inside


def zscore_in_mask(image: sitk.Image, mask: sitk.Image) -> sitk.Image:
    """``(x - mean) / sd`` with the mean and sd inside ``mask``; 0 outside it.

    Parameters
    ----------
    image
        3-D intensity image.
    mask
        Mask (nonzero inside) on the grid of ``image``.

    Returns
    -------
    SimpleITK.Image
        float32 image, same geometry.

    Raises
    ------
    VolumeError
        Empty mask, or constant intensity inside it (sd 0).
    """
    inside = _inside(image, mask)
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    mean, sd = values[inside].mean(), values[inside].std()
    if not sd > 0:
        raise VolumeError("intensity is constant inside the mask (sd 0): cannot z-score")
    out = sitk.GetImageFromArray(np.where(inside, (values - mean) / sd, 0.0).astype(np.float32))
    out.CopyInformation(image)
    return out


def tumor_binary(
    labels: sitk.Image,
    tumor_labels: Sequence[int] = (1, 2, 4),
    *,
    patient_id: str | None = None,
    path: str | os.PathLike | None = None,
) -> sitk.Image:
    """UInt8 mask (1 inside) of the voxels whose label is in ``tumor_labels``.

    Raises
    ------
    VolumeError
        A nonzero label outside ``tumor_labels``, or no tumour voxel at all.
    """
    values = sitk.GetArrayViewFromImage(labels)
    present = {int(v) for v in np.unique(values)} - {0}
    unknown = present - {int(t) for t in tumor_labels}
    if unknown:
        raise VolumeError(
            f"tumour mask has labels {sorted(unknown)} outside tumor_labels {tuple(tumor_labels)}",
            path,
            patient_id,
        )
    if not present:
        raise VolumeError("tumour mask is empty (no nonzero voxel)", path, patient_id)
    binary = sitk.GetImageFromArray(np.isin(values, list(tumor_labels)).astype(np.uint8))
    binary.CopyInformation(labels)
    return binary


def tumor_box(mask: sitk.Image, margin_mm: float = 10.0) -> Box:
    """Bounding box of the nonzero voxels of ``mask`` plus a margin, clipped to the image.

    Parameters
    ----------
    mask
        3-D mask (nonzero = tumour).
    margin_mm
        Margin added on each side, in mm (``ceil(margin_mm / spacing)`` voxels per axis).

    Returns
    -------
    tuple
        ``(index_lo, size)``, each (x, y, z) voxels of ``mask``'s grid.

    Raises
    ------
    VolumeError
        When the mask has no nonzero voxel.
    """
    zyx = np.nonzero(sitk.GetArrayViewFromImage(mask))
    if not zyx[0].size:
        raise VolumeError("tumour mask is empty: no box to crop")
    lo = np.array([a.min() for a in zyx[::-1]])  # (x, y, z)
    hi = np.array([a.max() for a in zyx[::-1]])
    pad = np.ceil(margin_mm / np.asarray(mask.GetSpacing()) - 1e-9).astype(int)
    lo = np.maximum(lo - pad, 0)
    hi = np.minimum(hi + pad, np.asarray(mask.GetSize()) - 1)
    return _xyz(lo), _xyz(hi - lo + 1)


def _xyz(values: Sequence[float]) -> tuple[int, int, int]:
    x, y, z = (int(v) for v in values)
    return x, y, z


def box_grid(image: sitk.Image, box: Box, size_vox: Sequence[int]) -> sitk.Image:
    """Empty UInt8 grid of ``size_vox`` (x, y, z) voxels covering ``box`` of ``image`` in space.

    The grid's outer voxel faces coincide with those of the box; its spacing is
    ``box_size * spacing / size_vox`` (mm) per axis, its direction that of ``image``.
    """
    lo, size = box
    spacing = np.asarray(image.GetSpacing(), dtype=np.float64)
    new_size = np.asarray(size_vox, dtype=int)
    new_spacing = np.asarray(size, dtype=np.float64) * spacing / new_size
    direction = _direction(image)
    first_centre = np.asarray(image.TransformIndexToPhysicalPoint([int(i) for i in lo]))
    origin = first_centre + direction @ ((new_spacing - spacing) / 2)
    grid = sitk.Image([int(n) for n in new_size], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in new_spacing])
    grid.SetOrigin([float(o) for o in origin])
    grid.SetDirection(image.GetDirection())
    return grid


def crop_resize(
    image: sitk.Image, box: Box, size_vox: Sequence[int], interpolator: str = "linear"
) -> np.ndarray:
    """Crop ``box`` out of ``image`` and resample it to a fixed number of voxels.

    Parameters
    ----------
    image
        3-D image.
    box
        ``(index_lo, size)`` in (x, y, z) voxels of ``image``, e.g. from :func:`tumor_box`.
    size_vox
        (x, y, z) voxels of the result.
    interpolator
        "linear" for intensities, "nearest" for labels.

    Returns
    -------
    numpy.ndarray
        (D, H, W) = (size_z, size_y, size_x) array; float32, or uint8 for a UInt8 image.
    """
    lo, size = box
    roi = sitk.RegionOfInterest(image, [int(s) for s in size], [int(i) for i in lo])
    crop = resample_to(roi, box_grid(image, box, size_vox), interpolator)
    array = sitk.GetArrayFromImage(crop)
    return array if array.dtype == np.uint8 else array.astype(np.float32)


def subtraction(t1ce: sitk.Image, t1: sitk.Image) -> sitk.Image:
    """``t1ce - t1`` voxel by voxel (both z-scored, on the same grid); float32."""
    check_same_geometry(t1, t1ce, 1e-3, "t1 for the subtraction")
    difference = sitk.Cast(t1ce, sitk.sitkFloat32) - sitk.Cast(t1, sitk.sitkFloat32)
    return sitk.Cast(difference, sitk.sitkFloat32)


# --- one patient ----------------------------------------------------------------------------


class _Steps:
    """Wall-clock seconds per named step (summed when a step runs several times)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed


@contextmanager
def _about(patient_id: str, path: str | os.PathLike | None = None) -> Iterator[None]:
    """Re-raise a :class:`VolumeError` without a patient as one naming the patient and file."""
    try:
        yield
    except VolumeError as err:
        if err.patient_id is not None:
            raise
        raise VolumeError(err.reason, err.path or path, patient_id) from err


def _read_sequences(
    patient_id: str, sequences: Mapping[str, str | os.PathLike], settings: PreprocessSettings
) -> dict[str, sitk.Image]:
    """Read the required sequences (in ``settings.sequences`` order); others are ignored."""
    missing = [s for s in settings.sequences if s not in sequences]
    if missing:
        given = ", ".join(f"{k}={v}" for k, v in sequences.items()) or "none"
        raise VolumeError(
            f"required sequence(s) {', '.join(missing)} missing (given: {given})",
            None,
            patient_id,
        )
    extra = sorted(set(sequences) - set(settings.sequences))
    if extra:
        _log.info("%s: ignoring channels not in settings.sequences: %s", patient_id, extra)
    return {s: read_volume(sequences[s], patient_id) for s in settings.sequences}


def _choose_reference(settings: PreprocessSettings) -> str:
    return next(r for r in settings.reference if r in settings.sequences)


def _axial_axis(image: sitk.Image) -> int:
    """Index axis (0 = x, 1 = y, 2 = z) most aligned with the physical S-I axis."""
    return int(np.argmax(np.abs(_direction(image)[2])))


def _slices(volume: sitk.Image, axis: int, index: int) -> np.ndarray:
    """(H, W) slice of ``volume`` at ``index`` along index axis ``axis`` (0 = x ... 2 = z)."""
    return np.take(sitk.GetArrayFromImage(volume), index, axis=2 - axis)


def _write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez_compressed`` to a temporary file beside ``path``, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _finite(value: float) -> float | None:
    """``value`` rounded for the record, None when not finite (JSON has no NaN)."""
    return round(float(value), 6) + 0.0 if math.isfinite(value) else None  # + 0.0: no -0.0


def _tumor_on_grid(
    labels: sitk.Image,
    reference: sitk.Image,
    grid: sitk.Image,
    settings: PreprocessSettings,
    patient_id: str,
    mask_path: str | os.PathLike,
) -> tuple[sitk.Image, sitk.Image]:
    """Check the mask against its reference sequence, then put labels and tumour on ``grid``.

    Returns the resampled labels (UInt8, nearest) and the binary tumour mask on the grid.
    """
    tumor_binary(labels, settings.tumor_labels, patient_id=patient_id, path=mask_path)
    check_same_geometry(
        labels,
        reference,
        settings.mask_tolerance_mm,
        "tumour mask",
        patient_id=patient_id,
        path=mask_path,
    )
    labels_grid = resample_to(labels, grid, "nearest")
    with _about(patient_id, mask_path):
        try:
            tumor = tumor_binary(labels_grid, settings.tumor_labels)
        except VolumeError as err:
            raise VolumeError(f"{err.reason}, after resampling onto the grid") from err
    return labels_grid, tumor


def _correct_channel(
    image: sitk.Image, head: sitk.Image, settings: PreprocessSettings
) -> tuple[sitk.Image, sitk.Image, dict[str, float | None]]:
    """N4 (when enabled) and z-score of one sequence inside the head mask.

    Returns the z-scored image, the log bias field (zeros without N4) and the channel's stats.
    """
    cv_before = masked_stats(image, head)[2]
    if settings.n4:
        corrected, log_field = n4_correct(image, head, settings.n4_shrink, settings.n4_iterations)
    else:
        corrected = image
        log_field = sitk.Image(image.GetSize(), sitk.sitkFloat32)
        log_field.CopyInformation(image)
    mean, sd, cv_after = masked_stats(corrected, head)
    stats = {
        "cv_before": _finite(cv_before),
        "cv_after": _finite(cv_after),
        "mean": _finite(mean),
        "sd": _finite(sd),
    }
    return zscore_in_mask(corrected, head), log_field, stats


def _montage_data(
    patient_id: str,
    channels: Sequence[str],
    resampled: Mapping[str, sitk.Image],
    zscored: Mapping[str, sitk.Image],
    log_fields: Mapping[str, sitk.Image],
    masks: tuple[sitk.Image, sitk.Image],
    stats: Mapping[str, Mapping[str, float | None]],
) -> MontageData:
    """Slices at the middle of the tumour along the axial axis, for :func:`qc.montage`."""
    tumor, head = masks
    axis = _axial_axis(tumor)
    lo, size = tumor_box(tumor, 0.0)
    index = lo[axis] + size[axis] // 2
    spacing = tumor.GetSpacing()
    rows_cols = [a for a in (2, 1, 0) if a != axis]  # remaining index axes in numpy order
    return MontageData(
        patient_id=patient_id,
        channels=tuple(channels),
        before={c: _slices(resampled[c], axis, index) for c in channels},
        after={c: _slices(zscored[c], axis, index) for c in channels},
        bias={c: np.exp(_slices(log_fields[c], axis, index)) for c in channels},
        tumor=_slices(tumor, axis, index) > 0,
        head=_slices(head, axis, index) > 0,
        slice_index=int(index),
        pixel_mm=(float(spacing[rows_cols[0]]), float(spacing[rows_cols[1]])),
        cv_before={c: v for c in channels if (v := stats[c]["cv_before"]) is not None},
        cv_after={c: v for c in channels if (v := stats[c]["cv_after"]) is not None},
    )


def _write_outputs(
    out_dir: Path,
    zscored: Mapping[str, sitk.Image],
    labels_grid: sitk.Image,
    head: sitk.Image,
    crops: Mapping[str, np.ndarray],
    brain: Mapping[str, np.ndarray],
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for channel, image in zscored.items():
        write_volume(image, out_dir / f"{channel}.nii.gz")
    write_volume(labels_grid, out_dir / "mask.nii.gz")
    write_volume(head, out_dir / "head_mask.nii.gz")
    _write_npz(out_dir / "crop.npz", crops)
    _write_npz(out_dir / "brain.npz", brain)


#: What a weak tumour mask comes from when the patient has no ground-truth mask: a user file
#: (user-supplied mask folder) or a predictor mapping the whole-brain arrays (channel ->
#: (D, H, W) at ``brain_size``) to a 0/1 uint8 (D, H, W) mask (the segmentation network).
WeakSource = str | os.PathLike | Callable[[Mapping[str, np.ndarray]], np.ndarray]


def preprocess_patient(
    patient_id: str,
    sequences: Mapping[str, str | os.PathLike],
    mask_path: str | os.PathLike | None,
    settings: PreprocessSettings,
    out_dir: str | os.PathLike,
    weak: WeakSource | None = None,
) -> tuple[dict[str, Any], MontageData]:
    """Preprocess one patient's MRI study and write the results to ``out_dir``.

    Parameters
    ----------
    patient_id
        Patient named in the record and in every error.
    sequences
        Sequence name -> file or DICOM folder; every name in ``settings.sequences`` is needed.
    mask_path
        Ground-truth tumour mask, with the geometry of the reference sequence; None when the
        patient has none (then ``weak`` gives the tumour).
    settings
        Parameters (``PreprocessSettings()`` for the defaults).
    out_dir
        Folder receiving ``{channel}.nii.gz`` (float32, z-scored, one per sequence, plus
        ``t1ce_t1.nii.gz`` with ``settings.subtraction``), ``mask.nii.gz`` (UInt8 tumour
        labels on the grid; for a weak mask its 0/1 tumour), ``head_mask.nii.gz`` (UInt8),
        ``crop.npz`` (the tumour box plus ``settings.margin_mm``: one float32 (D, H, W) =
        (crop z, y, x) array per channel, keyed by channel, plus ``mask`` (ground truth) or
        ``weak_mask``: the uint8 labels, nearest-neighbour resized) and ``brain.npz`` (the
        same arrays for the head mask's bounding box resized to ``settings.brain_size``: the
        whole-brain input).
    weak
        Only used without ``mask_path``: a weak mask file (geometry of the reference
        sequence, labels among ``settings.tumor_labels``) or a predictor of the whole-brain
        arrays (see
        :data:`WeakSource`). The tumour it marks is binarised (tumour vs background).

    Returns
    -------
    record : dict
        JSON-able QC record: ``patient_id``, ``reference``, ``orientation``, ``spacing_mm``
        and ``size`` (x, y, z) of the grid, ``mask_source`` (``ground_truth``,
        ``weak_file`` or ``weak_network``), ``box`` (``lo``, ``size``: x, y, z voxels of the
        grid), ``crop_size`` (x, y, z), ``brain_box``, ``brain_size``, ``channels``, ``stats``
        (channel -> ``cv_before``, ``cv_after`` inside the head mask, ``mean`` and ``sd`` used
        for the z-score), ``tumor_voxels``, ``head_voxels``, ``n4``, ``n4_shrink`` and
        ``seconds`` per step.
    montage : MontageData
        Slices for :func:`mmsurv.mri.qc.montage`.

    Raises
    ------
    VolumeError
        Missing or unreadable file, missing required sequence, no mask and no weak source,
        empty tumour mask, mask geometry different from its reference sequence, empty head
        mask, constant image, a weak prediction without tumour.
    """
    if mask_path is None and weak is None:
        raise VolumeError("no tumour mask, and weak labels are off", None, patient_id)
    out_dir = Path(out_dir)
    steps = _Steps()
    labels_path = mask_path if mask_path is not None else weak
    from_file = isinstance(labels_path, str | os.PathLike)
    with steps("read"):
        raw = _read_sequences(patient_id, sequences, settings)
        labels = read_mask(labels_path, patient_id) if from_file else None
    with steps("reorient"):
        raw = {c: reorient(image, settings.orientation) for c, image in raw.items()}
        labels = None if labels is None else reorient(labels, settings.orientation)
    reference = _choose_reference(settings)
    tumor = labels_grid = None
    with steps("resample"):
        grid = reference_grid(raw[reference], settings.spacing_mm)
        resampled = {c: resample_to(image, grid, "linear") for c, image in raw.items()}
        if labels is not None:
            labels_grid, tumor = _tumor_on_grid(
                labels, raw[reference], grid, settings, patient_id, labels_path
            )
    with steps("head_mask"), _about(patient_id, sequences[reference]):
        head = head_mask(resampled[reference])
        if tumor is not None:
            # a tumour at the surface (or a dark necrotic core at the mask's edge) stays inside
            # the mask: its voxels are corrected and z-scored, never zeroed
            head = sitk.Or(head, sitk.Cast(tumor > 0, sitk.sitkUInt8))
    zscored, log_fields, stats = {}, {}, {}
    for channel, image in resampled.items():
        with steps("n4_zscore"), _about(patient_id, sequences[channel]):
            zscored[channel], log_fields[channel], stats[channel] = _correct_channel(
                image, head, settings
            )
        _log.info("%s %s: CV in head mask %s", patient_id, channel, stats[channel])
    channels = list(settings.sequences)
    if settings.subtraction:
        zscored["t1ce_t1"] = subtraction(zscored["t1ce"], zscored["t1"])
        mean, sd, _ = masked_stats(zscored["t1ce_t1"], head)
        stats["t1ce_t1"] = {"cv_before": None, "cv_after": None, "mean": _finite(mean)}
        stats["t1ce_t1"]["sd"] = _finite(sd)
        channels.append("t1ce_t1")
    head_box = tumor_box(head, 0.0)
    brain = {c: crop_resize(zscored[c], head_box, settings.brain_size) for c in channels}
    source = "ground_truth" if mask_path is not None else "weak_file"
    if tumor is None:  # the segmentation network on the whole-brain input
        with steps("weak_mask"), _about(patient_id):
            tumor, brain["weak_mask"] = _predict_weak(weak, brain, head_box, settings, grid)
        labels_grid = tumor
        source = "weak_network"
    key = "mask" if source == "ground_truth" else "weak_mask"
    if source == "weak_file":
        labels_grid = tumor
    with steps("crop"), _about(patient_id, labels_path if from_file else None):
        box = tumor_box(tumor, settings.margin_mm)
        crops = {c: crop_resize(zscored[c], box, settings.crop_size) for c in channels}
        crops[key] = crop_resize(labels_grid, box, settings.crop_size, "nearest")
        if key not in brain:
            brain[key] = crop_resize(labels_grid, head_box, settings.brain_size, "nearest")
    with steps("write"):
        _write_outputs(out_dir, zscored, labels_grid, head, crops, brain)
    record = {
        "patient_id": patient_id,
        "reference": reference,
        "orientation": settings.orientation,
        "spacing_mm": [float(s) for s in grid.GetSpacing()],
        "size": [int(n) for n in grid.GetSize()],
        "mask_source": source,
        "box": {"lo": list(box[0]), "size": list(box[1])},
        "crop_size": list(settings.crop_size),
        "brain_box": {"lo": list(head_box[0]), "size": list(head_box[1])},
        "brain_size": list(settings.brain_size),
        "channels": channels,
        "stats": stats,
        "tumor_voxels": int(sitk.GetArrayViewFromImage(tumor).sum()),
        "head_voxels": int(sitk.GetArrayViewFromImage(head).sum()),
        "n4": settings.n4,
        "n4_shrink": settings.n4_shrink,
        "seconds": {k: round(v, 3) for k, v in steps.seconds.items()},
    }
    data = _montage_data(
        patient_id, settings.sequences, resampled, zscored, log_fields, (tumor, head), stats
    )
    data.mask_source = source
    return record, data


def _predict_weak(
    predictor: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    brain: Mapping[str, np.ndarray],
    head_box: Box,
    settings: PreprocessSettings,
    grid: sitk.Image,
) -> tuple[sitk.Image, np.ndarray]:
    """The network's weak tumour on the grid (UInt8 0/1) and at the whole-brain size."""
    from .weak import weak_to_grid

    weak_brain = np.asarray(predictor(brain), dtype=np.uint8)
    expected = tuple(settings.brain_size[::-1])
    if weak_brain.shape != expected:
        raise VolumeError(f"weak mask of shape {weak_brain.shape}, expected {expected}")
    if not weak_brain.any():
        raise VolumeError("weak segmentation found no tumour")
    box = {"lo": list(head_box[0]), "size": list(head_box[1])}
    record = {"brain_box": box, "brain_size": list(settings.brain_size)}
    tumor = sitk.Cast(weak_to_grid(weak_brain, record, grid) > 0, sitk.sitkUInt8)
    if not sitk.GetArrayViewFromImage(tumor).any():
        raise VolumeError("weak segmentation found no tumour on the grid")
    return tumor, weak_brain
