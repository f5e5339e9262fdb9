"""Tile grids on a slide and the tissue fraction of each tile."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["tile_grid", "tissue_fractions"]


def tile_grid(width: int, height: int, step: float) -> np.ndarray:
    """Top-left corners of the non-overlapping square tiles that fit entirely in a slide.

    Parameters
    ----------
    width, height
        Level-0 slide size in pixels.
    step
        Tile edge (and grid step) in level-0 pixels; need not be an integer.

    Returns
    -------
    numpy.ndarray
        (N, 2) int64 level-0 ``(x, y)``, ``floor(i * step)``, in row-major order (by y, then x).
    """
    nx = int(math.floor(width / step + 1e-9))
    ny = int(math.floor(height / step + 1e-9))
    gy, gx = np.mgrid[0:ny, 0:nx]
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float64) * step
    return np.floor(grid + 1e-6).astype(np.int64).reshape(-1, 2)


def _integral_at(sat: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Area of the mask in ``[0, x) x [0, y)`` for fractional mask coordinates.

    ``sat`` is the (H+1, W+1) summed-area table; within a pixel the integral is bilinear in
    (x, y), so bilinear interpolation of the table is exact.
    """
    h, w = sat.shape[0] - 1, sat.shape[1] - 1
    x = np.clip(x, 0.0, w)
    y = np.clip(y, 0.0, h)
    i = np.minimum(np.floor(y).astype(np.intp), max(h - 1, 0))
    j = np.minimum(np.floor(x).astype(np.intp), max(w - 1, 0))
    fy, fx = y - i, x - j
    i1, j1 = np.minimum(i + 1, h), np.minimum(j + 1, w)
    top = sat[i, j] * (1 - fx) + sat[i, j1] * fx
    bottom = sat[i1, j] * (1 - fx) + sat[i1, j1] * fx
    return top * (1 - fy) + bottom * fy


def tissue_fractions(
    mask: np.ndarray,
    mask_downsample: tuple[float, float],
    coords: np.ndarray,
    size_level0_px: float,
) -> np.ndarray:
    """Fraction of each square tile covered by a tissue mask (exact area overlap).

    Parameters
    ----------
    mask
        (H, W) bool tissue mask.
    mask_downsample
        ``(x, y)`` level-0 pixels per mask pixel.
    coords
        (N, 2) level-0 ``(x, y)`` top-left corners.
    size_level0_px
        Tile edge in level-0 pixels.

    Returns
    -------
    numpy.ndarray
        (N,) float32 in 0..1; area outside the mask counts as background.
    """
    sat = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.float64)
    sat[1:, 1:] = mask.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    dx, dy = mask_downsample
    x0 = coords[:, 0] / dx
    y0 = coords[:, 1] / dy
    x1 = (coords[:, 0] + size_level0_px) / dx
    y1 = (coords[:, 1] + size_level0_px) / dy
    area = (
        _integral_at(sat, x1, y1)
        - _integral_at(sat, x0, y1)
        - _integral_at(sat, x1, y0)
        + _integral_at(sat, x0, y0)
    )
    return np.clip(area / ((x1 - x0) * (y1 - y0)), 0.0, 1.0).astype(np.float32)
