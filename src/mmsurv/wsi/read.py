"""Reading one tile at the target resolution.

A tile is described by its :class:`TileGeometry` (pyramid level, size of the region read there,
tile size after resizing), which comes either from a :class:`TilingResult` or from the
attributes of a tile coordinate file (:meth:`TileGeometry.from_attrs`), so tiles can be read
back from ``results/wsi/tiles/{slide}.h5`` without re-tiling the slide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import openslide
from PIL import Image

from .result import TilingResult
from .slide import openslide_errors, slide_name

__all__ = ["TileGeometry", "read_tile"]


@dataclass(frozen=True)
class TileGeometry:
    """Where and how big the region read for one tile is.

    Attributes
    ----------
    level
        Pyramid level read.
    read_size_px
        Edge in pixels of the square region read at ``level``.
    tile_size_px
        Edge in pixels of the tile at the target resolution (the region is shrunk to this).
    """

    level: int
    read_size_px: int
    tile_size_px: int

    def __post_init__(self) -> None:
        if self.level < 0 or self.read_size_px < 1 or self.tile_size_px < 1:
            raise ValueError(f"invalid tile geometry: {self}")

    @classmethod
    def from_result(cls, result: TilingResult) -> TileGeometry:
        """The geometry of the tiles of a :class:`TilingResult`."""
        return cls(int(result.level), int(result.read_size_px), int(result.tile_size_px))

    @classmethod
    def from_attrs(
        cls,
        attrs: Mapping[str, Any],
        level_downsamples: Sequence[float] | None = None,
    ) -> TileGeometry:
        """The geometry recorded in a tile coordinate file's attributes.

        Parameters
        ----------
        attrs
            Attributes as returned by :func:`mmsurv.wsi.read_tiles_h5`. mmsurv's own files give
            ``patch_size`` (px at the target), ``level`` and ``downsample`` (factor from
            ``level`` to the target): the region read is ``round(patch_size * downsample)`` px.
            Without ``downsample`` (CLAM / TRIDENT patch files), the region is
            ``patch_size_level0 / level_downsamples[level]`` px when both are known, else
            ``patch_size`` px read at ``patch_level`` (CLAM's convention).
        level_downsamples
            The slide's level downsamples (OpenSlide's ``level_downsamples``), used only for
            files without ``downsample``.

        Raises
        ------
        KeyError
            If ``patch_size`` is missing.
        """
        tile = int(attrs["patch_size"])
        level = int(attrs.get("level", attrs.get("patch_level", 0)))
        if "downsample" in attrs:
            read = max(1, round(tile * float(attrs["downsample"])))
        elif "patch_size_level0" in attrs and level_downsamples is not None:
            read = max(1, round(float(attrs["patch_size_level0"]) / level_downsamples[level]))
        else:
            read = tile
        return cls(level, read, tile)


def read_tile(
    slide: openslide.AbstractSlide,
    result: TilingResult | TileGeometry,
    xy: Sequence[int] | np.ndarray,
    *,
    resample: Image.Resampling = Image.Resampling.BOX,
) -> np.ndarray:
    """Read the tile whose top-left level-0 corner is ``xy``, at the target resolution.

    A ``read_size_px`` square is read at ``level`` and, when it differs from ``tile_size_px``,
    shrunk to ``tile_size_px`` with ``resample`` (never an enlargement, since the level is at
    least as fine as the target). The default box filter averages the source pixels each target
    pixel covers, as scanners build their pyramids; for an integer factor it is a plain
    ``k x k`` block mean (``Image.reduce``), the fastest path. Transparent (unscanned) pixels
    become white.

    Parameters
    ----------
    slide
        The open slide the tiling was computed on.
    result
        Its tiling, or the :class:`TileGeometry` of its tiles (e.g. from a tile file's
        attributes, :meth:`TileGeometry.from_attrs`).
    xy
        Level-0 ``(x, y)`` pixel, e.g. a row of ``result.coords``.
    resample
        PIL filter used to shrink the region (e.g. ``Image.Resampling.LANCZOS`` for a sharper,
        slower result).

    Returns
    -------
    numpy.ndarray
        (tile_size_px, tile_size_px, 3) uint8 RGB.

    Raises
    ------
    SlideError
        If OpenSlide cannot read the region (damaged tile data).
    """
    geometry = result if isinstance(result, TileGeometry) else TileGeometry.from_result(result)
    size = geometry.read_size_px
    with openslide_errors(slide_name(slide)):
        region = slide.read_region((int(xy[0]), int(xy[1])), geometry.level, (size, size))
    if region.mode == "RGBA" and region.getchannel("A").getextrema()[0] < 255:
        white = Image.new("RGBA", region.size, (255, 255, 255, 255))
        region = Image.alpha_composite(white, region)  # transparent (unscanned) -> white
    region = region.convert("RGB")
    out = geometry.tile_size_px
    if size != out:
        factor, rest = divmod(size, out)
        if rest == 0 and resample == Image.Resampling.BOX:
            region = region.reduce(factor)
        else:
            region = region.resize((out, out), resample)
    return np.asarray(region)
