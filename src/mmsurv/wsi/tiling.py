"""Tiling a whole slide at a physical resolution: a grid of tiles on tissue, sampled with a seed.

Tile coordinates come from the low-resolution tissue mask alone; no full-resolution pixels are
read to choose them (a handful of tiles are read at the end to check that the slide's tile data
decodes).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import openslide

from .grid import tile_grid, tissue_fractions
from .levels import choose_level
from .result import TilingResult
from .slide import SlideError, open_slide, openslide_errors, slide_mpp
from .tissue import TissueParams, tissue_mask

__all__ = ["tile_slide", "tile_open_slide"]

_log = logging.getLogger("mmsurv.wsi.tiling")


def _check_args(
    target_mpp: float, tile_size_px: int, min_frac: float, max_tiles: int | None
) -> None:
    """Raise ValueError on out-of-range tiling parameters."""
    if not (math.isfinite(target_mpp) and target_mpp > 0):
        raise ValueError(f"target_mpp must be a positive number of um/px, got {target_mpp}")
    if int(tile_size_px) != tile_size_px or tile_size_px < 1:
        raise ValueError(f"tile_size_px must be a positive integer, got {tile_size_px}")
    if not 0.0 <= min_frac <= 1.0:
        raise ValueError(f"min_tissue_fraction must be in [0, 1], got {min_frac}")
    if max_tiles is not None and max_tiles < 1:
        raise ValueError(f"max_tiles must be >= 1 or None, got {max_tiles}")


def tile_open_slide(
    slide: openslide.AbstractSlide,
    mpp0: float,
    *,
    target_mpp: float = 0.5,
    tile_size_px: int = 256,
    min_tissue_fraction: float = 0.5,
    max_tiles: int | None = 2000,
    seed: int = 0,
    tissue: TissueParams | None = None,
) -> TilingResult:
    """Tile an already open slide whose level-0 pixel size is known (see :func:`tile_slide`).

    Raises
    ------
    ValueError
        If the slide's finest level is coarser than ``target_mpp`` or a parameter is invalid.
    SlideError
        If OpenSlide cannot read the low-resolution level.
    """
    _check_args(target_mpp, tile_size_px, min_tissue_fraction, max_tiles)
    level, factor = choose_level(slide.level_downsamples, mpp0, target_mpp)
    width, height = slide.dimensions
    step = tile_size_px * target_mpp / mpp0
    grid = tile_grid(width, height, step)

    tm = tissue_mask(slide, mpp0, tissue)
    fractions = tissue_fractions(tm.mask, tm.downsample, grid, step)
    candidates = np.flatnonzero(fractions >= min_tissue_fraction)
    chosen = candidates
    if max_tiles is not None and candidates.size > max_tiles:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(candidates, size=max_tiles, replace=False))
    return TilingResult(
        coords=grid[chosen],
        tissue_fraction=fractions[chosen],
        level=level,
        read_downsample=factor,
        mpp=float(target_mpp),
        mpp0=float(mpp0),
        magnification=10.0 / target_mpp,
        tile_size_px=int(tile_size_px),
        tile_size_um=tile_size_px * target_mpp,
        tile_size_level0_px=step,
        n_grid=int(grid.shape[0]),
        n_candidates=int(candidates.size),
        mask=tm.mask,
        mask_downsample=tm.downsample,
        mask_mpp=tm.mpp,
        slide_dimensions=(int(width), int(height)),
        level_downsample=float(slide.level_downsamples[level]),
    )


def _verify_reads(
    slide: openslide.AbstractSlide, result: TilingResult, n: int, name: str | os.PathLike[str]
) -> None:
    """Read ``n`` evenly spaced kept tiles so that damaged tile data fails the tiling job."""
    if n <= 0 or result.n_tiles == 0:
        return
    size = (result.read_size_px, result.read_size_px)
    picks = np.unique(np.linspace(0, result.n_tiles - 1, min(n, result.n_tiles)).astype(int))
    with openslide_errors(name):
        for i in picks:
            x, y = result.coords[i]
            slide.read_region((int(x), int(y)), result.level, size)


def tile_slide(
    path: str | os.PathLike[str],
    *,
    target_mpp: float = 0.5,
    tile_size_px: int = 256,
    min_tissue_fraction: float = 0.5,
    max_tiles: int | None = 2000,
    seed: int = 0,
    mpp_override: float | None = None,
    default_mpp: float | None = None,
    tissue: TissueParams | None = None,
    verify_reads: int = 4,
) -> TilingResult:
    """Choose the tiles of one slide.

    A grid of non-overlapping square tiles of ``tile_size_px`` pixels at ``target_mpp`` um/px
    (``tile_size_px * target_mpp / mpp0`` level-0 pixels each) covers the slide; tiles that fit
    entirely inside it and whose tissue fraction (from the low-resolution mask) is at least
    ``min_tissue_fraction`` are candidates; if there are more than ``max_tiles``, that many are
    drawn without replacement with ``numpy.random.default_rng(seed)`` and kept in grid order.

    Parameters
    ----------
    path
        Slide file (any format OpenSlide reads).
    target_mpp
        Tile pixel size in um/px (0.5 um/px is about 20x, since magnification = 10 / mpp).
    tile_size_px
        Tile edge in pixels at ``target_mpp``.
    min_tissue_fraction
        Minimum fraction (0..1) of a tile covered by tissue.
    max_tiles
        Most tiles kept per slide; ``None`` keeps all candidates.
    seed
        Seed of the tile sample.
    mpp_override
        The slides sheet's ``mpp`` value (um/px), used when the slide has no metadata.
    default_mpp
        Explicit configuration default (um/px), used when neither the slide nor the sheet has one.
    tissue
        Tissue segmentation parameters; defaults of :class:`TissueParams` when ``None``.
    verify_reads
        Number of kept tiles read back at the end to check that the slide's tile data decodes
        (0 to skip).

    Returns
    -------
    TilingResult
        Coordinates, resolution and level choice, counts and the tissue mask.

    Raises
    ------
    SlideError
        If the slide is missing, unreadable, truncated, has no pixel size, or is coarser than
        ``target_mpp``. The message names the file.
    ValueError
        If a parameter is out of range.
    """
    started = time.perf_counter()
    path = Path(path)
    _check_args(target_mpp, tile_size_px, min_tissue_fraction, max_tiles)
    with open_slide(path) as slide:
        mpp0 = slide_mpp(slide, mpp_override, default_mpp)
        try:
            choose_level(slide.level_downsamples, mpp0, target_mpp)
        except ValueError as exc:
            raise SlideError(f"{path}: {exc}") from exc
        result = tile_open_slide(
            slide,
            mpp0,
            target_mpp=target_mpp,
            tile_size_px=tile_size_px,
            min_tissue_fraction=min_tissue_fraction,
            max_tiles=max_tiles,
            seed=seed,
            tissue=tissue,
        )
        _verify_reads(slide, result, verify_reads, path)
    seconds = time.perf_counter() - started
    if result.n_tiles == 0:
        _log.warning("%s: no tile has %.0f%% tissue", path.name, 100 * min_tissue_fraction)
    _log.info(
        "%s: %d tiles of %d px at %.3g um/px (%.0fx) from level %d (resize 1/%.3g, mpp0 %.3g); "
        "%d of %d grid tiles on tissue; %.2f s",
        path.name,
        result.n_tiles,
        tile_size_px,
        target_mpp,
        result.magnification,
        result.level,
        result.read_downsample,
        mpp0,
        result.n_candidates,
        result.n_grid,
        seconds,
    )
    return result
