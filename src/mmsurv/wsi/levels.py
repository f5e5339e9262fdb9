"""Choosing the pyramid level to read tiles of a given physical resolution from.

Tiles are defined by physical resolution (microns per pixel), not by pyramid level: they are
read from the lowest-resolution level that is still at least as fine as the target and, when that
level is finer than the target, downsampled to it. A level coarser than the target is never
upsampled.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["LevelChoice", "choose_level", "LEVEL_REL_TOL"]

_log = logging.getLogger("mmsurv.wsi.levels")

#: Relative tolerance on pixel sizes: a level within 1 % of the target counts as matching it.
LEVEL_REL_TOL = 0.01


class LevelChoice(NamedTuple):
    """Where to read tiles of a target resolution.

    Attributes
    ----------
    level
        Pyramid level to read (0 = full resolution).
    read_downsample
        Factor (>= 1) by which pixels read at ``level`` must be downsampled to reach the
        target; exactly 1.0 when the level matches the target within the tolerance.
    """

    level: int
    read_downsample: float


def choose_level(
    level_downsamples: Sequence[float],
    mpp0: float,
    target_mpp: float,
    *,
    rel_tol: float = LEVEL_REL_TOL,
) -> LevelChoice:
    """Pick the coarsest pyramid level that is still at least as fine as ``target_mpp``.

    Parameters
    ----------
    level_downsamples
        Downsample of each level relative to level 0 (OpenSlide's ``level_downsamples``;
        level 0 has 1.0).
    mpp0
        Level-0 pixel size in um/px.
    target_mpp
        Wanted pixel size in um/px.
    rel_tol
        Relative tolerance: a level whose pixel size is at most ``target_mpp * (1 + rel_tol)``
        counts as fine enough, and a downsample factor within ``rel_tol`` of 1 becomes 1.0.

    Returns
    -------
    LevelChoice
        ``(level, read_downsample)`` with ``level_mpp * read_downsample == target_mpp``
        (up to the tolerance).

    Raises
    ------
    ValueError
        If ``mpp0`` or ``target_mpp`` is not positive, there are no levels, or even the finest
        level is coarser than the target (upsampling would invent detail).

    Examples
    --------
    A 0.25 um/px slide with levels (1, 4, 16) read at 0.5 um/px: level 0, downsampled by 2.

    >>> choose_level((1.0, 4.0, 16.0), 0.25, 0.5)
    LevelChoice(level=0, read_downsample=2.0)
    """
    if not (mpp0 > 0 and target_mpp > 0):
        raise ValueError(f"pixel sizes must be positive: mpp0={mpp0}, target_mpp={target_mpp}")
    if not level_downsamples:
        raise ValueError("the slide has no pyramid levels")
    limit = target_mpp * (1.0 + rel_tol)
    fine_enough = [
        (float(ds), level) for level, ds in enumerate(level_downsamples) if mpp0 * ds <= limit
    ]
    if not fine_enough:
        finest = mpp0 * min(level_downsamples)
        raise ValueError(
            f"the slide's finest level is {finest:.4g} um/px, coarser than the target "
            f"{target_mpp:.4g} um/px; tiles would have to be upsampled. Choose a target_mpp of "
            f"at least {finest:.4g} um/px."
        )
    ds, level = max(fine_enough)
    factor = target_mpp / (mpp0 * ds)
    if factor < 1.0 + rel_tol:
        factor = 1.0
    _log.debug(
        "target %.4g um/px on a %.4g um/px slide: level %d (x%.4g), resize by 1/%.4g",
        target_mpp,
        mpp0,
        level,
        ds,
        factor,
    )
    return LevelChoice(level, factor)
