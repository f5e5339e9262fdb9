"""The outcome of tiling one slide."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TilingResult"]


@dataclass(frozen=True, eq=False)
class TilingResult:
    """Tiles chosen on one slide.

    Magnification follows the usual convention ``magnification = 10 / mpp``
    (0.5 um/px is about 20x, 0.25 um/px about 40x).

    Attributes
    ----------
    coords
        (N, 2) int64 level-0 ``(x, y)`` pixel of each tile's top-left corner, in row-major grid
        order (by y, then x).
    tissue_fraction
        (N,) float32 fraction (0..1) of each tile covered by the tissue mask.
    level
        Pyramid level the tiles are read from.
    read_downsample
        Factor (>= 1) by which a region read at ``level`` is shrunk to the target resolution:
        a tile is ``read_size_px`` square at ``level``, resized to ``tile_size_px``.
    mpp
        Target pixel size of the tiles in um/px.
    mpp0
        Level-0 pixel size of the slide in um/px.
    magnification
        Nominal magnification of the tiles, ``10 / mpp``.
    tile_size_px
        Tile edge in pixels at the target resolution.
    tile_size_um
        Tile edge in microns (``tile_size_px * mpp``).
    tile_size_level0_px
        Tile edge in level-0 pixels (``tile_size_um / mpp0``; also the grid step).
    n_grid
        Number of grid positions that fit in the slide.
    n_candidates
        Grid tiles with at least the minimum tissue fraction (before the ``max_tiles`` cap).
    mask
        (H, W) bool tissue mask.
    mask_downsample
        ``(x, y)`` level-0 pixels per mask pixel.
    mask_mpp
        Pixel size of the mask in um/px.
    slide_dimensions
        Level-0 ``(width, height)`` in pixels.
    level_downsample
        Downsample of ``level`` relative to level 0.
    """

    coords: np.ndarray
    tissue_fraction: np.ndarray
    level: int
    read_downsample: float
    mpp: float
    mpp0: float
    magnification: float
    tile_size_px: int
    tile_size_um: float
    tile_size_level0_px: float
    n_grid: int
    n_candidates: int
    mask: np.ndarray
    mask_downsample: tuple[float, float]
    mask_mpp: float
    slide_dimensions: tuple[int, int]
    level_downsample: float

    @property
    def n_tiles(self) -> int:
        """Number of tiles kept."""
        return int(self.coords.shape[0])

    @property
    def read_size_px(self) -> int:
        """Edge in pixels of the square region read at ``level`` for one tile."""
        return max(1, round(self.tile_size_px * self.read_downsample))
