"""Inputs of the multi-task MRI models: volumes, segmentation targets, labels, augmentation.

The ``.npz`` layout is described in :mod:`mmsurv.models.mtl_model`. Every function here works on
one patient's arrays or on labels; nothing is fitted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mmsurv.models.mtl_nets import is_binary_mask

__all__ = ["read_masks", "resize_volume", "augmenter", "label_values", "Scans"]

#: Kind of segmentation target of a training scan.
NONE, GT, BINARY = 0, 1, 2


def read_masks(
    path: str | os.PathLike[str], shape: Sequence[int], patient: str = ""
) -> tuple[np.ndarray | None, str | None]:
    """The tumour mask of one patient's ``.npz``: ``mask`` if present, else ``weak_mask``.

    Parameters
    ----------
    path
        The ``.npz`` of the patient's channels.
    shape
        Spatial shape (D, H, W) of the channels; the mask must have it.
    patient
        Patient id, for error messages.

    Returns
    -------
    tuple
        The mask (int64, (D, H, W)) and its name (``"mask"`` or ``"weak_mask"``), or
        ``(None, None)`` without either. A ``weak_mask`` must hold only 0 and 1.
    """
    who = f"patient {patient}: " if patient else ""
    with np.load(path, allow_pickle=False) as npz:
        for key in ("mask", "weak_mask"):
            if key not in npz.files:
                continue
            raw = np.asarray(npz[key])
            if raw.shape != tuple(shape):
                raise ValueError(
                    f"{who}{path}: {key} of shape {raw.shape}, the channels have {tuple(shape)}"
                )
            if not np.issubdtype(raw.dtype, np.integer) and not (
                np.isfinite(raw).all() and (raw == np.round(raw)).all()
            ):
                raise ValueError(f"{who}{path}: {key} holds non-integer labels")
            mask = raw.astype(np.int64)
            if key == "weak_mask" and not is_binary_mask(mask):
                raise ValueError(
                    f"{who}{path}: weak_mask must be 0/1, has {np.unique(mask).tolist()}"
                )
            return mask, key
    return None, None


def resize_volume(
    volume: np.ndarray, size_dhw: tuple[int, int, int] | None, mode: str
) -> np.ndarray:
    """(C, D, H, W) ``volume`` resized to ``size_dhw`` (``trilinear`` for intensities,
    ``nearest`` for labels); unchanged when ``size_dhw`` is None or already its size."""
    if size_dhw is None or tuple(volume.shape[1:]) == tuple(size_dhw):
        return volume
    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None]
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    out = F.interpolate(x, size=size_dhw, mode=mode, **kwargs)[0].numpy()
    return out.astype(volume.dtype) if mode == "nearest" else out


def augmenter(seed: int) -> Any:
    """Random flips of the two in-plane axes, one draw per sample for image and mask alike."""
    from monai.transforms import Compose, RandFlipd

    keys = ["image", "seg"]
    return Compose(
        [
            RandFlipd(keys, prob=0.5, spatial_axis=1, allow_missing_keys=True),
            RandFlipd(keys, prob=0.5, spatial_axis=2, allow_missing_keys=True),
        ]
    ).set_random_state(seed=seed)


def as_tensor(x: Any) -> torch.Tensor:
    from monai.utils import convert_to_tensor

    return convert_to_tensor(x, track_meta=False)


@dataclass
class Scans:
    """Inputs of n patients as CPU tensors (and, for training, their targets)."""

    ids: np.ndarray  # (n,) str
    images: torch.Tensor  # (n, C, D, H, W) float32
    scna: torch.Tensor | None  # (n, P) float32, standardised PCs
    seg: torch.Tensor | None = None  # (n, D, H, W) uint8 class indices (0 where none)
    kind: np.ndarray | None = None  # (n,) NONE / GT / BINARY

    def __len__(self) -> int:
        return len(self.ids)


def label_values(labels: pd.Series, ids: np.ndarray) -> np.ndarray:
    """Labels of ``ids`` as float (0, 1 or NaN for unlabeled), checked."""
    series = pd.Series(labels).copy()
    series.index = series.index.astype(str)
    if not series.index.is_unique:
        dup = series.index[series.index.duplicated()].unique()
        raise ValueError(f"labels: duplicate patient ids {list(dup[:5])}")
    values = pd.to_numeric(series, errors="coerce").astype(float)
    bad = series.index[(values.isna() & series.notna()) | ~(values.isin([0, 1]) | values.isna())]
    if len(bad):
        raise ValueError(
            f"labels must be 0, 1 or missing; patient(s) {list(bad[:5])} have "
            f"{series.loc[bad[:5]].tolist()}"
        )
    return values.reindex(ids).to_numpy(dtype=float)
