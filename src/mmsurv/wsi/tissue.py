"""Tissue segmentation on a low-resolution rendering of a slide.

The slide is read at about ``mask_mpp`` microns per pixel (default 8 um/px) from the coarsest
pyramid level that is fine enough, then thresholded on HSV saturation (half way between the
glass level and Otsu's threshold, so that pale tissue such as necrosis counts; with a floor),
with near-white glass and near-black pen or debris excluded, cleaned with morphology (closing,
hole filling, opening) and stripped of components smaller than a minimum area in um^2.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import openslide
from scipy import ndimage

from .lowres import read_low_res
from .slide import slide_name

__all__ = [
    "TissueParams",
    "TissueMask",
    "saturation",
    "otsu_threshold",
    "saturation_threshold",
    "segment_tissue",
    "tissue_mask",
]

_log = logging.getLogger("mmsurv.wsi.tissue")


@dataclass(frozen=True)
class TissueParams:
    """Parameters of :func:`segment_tissue`.

    Attributes
    ----------
    mask_mpp
        Pixel size of the mask in um/px (the slide is read at about this resolution).
    threshold_scale
        Where the saturation threshold lies between the glass level (median saturation of the
        pixels below Otsu's threshold) and Otsu's threshold: 1 is plain Otsu, 0.5 (default) half
        way. Pale tissue (necrosis, mucin, faint eosin) lies between glass and well-stained
        tissue, and plain Otsu tends to cut through it.
    min_saturation
        Floor (0..1) of the saturation threshold, used when the threshold above is lower (e.g.
        a slide that is nearly all glass).
    white_level
        Pixels whose three channels are all >= this (0..255) are glass, never tissue.
    black_level
        Pixels whose three channels are all <= this (0..255) are pen, debris or scanner
        border, never tissue.
    morph_radius_um
        Radius in um of the disc used for closing and opening.
    min_area_um2
        Connected components smaller than this many um^2 are dropped.
    """

    mask_mpp: float = 8.0
    threshold_scale: float = 0.5
    min_saturation: float = 0.05
    white_level: int = 220
    black_level: int = 30
    morph_radius_um: float = 16.0
    min_area_um2: float = 10_000.0


@dataclass(frozen=True, eq=False)
class TissueMask:
    """Tissue mask of a slide.

    Attributes
    ----------
    mask
        (H, W) bool, True on tissue.
    downsample
        ``(x, y)`` level-0 pixels per mask pixel.
    mpp
        Pixel size of the mask in um/px.
    level
        Pyramid level the mask was computed from.
    threshold
        Saturation threshold (0..1) that was applied.
    """

    mask: np.ndarray
    downsample: tuple[float, float]
    mpp: float
    level: int
    threshold: float


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation of an RGB image.

    Parameters
    ----------
    rgb
        (H, W, 3) uint8 image.

    Returns
    -------
    numpy.ndarray
        (H, W) float32 in 0..1: ``(max - min) / max`` over the channels, 0 where ``max`` is 0.
    """
    hi = rgb.max(axis=-1).astype(np.float32)
    lo = rgb.min(axis=-1).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = np.where(hi > 0, (hi - lo) / hi, 0.0)
    return sat.astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 256, value_range=(0.0, 1.0)) -> float:
    """Otsu's threshold: the cut maximising the between-class variance of a histogram.

    Parameters
    ----------
    values
        Array of any shape (flattened).
    bins
        Histogram bins over ``value_range``.
    value_range
        ``(low, high)`` of the histogram.

    Returns
    -------
    float
        Threshold; values ``>= threshold`` form the upper class (the middle of the cuts if
        several are equally good). ``low`` if ``values`` is empty or constant.
    """
    hist, edges = np.histogram(np.ravel(values), bins=bins, range=value_range)
    total = hist.sum()
    if total == 0:
        return float(value_range[0])
    centres = (edges[:-1] + edges[1:]) / 2.0
    w0 = np.cumsum(hist)[:-1].astype(np.float64)
    w1 = total - w0
    s0 = np.cumsum(hist * centres)[:-1]
    m0 = s0 / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - s0) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    if not np.any(between > 0):
        return float(value_range[0])
    # Empty bins between the classes make a plateau of equal maxima: cut in its middle.
    best = np.flatnonzero(between >= between.max() * (1.0 - 1e-12))
    return float((edges[1 + best[0]] + edges[1 + best[-1]]) / 2.0)


def saturation_threshold(sat: np.ndarray, scale: float = 0.5, floor: float = 0.05) -> float:
    """Tissue threshold on saturation: between the glass level and Otsu's threshold.

    Parameters
    ----------
    sat
        (H, W) saturation in 0..1.
    scale
        0 gives the glass level (median saturation below Otsu's threshold), 1 Otsu's threshold.
    floor
        Lowest threshold returned.

    Returns
    -------
    float
        ``max(floor, glass + scale * (otsu - glass))``.
    """
    otsu = otsu_threshold(sat)
    below = sat[sat < otsu]
    glass = float(np.median(below)) if below.size else otsu
    return max(floor, glass + scale * (otsu - glass))


def _disc(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) bool disc structuring element."""
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (yy * yy + xx * xx) <= radius * radius


def segment_tissue(
    rgb: np.ndarray, mpp: float, params: TissueParams | None = None
) -> tuple[np.ndarray, float]:
    """Segment tissue in a low-resolution RGB image of a slide.

    Parameters
    ----------
    rgb
        (H, W, 3) uint8 image (glass white).
    mpp
        Its pixel size in um/px (converts the morphology radius and minimum area to pixels).
    params
        Thresholds and sizes; defaults of :class:`TissueParams` when ``None``.

    Returns
    -------
    mask : numpy.ndarray
        (H, W) bool, True on tissue.
    threshold : float
        The saturation threshold applied (0..1).
    """
    p = params or TissueParams()
    sat = saturation(rgb)
    white = (rgb >= p.white_level).all(axis=-1)
    black = (rgb <= p.black_level).all(axis=-1)
    threshold = saturation_threshold(sat, p.threshold_scale, p.min_saturation)
    mask = (sat >= threshold) & ~white & ~black

    r = max(1, round(p.morph_radius_um / mpp))
    disc = _disc(r)
    padded = np.pad(mask, r + 1)
    padded = ndimage.binary_closing(padded, structure=disc)
    padded = ndimage.binary_fill_holes(padded)
    padded = ndimage.binary_opening(padded, structure=disc)
    mask = padded[r + 1 : -(r + 1), r + 1 : -(r + 1)]

    labels, n = ndimage.label(mask)
    if n:
        areas_um2 = np.bincount(labels.ravel(), minlength=n + 1) * mpp * mpp
        keep = areas_um2 >= p.min_area_um2
        keep[0] = False
        mask = keep[labels]
    return mask, threshold


def tissue_mask(
    slide: openslide.AbstractSlide, mpp0: float, params: TissueParams | None = None
) -> TissueMask:
    """Tissue mask of a whole slide at about ``params.mask_mpp`` um/px.

    Parameters
    ----------
    slide
        An open slide.
    mpp0
        Its level-0 pixel size in um/px.
    params
        Segmentation parameters; defaults of :class:`TissueParams` when ``None``.

    Returns
    -------
    TissueMask
        The mask with its pixel size and downsample relative to level 0.
    """
    p = params or TissueParams()
    low = read_low_res(slide, mpp0, p.mask_mpp)
    mask, threshold = segment_tissue(low.rgb, low.mpp, p)
    _log.debug(
        "%s: mask %dx%d at %.3g um/px from level %d, saturation threshold %.3f, tissue %.1f%%",
        slide_name(slide),
        mask.shape[1],
        mask.shape[0],
        low.mpp,
        low.level,
        threshold,
        100.0 * mask.mean(),
    )
    return TissueMask(mask, low.downsample, low.mpp, low.level, threshold)
