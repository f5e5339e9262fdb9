"""Pyramidal, tiled, JPEG-compressed TIFF in the layout of OpenSlide's generic-TIFF reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

__all__ = ["write_pyramidal_tiff"]


def _downsample(img: np.ndarray, factor: int) -> np.ndarray:
    """Downsample an (H, W, 3) uint8 image by an even ``factor``.

    Each output pixel is the mean of the 2x2 pixels at the centre of its ``factor`` x
    ``factor`` block (a cheap stand-in for a full box filter).
    """
    if factor < 2 or factor % 2:
        raise ValueError(f"downsample factor must be even, got {factor}")
    h, w = img.shape[0] // factor * factor, img.shape[1] // factor * factor
    a, b = factor // 2 - 1, factor // 2
    acc = img[a:h:factor, a:w:factor].astype(np.uint16)
    acc += img[a:h:factor, b:w:factor]
    acc += img[b:h:factor, a:w:factor]
    acc += img[b:h:factor, b:w:factor]
    return ((acc + 2) // 4).astype(np.uint8)


def write_pyramidal_tiff(
    path: Path,
    image: np.ndarray,
    mpp: float | None,
    levels: int,
    downsample: int = 4,
    tile_px: int = 256,
    quality: int = 80,
) -> None:
    """Write an RGB image as a tiled, JPEG-compressed pyramidal TIFF that OpenSlide opens.

    tifffile encodes the RGB input as YCbCr JPEG with 2x2 chroma subsampling (as scanners do).
    Each level is a top-level TIFF page (level 0 first, then reduced-resolution pages marked
    ``NewSubfileType = 1``), which is the layout of OpenSlide's generic-TIFF reader (it ignores
    SubIFDs). With ``mpp``, every page carries X/YResolution in pixels per centimetre, from
    which OpenSlide reports ``openslide.mpp-x``/``-y``.

    Parameters
    ----------
    path
        Output ``.tiff`` path.
    image
        (H, W, 3) uint8 level-0 image.
    mpp
        Level-0 microns per pixel, or ``None`` to write no resolution metadata.
    levels
        Number of pyramid levels (>= 1).
    downsample
        Factor between successive levels (even).
    tile_px
        Tile edge in pixels (multiple of 16).
    quality
        JPEG quality 0..100.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    level_img = image
    with tifffile.TiffWriter(tmp) as tw:
        for level in range(levels):
            if level:
                level_img = _downsample(level_img, downsample)
            kwargs: dict = {}
            if mpp is not None:
                px_per_cm = 1e4 / (mpp * downsample**level)
                kwargs = {"resolution": (px_per_cm, px_per_cm), "resolutionunit": "CENTIMETER"}
            tw.write(
                level_img,
                photometric="rgb",
                tile=(tile_px, tile_px),
                compression="jpeg",
                compressionargs={"level": quality},
                subfiletype=1 if level else 0,
                metadata=None,
                **kwargs,
            )
    tmp.replace(path)
