"""Rendering a whole slide at low resolution (for tissue masks and thumbnails)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import openslide
from PIL import Image

from .levels import choose_level
from .slide import openslide_errors, slide_name

__all__ = ["LowResImage", "read_low_res"]

_CHUNK_PX = 4096  # edge of the regions read at a time, in pixels of the level read


@dataclass(frozen=True, eq=False)
class LowResImage:
    """A whole slide rendered at low resolution.

    Attributes
    ----------
    rgb
        (H, W, 3) uint8 image; transparent (unscanned) areas are white.
    level
        Pyramid level that was read.
    downsample
        ``(x, y)`` level-0 pixels per image pixel.
    mpp
        Pixel size of the image in um/px (mean over x and y).
    """

    rgb: np.ndarray
    level: int
    downsample: tuple[float, float]
    mpp: float


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an (H, W, 4) uint8 RGBA array over white; return (H, W, 3) uint8 RGB."""
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if (alpha == 255).all():
        return np.ascontiguousarray(rgb)
    a = alpha.astype(np.uint16)
    out = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def read_low_res(slide: openslide.AbstractSlide, mpp0: float, mpp: float) -> LowResImage:
    """Render a whole slide at about ``mpp`` um/px, reading the coarsest fine-enough level.

    The level is read in regions of at most 4096 x 4096 pixels, each shrunk with a box filter,
    so memory stays bounded even for a slide without a pyramid.

    Parameters
    ----------
    slide
        An open slide.
    mpp0
        Its level-0 pixel size in um/px.
    mpp
        Wanted pixel size in um/px (if the slide is coarser, level 0 is used as it is).

    Raises
    ------
    SlideError
        If OpenSlide cannot read the level.
    """
    try:
        level, factor = choose_level(slide.level_downsamples, mpp0, mpp)
    except ValueError:
        level, factor = 0, 1.0
    lw, lh = slide.level_dimensions[level]
    level_ds = slide.level_downsamples[level]
    out_w, out_h = max(1, round(lw / factor)), max(1, round(lh / factor))
    fx, fy = lw / out_w, lh / out_h
    step = max(1, int(_CHUNK_PX / max(fx, fy)))
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    with openslide_errors(slide_name(slide)):
        for oy in range(0, out_h, step):
            oy1 = min(out_h, oy + step)
            ly0, ly1 = round(oy * fy), min(lh, max(round(oy1 * fy), round(oy * fy) + 1))
            for ox in range(0, out_w, step):
                ox1 = min(out_w, ox + step)
                lx0, lx1 = round(ox * fx), min(lw, max(round(ox1 * fx), round(ox * fx) + 1))
                loc = (round(lx0 * level_ds), round(ly0 * level_ds))
                region = slide.read_region(loc, level, (lx1 - lx0, ly1 - ly0))
                if region.size != (ox1 - ox, oy1 - oy):
                    region = region.resize((ox1 - ox, oy1 - oy), Image.Resampling.BOX)
                out[oy:oy1, ox:ox1] = _over_white(np.asarray(region))
    ds = (lw * level_ds / out_w, lh * level_ds / out_h)
    return LowResImage(out, level, ds, mpp0 * (ds[0] + ds[1]) / 2.0)
