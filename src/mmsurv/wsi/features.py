"""Reading patch feature files ("bags"): mmsurv's own, CLAM's and TRIDENT's.

Accepted layouts:

- HDF5 (``.h5``, ``.hdf5``) with a ``features`` dataset of shape (N, D) (or (1, N, D), as some
  CLAM files have; the batch axis is dropped) and, optionally, ``coords`` (N, 2) (or (1, N, 2))
  level-0 ``(x, y)``. Attributes may sit on the file (mmsurv), on ``coords`` (CLAM, TRIDENT:
  ``patch_size``, ``patch_level``, ``patch_size_level0``, ``level0_magnification`` ...) or on
  ``features``; they are merged, file attributes winning over dataset attributes.
- A torch file (``.pt``, ``.pth``) holding a (N, D) (or (1, N, D)) tensor, as CLAM writes
  (``pt_files/{slide}.pt``), or a dict with such a tensor under ``features`` (and optionally
  ``coords``). There are no coordinates in a bare tensor file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from .h5 import _plain

__all__ = ["load_bag", "BagError"]

_H5_SUFFIXES = (".h5", ".hdf5")
_TORCH_SUFFIXES = (".pt", ".pth")


class BagError(ValueError):
    """A feature file lacks ``features``, or its arrays have the wrong shapes."""


def _squeeze_batch(arr: np.ndarray) -> np.ndarray:
    """Drop a leading axis of size 1 from a 3-D array ((1, N, D) -> (N, D))."""
    return arr[0] if arr.ndim == 3 and arr.shape[0] == 1 else arr


def _read_h5(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    with h5py.File(path, "r") as f:
        if "features" not in f or not isinstance(f["features"], h5py.Dataset):
            raise BagError(
                f"{path}: no 'features' dataset (found: {', '.join(sorted(f.keys())) or 'none'})"
            )
        attrs: dict[str, Any] = {}
        for name in ("features", "coords"):
            if name in f:
                attrs.update({k: _plain(v) for k, v in f[name].attrs.items()})
        attrs.update({k: _plain(v) for k, v in f.attrs.items()})
        features = np.asarray(f["features"][()])
        coords = np.asarray(f["coords"][()]) if "coords" in f else None
    return features, coords, attrs


def _read_torch(path: Path) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for non-torch files
        raise BagError(f"{path}: cannot read torch feature file: {exc}") from exc
    coords = None
    if isinstance(obj, dict):
        if "features" not in obj:
            raise BagError(f"{path}: dict without a 'features' entry (keys: {sorted(obj)})")
        coords = obj.get("coords")
        obj = obj["features"]
    if not isinstance(obj, torch.Tensor):
        raise BagError(f"{path}: expected a (N, D) tensor of features, got {type(obj).__name__}")
    features = obj.detach().float().numpy()
    if isinstance(coords, torch.Tensor):
        coords = coords.numpy()
    return features, coords, {}


def load_bag(
    path: str | os.PathLike[str],
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Read a slide's patch features from an mmsurv, CLAM or TRIDENT feature file.

    Parameters
    ----------
    path
        ``.h5`` / ``.hdf5`` or ``.pt`` / ``.pth`` file (see the module doc for the layouts).

    Returns
    -------
    features : numpy.ndarray
        (N, D) float32.
    coords : numpy.ndarray or None
        (N, 2) int64 level-0 ``(x, y)``, or ``None`` when the file has none.
    attrs : dict
        The file's and datasets' attributes as plain Python values (empty for torch files).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    BagError
        If the file has no ``features``, they are not 2-D (after dropping a leading batch axis
        of size 1), ``coords`` is not (N, 2), or coords and features disagree in N. The message
        names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: feature file does not exist")
    suffix = path.suffix.lower()
    if suffix in _H5_SUFFIXES:
        features, coords, attrs = _read_h5(path)
    elif suffix in _TORCH_SUFFIXES:
        features, coords, attrs = _read_torch(path)
    else:
        raise BagError(f"{path}: unknown feature file type {suffix!r} (use .h5 or .pt)")
    features = _squeeze_batch(features)
    if features.ndim != 2:
        raise BagError(f"{path}: 'features' must be (N, D), got shape {features.shape}")
    features = np.ascontiguousarray(features, dtype=np.float32)
    if coords is not None:
        coords = _squeeze_batch(np.asarray(coords))
        if coords.ndim != 2 or coords.shape[1] != 2:
            raise BagError(f"{path}: 'coords' must be (N, 2), got shape {coords.shape}")
        if coords.shape[0] != features.shape[0]:
            raise BagError(f"{path}: {coords.shape[0]} coords but {features.shape[0]} feature rows")
        coords = np.ascontiguousarray(coords, dtype=np.int64)
    return features, coords, attrs
