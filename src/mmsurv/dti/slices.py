"""The 16-slice DTI input of one patient (Yan et al. 2021): 4 axial slices x 4 maps, cropped.

The study derives "a 3D bounding box containing just the entire tumor" from the tumour
contours, extracts "4 equally-spaced axial slices within the tumor" from each of the FA, MD,
AD and RD maps, crops them with the box and uses the 16 crops "as a single sample". Here:

- the box is the tightest (z, y, x) box around every tumour voxel (:func:`tumor_bounding_box`);
- the slices are the centres of ``n`` equal sections of the box's depth
  (:func:`slice_positions`);
- each slice is cropped to the box in plane (optionally grown by a margin), resized to a fixed
  (H, W) with bilinear interpolation, and the diffusivities are scaled to 10^-3 mm^2/s
  (:data:`mmsurv.dti.maps.DIFFUSIVITY_SCALE`); the stack is map-major: FA at the n depths,
  then MD, AD, RD (:func:`extract_slices`).

Arrays are numpy (z, y, x) with axis 0 axial (see :func:`mmsurv.dti.stage.prepare_patient`,
which reorients the volumes to LPS first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.ndimage import zoom

from mmsurv.io import atomic_path
from mmsurv.mri.io import VolumeError

from .maps import DIFFUSIVITY_SCALE, MAPS

__all__ = [
    "tumor_bounding_box",
    "slice_positions",
    "extract_slices",
    "tumor_crops",
    "plot_slices",
    "map_scale",
]

_log = logging.getLogger(__name__)

#: Unit of each map in the stacked slices.
_UNITS = {"fa": "", "md": "1e-3 mm^2/s", "ad": "1e-3 mm^2/s", "rd": "1e-3 mm^2/s"}


def map_scale(name: str) -> float:
    """Factor a map is multiplied by in the slices: 1 for FA, :data:`DIFFUSIVITY_SCALE` else."""
    return 1.0 if name == "fa" else DIFFUSIVITY_SCALE


def tumor_bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Tightest box around the tumour voxels.

    Parameters
    ----------
    mask
        (z, y, x) array, nonzero = tumour.

    Returns
    -------
    tuple of slice
        (z, y, x) slices with ``start`` the first and ``stop`` one past the last tumour index.

    Raises
    ------
    VolumeError
        When the mask has no tumour voxel.
    ValueError
        When ``mask`` is not 3-D.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"tumor mask must be a 3-D (z, y, x) array, got shape {mask.shape}")
    where = np.nonzero(mask)
    if not where[0].size:
        raise VolumeError("tumour mask is empty: no bounding box")
    z, y, x = (slice(int(a.min()), int(a.max()) + 1) for a in where)
    return z, y, x


def slice_positions(z_start: int, z_stop: int, n: int = 4) -> np.ndarray:
    """``n`` equally spaced axial slice indices inside ``[z_start, z_stop)``.

    The box's depth ``d = z_stop - z_start`` is cut into ``n`` equal sections and the slice
    nearest below each section's centre is taken: ``floor(z_start + (k + 0.5) d / n)`` for
    ``k = 0 .. n - 1`` (computed in integers). With ``d >= n`` the indices are strictly
    increasing (consecutive centres are ``d / n >= 1`` apart); a thinner box repeats slices
    (non-decreasing). Every index lies inside the box.

    Parameters
    ----------
    z_start, z_stop
        First and one-past-last slice of the box (``z_stop > z_start``).
    n
        Number of slices (>= 1).

    Returns
    -------
    numpy.ndarray
        (n,) int64 slice indices.
    """
    depth = int(z_stop) - int(z_start)
    if depth < 1 or n < 1:
        raise ValueError(f"need z_stop > z_start and n >= 1, got [{z_start}, {z_stop}), n={n}")
    k = np.arange(n, dtype=np.int64)
    return int(z_start) + ((2 * k + 1) * depth) // (2 * n)


def _margins(margin_vox: int | Sequence[int]) -> tuple[int, int]:
    """(rows, columns) margin in voxels from one int or a pair."""
    pair = (margin_vox, margin_vox) if np.isscalar(margin_vox) else tuple(margin_vox)
    if len(pair) != 2 or min(int(m) for m in pair) < 0:
        raise ValueError(f"margin_vox must be >= 0 (one int or (rows, cols)), got {margin_vox}")
    return int(pair[0]), int(pair[1])


def _resize(plane: np.ndarray, size: tuple[int, int], order: int = 1) -> np.ndarray:
    """(h, w) -> ``size`` (H, W) by spline interpolation of ``order`` (1: bilinear).

    The corner pixel centres of the crop map onto the corner pixel centres of the result.
    """
    factors = (size[0] / plane.shape[0], size[1] / plane.shape[1])
    out = zoom(plane.astype(np.float64), factors, order=order, mode="nearest", grid_mode=False)
    if out.shape != tuple(size):  # guard zoom's rounding of the output shape
        raise AssertionError(f"resized to {out.shape}, expected {size}")
    return out


def _crop_box(
    shape: tuple[int, ...], box: tuple[slice, slice, slice], margins: tuple[int, int]
) -> tuple[slice, slice]:
    """In-plane (y, x) crop: the box grown by ``margins`` and clipped to the volume."""
    (_, ys, xs), (my, mx) = box, margins
    y = slice(max(ys.start - my, 0), min(ys.stop + my, shape[1]))
    x = slice(max(xs.start - mx, 0), min(xs.stop + mx, shape[2]))
    return y, x


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    if len(size) != 2 or min(int(s) for s in size) < 1:
        raise ValueError(f"size must be (H, W) positive integers, got {size}")
    return int(size[0]), int(size[1])


def extract_slices(
    maps: Mapping[str, np.ndarray],
    tumor: np.ndarray,
    *,
    n_slices: int = 4,
    size: tuple[int, int] = (64, 64),
    margin_vox: int | tuple[int, int] = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Crop ``n_slices`` axial slices of each map to the tumour box and stack them.

    Parameters
    ----------
    maps
        :data:`~mmsurv.dti.maps.MAPS` -> (z, y, x) array (FA unitless; MD, AD, RD in mm^2/s),
        all of the shape of ``tumor``.
    tumor
        (z, y, x) boolean tumour mask; axis 0 is axial.
    n_slices
        Slices per map (:func:`slice_positions` inside the tumour's z range).
    size
        (H, W) pixels every crop is resized to (bilinear).
    margin_vox
        In-plane margin added to the box on each side, in voxels: one int, or (rows, cols);
        the grown box is clipped to the volume.

    Returns
    -------
    slices : numpy.ndarray
        (len(MAPS) * n_slices, H, W) float32, map-major (fa at each slice in increasing z,
        then md, ad, rd); FA unitless, diffusivities in 10^-3 mm^2/s.
    record : dict
        ``box`` (tight tumour box: ``z``, ``y``, ``x`` -> [start, stop), stop exclusive),
        ``crop`` (in-plane crop with the margin: ``y``, ``x`` -> [start, stop)),
        ``margin_vox`` ([rows, cols]), ``slices`` (z indices), ``size`` ([H, W]), ``order``
        (``"fa@z12"`` ... one per output slice) and ``scale`` (map -> factor applied).

    Raises
    ------
    VolumeError
        Empty tumour, or a non-finite value in a crop.
    ValueError
        A missing map, shapes that differ, bad ``n_slices``, ``size`` or ``margin_vox``.
    """
    tumor = np.asarray(tumor, dtype=bool)
    missing = [name for name in MAPS if name not in maps]
    if missing:
        raise ValueError(f"DTI maps {missing} missing (need {', '.join(MAPS)})")
    for name in MAPS:
        if np.shape(maps[name]) != tumor.shape:
            raise ValueError(
                f"DTI map {name!r} has shape {np.shape(maps[name])}, the tumour {tumor.shape}"
            )
    height, width = _check_size(size)
    box = tumor_bounding_box(tumor)
    margins = _margins(margin_vox)
    y, x = _crop_box(tumor.shape, box, margins)
    z = slice_positions(box[0].start, box[0].stop, n_slices)
    out = np.empty((len(MAPS) * n_slices, height, width), dtype=np.float32)
    order = []
    for m, name in enumerate(MAPS):
        volume = np.asarray(maps[name])
        for s, index in enumerate(z):
            crop = volume[int(index), y, x]
            if not np.isfinite(crop).all():
                raise VolumeError(f"DTI map {name!r} has non-finite values in slice z={index}")
            out[m * n_slices + s] = _resize(crop, (height, width)) * map_scale(name)
            order.append(f"{name}@z{int(index)}")
    record = {
        "box": {axis: [s.start, s.stop] for axis, s in zip("zyx", box, strict=True)},
        "crop": {"y": [y.start, y.stop], "x": [x.start, x.stop]},
        "margin_vox": list(margins),
        "slices": [int(i) for i in z],
        "size": [height, width],
        "order": order,
        "scale": {name: map_scale(name) for name in MAPS},
    }
    return out, record


def tumor_crops(tumor: np.ndarray, record: Mapping[str, Any]) -> np.ndarray:
    """The tumour mask cropped and resized like the slices of ``record``.

    Parameters
    ----------
    tumor
        (z, y, x) boolean tumour mask given to :func:`extract_slices`.
    record
        Its record (``crop``, ``slices``, ``size``).

    Returns
    -------
    numpy.ndarray
        (n_slices, H, W) float32 in 0..1 (bilinear); its 0.5 level is the tumour outline.
    """
    tumor = np.asarray(tumor, dtype=np.float32)
    y, x = (slice(*record["crop"][axis]) for axis in "yx")
    size = (int(record["size"][0]), int(record["size"][1]))
    planes = [_resize(tumor[int(z), y, x], size) for z in record["slices"]]
    return np.clip(np.stack(planes), 0.0, 1.0).astype(np.float32)


def _row_range(values: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentiles of a row's pixels (an interval of width > 0)."""
    low, high = (float(v) for v in np.percentile(values, [1.0, 99.0]))
    return (low, high) if high > low else (low, low + 1e-6 + abs(low) * 1e-3)


def plot_slices(
    slices: np.ndarray,
    order: Sequence[str],
    path: str | os.PathLike,
    title: str,
    tumor_contours: np.ndarray | None = None,
    dpi: int = 100,
) -> None:
    """Write a montage of the stacked slices as a PNG, atomically.

    Parameters
    ----------
    slices
        (n_maps * n_slices, H, W) stack from :func:`extract_slices`.
    order
        Its ``order`` labels (``"fa@z12"`` ...): rows are the maps, columns the slices.
    path
        Destination ``.png``; parent folders are created.
    title
        Figure title (patient, sources).
    tumor_contours
        Optional (n_slices, H, W) resized tumour crops (:func:`tumor_crops`), drawn as a red
        outline (0.5 level) on each map's slice at that position.
    dpi
        Resolution of the PNG.

    Raises
    ------
    ValueError
        When ``order`` does not match ``slices``, or the contours have another shape.
    """
    slices = np.asarray(slices)
    names = list(dict.fromkeys(label.split("@", 1)[0] for label in order))
    if slices.ndim != 3 or len(order) != slices.shape[0] or slices.shape[0] % len(names):
        raise ValueError(f"{len(order)} labels for slices of shape {slices.shape}")
    n_cols = slices.shape[0] // len(names)
    if tumor_contours is not None and np.shape(tumor_contours) != (n_cols, *slices.shape[1:]):
        raise ValueError(
            f"tumour contours of shape {np.shape(tumor_contours)}, expected "
            f"{(n_cols, *slices.shape[1:])}"
        )
    fig = Figure(figsize=(1.9 * n_cols + 1.2, 1.9 * len(names) + 0.7))
    FigureCanvasAgg(fig)  # render with Agg whatever pyplot's backend is
    axes = fig.subplots(len(names), n_cols, squeeze=False)
    for r, name in enumerate(names):
        row = slices[r * n_cols : (r + 1) * n_cols]
        low, high = _row_range(row)
        for c, ax in enumerate(axes[r]):
            shown = ax.imshow(row[c], cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            contour = None if tumor_contours is None else np.asarray(tumor_contours[c])
            if contour is not None and contour.min() < 0.5 < contour.max():
                ax.contour(contour, levels=[0.5], colors="red", linewidths=0.7)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:  # every row shows the same slice positions
                ax.set_title(order[c].split("@", 1)[-1], fontsize=8)
        unit = _UNITS.get(name, "")
        label = f"{name}\n{low:.3g}..{high:.3g}" + (f"\n{unit}" if unit else "")
        axes[r][0].set_ylabel(label, fontsize=8)
        fig.colorbar(shown, ax=list(axes[r]), fraction=0.02, pad=0.01)
    fig.suptitle(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    _log.debug("wrote DTI montage %s", path)
