"""QC thumbnail of a tiling: the slide, the tissue contour and the kept tiles."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import openslide
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mmsurv.io import atomic_path

from .lowres import read_low_res
from .result import TilingResult

__all__ = ["write_thumbnail"]

_log = logging.getLogger("mmsurv.wsi.thumbnail")


def write_thumbnail(
    path_png: str | os.PathLike[str],
    slide: openslide.AbstractSlide,
    result: TilingResult,
    *,
    max_size_px: int = 1024,
    title: str | None = None,
) -> Path:
    """Draw the slide with its tissue contour and kept tiles; save it as a PNG, atomically.

    Parameters
    ----------
    path_png
        Output ``.png`` path; parent folders are created.
    slide
        The open slide the tiling was computed on.
    result
        Its tiling.
    max_size_px
        Longest edge of the rendered slide image, in pixels.
    title
        Figure title; by default the slide file name, tile count and resolution.

    Returns
    -------
    pathlib.Path
        ``path_png``.
    """
    path_png = Path(path_png)
    width, height = result.slide_dimensions
    thumb_mpp = result.mpp0 * max(1.0, max(width, height) / max_size_px)
    rgb = read_low_res(slide, result.mpp0, thumb_mpp).rgb

    inches = 8.0
    aspect = height / width
    fig = Figure(figsize=(inches, inches * aspect + 0.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - 0.5 / (inches * aspect + 0.5)))
    ax.imshow(rgb, extent=(0, width, height, 0), interpolation="antialiased")
    mask = result.mask
    if mask.any() and not mask.all():
        dx, dy = result.mask_downsample
        xs = (np.arange(mask.shape[1]) + 0.5) * dx
        ys = (np.arange(mask.shape[0]) + 0.5) * dy
        ax.contour(xs, ys, mask.astype(np.float32), levels=[0.5], colors="lime", linewidths=1.0)
    size = result.tile_size_level0_px
    tiles = [Rectangle((float(x), float(y)), size, size) for x, y in result.coords]
    if tiles:
        ax.add_collection(
            PatchCollection(tiles, facecolor="none", edgecolor="blue", linewidth=0.4, alpha=0.8)
        )
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    if title is None:
        name = Path(str(getattr(slide, "_filename", "slide"))).name
        title = (
            f"{name}: {result.n_tiles} of {result.n_candidates} tiles, {result.tile_size_px} px "
            f"at {result.mpp:.3g} um/px ({result.magnification:.0f}x)"
        )
    fig.suptitle(title, fontsize=8, y=0.995, va="top")
    with atomic_path(path_png) as tmp:
        fig.savefig(tmp, format="png")
    _log.debug("%s: wrote thumbnail", path_png)
    return path_png
