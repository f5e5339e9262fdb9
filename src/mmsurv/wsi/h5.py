"""Tile coordinate files (``results/wsi/tiles/{slide}.h5``) in the CLAM/TRIDENT layout.

Layout:

- dataset ``coords``: (N, 2) int64 level-0 ``(x, y)`` of each tile's top-left corner, with
  attributes ``patch_size`` (tile edge in px at the target resolution), ``patch_level`` (pyramid
  level read), ``patch_size_level0`` (tile edge in level-0 px, rounded), ``target_magnification``,
  ``level0_magnification`` and ``name`` (the slide id), which CLAM- and TRIDENT-style readers use;
- dataset ``tissue_fraction``: (N,) float32 tissue fraction of each tile;
- file attributes ``patch_size``, ``patch_size_level0``, ``level``, ``downsample`` (factor from
  ``level`` to the target), ``mpp`` (target um/px), ``mpp0`` (level-0 um/px),
  ``magnification`` (``10 / mpp``), ``tile_size_um``, ``slide_id``, ``n_candidates``, ``n_grid``,
  ``slide_width``, ``slide_height`` and ``mmsurv_version``.

Note that CLAM's own reader reads ``patch_size`` pixels at ``patch_level``; that matches these
tiles only when ``downsample`` is 1. TRIDENT-style readers use ``patch_size_level0``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmsurv import __version__
from mmsurv.io import atomic_path

from .result import TilingResult

__all__ = ["write_tiles_h5", "read_tiles_h5"]

_log = logging.getLogger("mmsurv.wsi.h5")


def write_tiles_h5(result: TilingResult, path: str | os.PathLike[str], slide_id: str) -> Path:
    """Write a slide's tiles to an HDF5 file, atomically (temporary file, then rename).

    Parameters
    ----------
    result
        The tiling of the slide.
    path
        Output ``.h5`` path; parent folders are created.
    slide_id
        The slide's id (stored as the ``slide_id`` attribute).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    size_level0 = round(result.tile_size_level0_px)
    attrs: dict[str, Any] = {
        "patch_size": result.tile_size_px,
        "patch_size_level0": size_level0,
        "level": result.level,
        "downsample": result.read_downsample,
        "mpp": result.mpp,
        "mpp0": result.mpp0,
        "magnification": result.magnification,
        "tile_size_um": result.tile_size_um,
        "slide_id": slide_id,
        "n_candidates": result.n_candidates,
        "n_grid": result.n_grid,
        "slide_width": result.slide_dimensions[0],
        "slide_height": result.slide_dimensions[1],
        "mmsurv_version": __version__,
    }
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        coords = f.create_dataset("coords", data=result.coords.astype(np.int64).reshape(-1, 2))
        coords.attrs["patch_size"] = result.tile_size_px
        coords.attrs["patch_level"] = result.level
        coords.attrs["patch_size_level0"] = size_level0
        coords.attrs["target_magnification"] = result.magnification
        coords.attrs["level0_magnification"] = 10.0 / result.mpp0
        coords.attrs["name"] = slide_id
        f.create_dataset("tissue_fraction", data=result.tissue_fraction.astype(np.float32))
        f.attrs.update(attrs)
    _log.debug("%s: wrote %d tile coordinates", path, result.n_tiles)
    return path


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python scalar or string."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_tiles_h5(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a tile file written by :func:`write_tiles_h5` (or a CLAM/TRIDENT patch file).

    Parameters
    ----------
    path
        The ``.h5`` file.

    Returns
    -------
    coords : numpy.ndarray
        (N, 2) int64 level-0 ``(x, y)``.
    attrs : dict
        The file's attributes merged with those of ``coords`` (file attributes win), as plain
        Python values.
    """
    with h5py.File(path, "r") as f:
        coords = np.asarray(f["coords"][()], dtype=np.int64).reshape(-1, 2)
        attrs = {k: _plain(v) for k, v in f["coords"].attrs.items()}
        attrs.update({k: _plain(v) for k, v in f.attrs.items()})
    return coords, attrs
