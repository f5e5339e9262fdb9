"""DTI scalar maps of one patient: given maps, or a tensor fit of raw diffusion data (dipy).

A patient's maps are FA (unitless, 0..1) and MD, AD, RD (mm^2/s), as 3-D SimpleITK images on
one grid. They come either from the images sheet (channels ``fa``, ``md``, ``ad``, ``rd``) or
from a diffusion tensor fitted to the raw data (``dwi``: a 4-D NIfTI; ``bval``, ``bvec``: FSL
text files) with :class:`dipy.reconst.dti.TensorModel`. :func:`to_mask_grid` then puts them on
the tumour mask's grid.

Conventions: SimpleITK sizes, spacings and origins are (x, y, z) in mm; numpy arrays from
``sitk.GetArrayFromImage`` are (z, y, x); a 4-D DWI array is (z, y, x, volume) here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import SimpleITK as sitk

from mmsurv.mri.io import VolumeError, _itk_reason, read_volume
from mmsurv.mri.preprocess import _corner_points, check_same_geometry, resample_to

__all__ = [
    "MAPS",
    "RAW_CHANNELS",
    "DIFFUSIVITY_SCALE",
    "fit_tensor",
    "load_maps",
    "to_mask_grid",
]

_log = logging.getLogger(__name__)

#: The DTI scalar maps, in channel order.
MAPS: tuple[str, ...] = ("fa", "md", "ad", "rd")
#: Sheet channels of the raw diffusion data a tensor is fitted to.
RAW_CHANNELS: tuple[str, ...] = ("dwi", "bval", "bvec")
#: Fixed unit conversion of MD, AD and RD: mm^2/s x 1000 = 10^-3 mm^2/s (values near 1 in the
#: brain). FA is unitless and left unchanged. Not fitted to any data.
DIFFUSIVITY_SCALE = 1000.0

#: Largest corner distance (mm) between given maps that count as one grid.
_MAP_TOLERANCE_MM = 0.01
#: Fewest distinct diffusion directions that determine a tensor (6 unknowns besides S0).
_MIN_DIRECTIONS = 6
#: Two unit gradient directions with |cos| above this are one direction (about 1.8 degrees).
_SAME_DIRECTION_COS = 0.9995


def _who(patient: str) -> str | None:
    return patient or None


# --- raw diffusion data ---------------------------------------------------------------------


def _read_dwi(path: str | os.PathLike, patient: str) -> tuple[np.ndarray, sitk.Image]:
    """The DWI as a (z, y, x, n) float32 array and a 3-D float32 image of its first volume.

    The 3-D image carries the spatial geometry (origin, spacing, direction: the upper-left
    3 x 3 block of the 4-D direction) as SimpleITK reads it from the NIfTI header, the same
    way :func:`mmsurv.mri.io.read_mask` reads the mask. A 3-D image with several components
    per voxel (NIfTI vector intent) counts as one volume per component.
    """
    who = _who(patient)
    if not os.path.isfile(path):
        raise VolumeError("DWI file not found", path, who)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise VolumeError(f"cannot read the DWI ({_itk_reason(err)})", path, who) from err
    dim, comps = image.GetDimension(), image.GetNumberOfComponentsPerPixel()
    if dim == 4 and comps == 1:
        size = list(image.GetSize())
        first = sitk.Extract(image, [*size[:3], 0], [0, 0, 0, 0])
        data = np.moveaxis(sitk.GetArrayFromImage(image), 0, -1)  # (t, z, y, x) -> (z, y, x, t)
    elif dim == 3 and comps > 1:
        first = sitk.VectorIndexSelectionCast(image, 0)
        data = sitk.GetArrayFromImage(image)  # (z, y, x, components)
    else:
        shape = f"{dim}-D with {comps} value(s) per voxel"
        raise VolumeError(f"the DWI must be a 4-D volume series, got {shape}", path, who)
    data = data.astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        raise VolumeError("the DWI holds NaN or infinite values", path, who)
    return data, sitk.Cast(first, sitk.sitkFloat32)


def _distinct_directions(directions: np.ndarray) -> int:
    """Number of distinct axes among (n, 3) unit vectors (g and -g are one axis)."""
    kept: list[np.ndarray] = []
    for g in directions:
        if all(abs(float(g @ k)) < _SAME_DIRECTION_COS for k in kept):
            kept.append(g)
    return len(kept)


def _b_matrix_rank(directions: np.ndarray) -> int:
    """Rank of the (n, 6) design of the tensor's six elements (6: the tensor is determined)."""
    x, y, z = directions.T
    design = np.stack([x * x, y * y, z * z, 2 * x * y, 2 * x * z, 2 * y * z], axis=1)
    return int(np.linalg.matrix_rank(design, tol=1e-6))


def _gradients(
    bval_path: str | os.PathLike,
    bvec_path: str | os.PathLike,
    n_volumes: int,
    b0_threshold: float,
    patient: str,
    dwi_path: str | os.PathLike,
) -> Any:
    """dipy ``GradientTable`` of the FSL files, checked against the DWI and for a tensor fit."""
    from dipy.core.gradients import gradient_table
    from dipy.io import read_bvals_bvecs

    who = _who(patient)
    for path in (bval_path, bvec_path):
        if not os.path.isfile(path):
            raise VolumeError("b-value/b-vector file not found", path, who)
    try:
        bvals, bvecs = read_bvals_bvecs(str(bval_path), str(bvec_path))
    except (OSError, ValueError) as err:
        where = f"{bval_path} / {bvec_path}"
        raise VolumeError(f"cannot read the FSL b-values/b-vectors ({err})", where, who) from err
    bvals = np.asarray(bvals, dtype=np.float64).ravel()
    bvecs = np.asarray(bvecs, dtype=np.float64).reshape(-1, 3)
    if not (len(bvals) == len(bvecs) == n_volumes):
        raise VolumeError(
            f"the DWI has {n_volumes} volumes but {bval_path} lists {len(bvals)} b-values and "
            f"{bvec_path} {len(bvecs)} b-vectors",
            dwi_path,
            who,
        )
    try:
        gtab = gradient_table(bvals, bvecs=bvecs, b0_threshold=b0_threshold)
    except ValueError as err:
        raise VolumeError(f"invalid b-values/b-vectors ({err})", bvec_path, who) from err
    if not gtab.b0s_mask.any():
        raise VolumeError(
            f"no b=0 volume (no b-value <= b0_threshold {b0_threshold:g} s/mm^2; "
            f"b-values {sorted({float(b) for b in bvals})})",
            bval_path,
            who,
        )
    directions = gtab.bvecs[~gtab.b0s_mask]
    distinct = _distinct_directions(directions)
    if distinct < _MIN_DIRECTIONS or _b_matrix_rank(directions) < _MIN_DIRECTIONS:
        raise VolumeError(
            f"{distinct} distinct diffusion direction(s) of rank {_b_matrix_rank(directions)}: "
            f"a tensor needs at least {_MIN_DIRECTIONS} non-coplanar directions",
            bvec_path,
            who,
        )
    shells = sorted({round(float(b), -2) for b in bvals[~gtab.b0s_mask]})
    if len(shells) > 1 and shells[-1] > 1500.0:
        _log.warning(
            "patient %s: multi-shell DWI (shells ~%s s/mm^2): the tensor is fitted to every "
            "volume; the high shells bias MD/AD/RD downwards (non-Gaussian diffusion). Give a "
            "single-shell (b ~1000) series or the maps themselves.",
            patient,
            ", ".join(f"{b:g}" for b in shells),
        )
    if float(bvals.max()) < 100.0:
        _log.warning(
            "patient %s: largest b-value %g: b-values are expected in s/mm^2 (e.g. 1000)",
            patient,
            float(bvals.max()),
        )
    return gtab


def _otsu_brain(data: np.ndarray, b0s: np.ndarray) -> np.ndarray:
    """dipy ``median_otsu`` brain mask of the mean b=0 volume; (z, y, x) boolean."""
    from dipy.segment.mask import median_otsu

    mean_b0 = data[..., b0s].mean(axis=-1)
    _, mask = median_otsu(mean_b0, median_radius=2, numpass=1, finalize_mask=True)
    return np.asarray(mask, dtype=bool)


def _like(array: np.ndarray, reference: sitk.Image, pixel: int = sitk.sitkFloat32) -> sitk.Image:
    image = sitk.Cast(sitk.GetImageFromArray(array), pixel)
    image.CopyInformation(reference)
    return image


def fit_tensor(
    dwi_path: str | os.PathLike,
    bval_path: str | os.PathLike,
    bvec_path: str | os.PathLike,
    *,
    b0_threshold: float = 50.0,
    fit_method: str = "WLS",
    brain_mask: sitk.Image | None = None,
    patient: str = "",
) -> tuple[dict[str, sitk.Image], sitk.Image]:
    """Fit a diffusion tensor to raw DWI data and return its scalar maps.

    Parameters
    ----------
    dwi_path
        4-D NIfTI (x, y, z, n volumes), read with SimpleITK so that its spatial geometry is
        the one SimpleITK gives the masks and maps of the same session.
    bval_path, bvec_path
        FSL text files: n b-values (s/mm^2) on one row; 3 rows of n unit vectors (or n rows
        of 3). FA, MD, AD and RD do not change under a rotation or reflection of all the
        gradient vectors, so the frame of the b-vectors (voxel axes, with or without FSL's
        x flip) does not matter for these maps.
    b0_threshold
        Volumes with a b-value <= this (s/mm^2) are b=0 volumes.
    fit_method
        ``TensorModel`` fit method: "WLS" (weighted least squares), "OLS"/"LS", "NLLS", ...
    brain_mask
        Mask (nonzero inside) on the DWI's spatial grid; None: dipy ``median_otsu`` of the
        mean b=0 volume (median radius 2 voxels, one pass, islands and holes removed). Its
        Otsu threshold works on a 256-bin histogram: a nearly noiseless non-zero background
        that falls in the lowest bin can end up inside the mask (the fit is then noise
        there); pass a mask for such data.
    patient
        Named in every error.

    Returns
    -------
    maps : dict of str to SimpleITK.Image
        ``fa`` (unitless), ``md``, ``ad``, ``rd`` (mm^2/s for b in s/mm^2): 3-D float32 on
        the DWI's spatial grid, zero outside the brain mask.
    brain_mask : SimpleITK.Image
        UInt8 mask (1 inside) the tensor was fitted in, same grid.

    Raises
    ------
    VolumeError
        Missing or unreadable file, a DWI that is not 4-D, a number of volumes other than the
        number of b-values / b-vectors, no b=0 volume, fewer than 6 distinct (non-coplanar)
        diffusion directions, a brain mask of another geometry, or an empty brain mask.
    ValueError
        Unknown ``fit_method``.
    """
    from dipy.reconst.dti import TensorModel

    who = _who(patient)
    data, reference = _read_dwi(dwi_path, patient)
    gtab = _gradients(bval_path, bvec_path, data.shape[-1], b0_threshold, patient, dwi_path)
    if brain_mask is None:
        inside = _otsu_brain(data, gtab.b0s_mask)
    else:
        check_same_geometry(brain_mask, reference, 1.0, "brain mask", patient_id=who, path=dwi_path)
        inside = sitk.GetArrayFromImage(brain_mask) > 0
    if not inside.any():
        raise VolumeError("the brain mask of the DWI is empty", dwi_path, who)
    try:
        model = TensorModel(gtab, fit_method=fit_method)
    except (ValueError, KeyError) as err:
        raise ValueError(f"patient {patient}: DTI fit_method {fit_method!r}: {err}") from err
    fit = model.fit(data, mask=inside)
    maps = {}
    for name in MAPS:
        values = np.nan_to_num(np.asarray(getattr(fit, name), dtype=np.float64))
        maps[name] = _like(np.where(inside, values, 0.0).astype(np.float32), reference)
    _log.info(
        "patient %s: tensor fit (%s) of %d volumes in %d voxels",
        patient,
        fit_method,
        data.shape[-1],
        int(inside.sum()),
    )
    return maps, _like(inside.astype(np.uint8), reference, sitk.sitkUInt8)


# --- choosing the source --------------------------------------------------------------------


#: Accepted median of a given diffusivity map's non-zero voxels, mm^2/s (brain tissue is about
#: 0.7e-3, free water 3e-3): values outside are maps in other units (1e-3 mm^2/s, m^2/s).
DIFFUSIVITY_RANGE = (1e-4, 1e-2)


def _check_units(name: str, image: sitk.Image, path: str | os.PathLike, who: str | None) -> None:
    """Refuse a given map whose values are not in the units mmsurv expects: FA in [0, 1]
    (99th percentile of the non-zero voxels at most 1.01), MD/AD/RD in mm^2/s (median of the
    non-zero voxels within :data:`DIFFUSIVITY_RANGE`)."""
    values = sitk.GetArrayViewFromImage(image).astype(np.float64, copy=False).ravel()
    values = values[np.isfinite(values) & (values != 0)]
    if values.size == 0:
        raise VolumeError(f"the DTI map {name!r} has no non-zero voxel", path, who)
    if name == "fa":
        top = float(np.percentile(values, 99))
        if values.min() < 0 or top > 1.01:
            raise VolumeError(
                f"the FA map must lie in [0, 1]; its non-zero voxels span {values.min():.3g} to "
                f"{values.max():.3g} (99th percentile {top:.3g}): scaled FA (e.g. x1000)?",
                path,
                who,
            )
        return
    median = float(np.median(values))
    lo, hi = DIFFUSIVITY_RANGE
    if not lo <= median <= hi:
        raise VolumeError(
            f"the {name.upper()} map must be in mm^2/s (median of brain voxels {lo:g} to "
            f"{hi:g}, about 7e-4 in tissue); its non-zero voxels have median {median:.3g}: "
            "convert it (e.g. x1e-3 from 10^-3 mm^2/s or um^2/ms, x1e6 from m^2/s)",
            path,
            who,
        )


def _given_maps(files: Mapping[str, str | os.PathLike], patient: str) -> dict[str, sitk.Image]:
    """Read the four given maps, check their units (:func:`_check_units`) and that they share
    the grid of ``fa``."""
    who = _who(patient)
    maps = {name: read_volume(files[name], who) for name in MAPS}
    for name in MAPS:
        _check_units(name, maps[name], files[name], who)
    for name in MAPS[1:]:
        check_same_geometry(
            maps[name],
            maps[MAPS[0]],
            _MAP_TOLERANCE_MM,
            f"DTI map {name!r}",
            patient_id=who,
            path=files[name],
        )
    return maps


def load_maps(
    files: Mapping[str, str | os.PathLike], patient: str, **fit_kwargs: Any
) -> tuple[dict[str, sitk.Image], str]:
    """A patient's FA, MD, AD and RD maps, given or fitted.

    Parameters
    ----------
    files
        Channel -> path from the images sheet (other channels are ignored).
    patient
        Named in every error.
    **fit_kwargs
        Passed to :func:`fit_tensor` (``b0_threshold``, ``fit_method``, ``brain_mask``).

    Returns
    -------
    maps : dict of str to SimpleITK.Image
        :data:`MAPS` -> 3-D float32 image (FA unitless; MD, AD, RD in mm^2/s), one grid.
    source : str
        ``"given"`` when the sheet has all four maps (they win over raw data), else
        ``"tensor_fit"`` when it has ``dwi``, ``bval`` and ``bvec``.

    Raises
    ------
    VolumeError
        Neither complete (listing what the patient has), given maps of different grids or in
        other units (FA outside [0, 1], diffusivities not in mm^2/s), or any error of
        :func:`fit_tensor`.
    """
    if all(name in files for name in MAPS):
        return _given_maps(files, patient), "given"
    if all(name in files for name in RAW_CHANNELS):
        raw = (files[c] for c in RAW_CHANNELS)
        maps, _ = fit_tensor(*raw, patient=patient, **fit_kwargs)
        return maps, "tensor_fit"
    has = ", ".join(sorted(files)) or "none"
    missing_maps = ", ".join(m for m in MAPS if m not in files)
    missing_raw = ", ".join(c for c in RAW_CHANNELS if c not in files)
    raise VolumeError(
        f"no usable DTI: needs the maps {', '.join(MAPS)} (missing {missing_maps}) or the raw "
        f"{', '.join(RAW_CHANNELS)} (missing {missing_raw}); the sheet has: {has}",
        None,
        _who(patient),
    )


# --- onto the mask's grid -------------------------------------------------------------------


def _extent(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned physical bounding box (mm) of the voxel centres of ``image``."""
    corners = _corner_points(image)
    return corners.min(axis=0), corners.max(axis=0)


def _covered(image: sitk.Image, grid: sitk.Image) -> np.ndarray:
    """(z, y, x) boolean: the voxels of ``grid`` that fall inside ``image`` (nearest)."""
    ones = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(image)
    return sitk.GetArrayFromImage(resample_to(ones, grid, "nearest")) > 0


def to_mask_grid(
    maps: Mapping[str, sitk.Image], mask: sitk.Image, tolerance_mm: float = 1.0
) -> tuple[dict[str, sitk.Image], bool]:
    """Put the maps on the tumour mask's voxel grid.

    The maps and the mask come from the same session and scanner frame, so their physical
    (patient) coordinates already agree: this resamples the maps into the mask's frame
    (identity transform, linear interpolation, 0 outside the maps); it is not an
    intensity-based registration and corrects no motion between the acquisitions.

    Parameters
    ----------
    maps
        Name -> 3-D image, all on one grid (e.g. from :func:`load_maps`).
    mask
        Tumour mask whose grid (size, spacing, origin, direction) the result takes.
    tolerance_mm
        Grids of equal size whose 8 corner voxel centres lie within this distance (mm) count
        as the same grid (no resampling).

    Returns
    -------
    maps : dict of str to SimpleITK.Image
        The input images unchanged (same grid), else float32 images on the mask's grid.
    resampled : bool
        Whether the maps were resampled.

    Raises
    ------
    VolumeError
        When no voxel of the mask's grid lies inside the maps' extent (no overlap at all).
    """
    reference = next(iter(maps.values()))
    try:
        check_same_geometry(reference, mask, tolerance_mm, "DTI maps")
    except VolumeError as err:
        _log.info("resampling the DTI maps onto the mask grid: %s", err.reason)
    else:
        return dict(maps), False
    if not _covered(reference, mask).any():
        lo, hi = _extent(reference)
        mask_lo, mask_hi = _extent(mask)
        raise VolumeError(
            "the DTI maps and the tumour mask do not overlap in space: maps span "
            f"{np.round(lo, 1).tolist()}..{np.round(hi, 1).tolist()} mm, mask "
            f"{np.round(mask_lo, 1).tolist()}..{np.round(mask_hi, 1).tolist()} mm (x, y, z)"
        )
    out = {
        name: resample_to(sitk.Cast(image, sitk.sitkFloat32), mask, "linear")
        for name, image in maps.items()
    }
    return out, True
