"""Opening whole-slide images and finding their physical pixel size.

Every failure that belongs to one slide (missing file, unsupported or truncated file, unreadable
tile data, no pixel size) is raised as :class:`SlideError` with the slide's path in the message,
so that a workflow can fail that slide's job visibly or skip it by explicit configuration.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import openslide
import pandas as pd

__all__ = ["SlideError", "open_slide", "slide_mpp", "slide_name", "openslide_errors"]

_log = logging.getLogger("mmsurv.wsi.slide")

#: Relative difference tolerated between ``openslide.mpp-x`` and ``openslide.mpp-y``.
MPP_REL_TOL = 0.01


class SlideError(ValueError):
    """A slide cannot be used: unreadable, truncated, unsupported or without a pixel size."""


def slide_name(slide: openslide.AbstractSlide) -> str:
    """The file a slide was opened from (for messages), else its ``repr``."""
    name = getattr(slide, "_filename", None)
    return str(name) if name is not None else repr(slide)


@contextlib.contextmanager
def openslide_errors(path: str | os.PathLike[str], action: str = "read") -> Iterator[None]:
    """Turn OpenSlide's errors raised inside the block into :class:`SlideError` naming ``path``.

    Parameters
    ----------
    path
        The slide file, quoted in the message.
    action
        What was being done (``"open"``, ``"read"``), quoted in the message.
    """
    try:
        yield
    except openslide.OpenSlideUnsupportedFormatError as exc:
        raise SlideError(
            f"{path}: cannot {action} slide: not a format OpenSlide reads, or the file is "
            f"truncated or corrupt ({exc}). Re-copy or re-export the slide, or remove it "
            "from the slides sheet."
        ) from exc
    except openslide.OpenSlideError as exc:
        raise SlideError(
            f"{path}: cannot {action} slide: the file is damaged or truncated ({exc}). "
            "Re-copy or re-export the slide, or remove it from the slides sheet."
        ) from exc


def open_slide(path: str | os.PathLike[str]) -> openslide.OpenSlide:
    """Open a whole-slide image with OpenSlide.

    Parameters
    ----------
    path
        Any file OpenSlide reads (SVS, NDPI, MRXS, generic tiled TIFF, ...).

    Returns
    -------
    openslide.OpenSlide
        The open slide; close it (or use it as a context manager) when done.

    Raises
    ------
    SlideError
        If the file does not exist, is not a slide OpenSlide supports, or is truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise SlideError(f"{path}: slide file does not exist (check the slides sheet's path)")
    with openslide_errors(path, "open"):
        return openslide.OpenSlide(path)


def _positive(value: object) -> float | None:
    """``value`` as a finite positive float, or ``None`` if missing, NaN or not positive."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _metadata_mpp(slide: openslide.AbstractSlide, name: str) -> float | None:
    """Level-0 microns per pixel from ``openslide.mpp-x``/``-y``, or ``None`` if absent."""
    props = slide.properties
    raw_x = props.get(openslide.PROPERTY_NAME_MPP_X)
    raw_y = props.get(openslide.PROPERTY_NAME_MPP_Y)
    mpp_x, mpp_y = _positive(raw_x), _positive(raw_y)
    if raw_x is not None and mpp_x is None:
        _log.warning("%s: ignoring unusable openslide.mpp-x value %r", name, raw_x)
    if mpp_x is None:
        return None
    if mpp_y is not None and abs(mpp_x - mpp_y) > MPP_REL_TOL * max(mpp_x, mpp_y):
        raise SlideError(
            f"{name}: pixels are not square (openslide.mpp-x = {mpp_x}, openslide.mpp-y = "
            f"{mpp_y} um/px); mmsurv tiles only slides with square pixels. Resample the slide."
        )
    return mpp_x


def slide_mpp(
    slide: openslide.AbstractSlide,
    mpp_override: float | None = None,
    default_mpp: float | None = None,
) -> float:
    """Physical size of a level-0 pixel, in microns per pixel (um/px).

    The sources, in order: the slide's own metadata (``openslide.mpp-x``, checked against
    ``openslide.mpp-y``); ``mpp_override`` (the slides sheet's ``mpp`` column); ``default_mpp``
    (a cohort-wide value the configuration sets explicitly). A missing value is never guessed.

    Parameters
    ----------
    slide
        An open slide.
    mpp_override
        The slides sheet's ``mpp`` value for this slide in um/px; ``None``, NaN or ``pd.NA``
        when empty.
    default_mpp
        Explicit configuration default in um/px, or ``None``.

    Returns
    -------
    float
        Level-0 microns per pixel.

    Raises
    ------
    SlideError
        If no source gives a pixel size, or the metadata reports non-square pixels.
    ValueError
        If ``mpp_override`` or ``default_mpp`` is given but is not a positive number.
    """
    name = slide_name(slide)
    for label, value in (("mpp_override", mpp_override), ("default_mpp", default_mpp)):
        missing = value is None or bool(pd.isna(value))
        if not missing and _positive(value) is None:
            raise ValueError(f"{name}: {label} must be a positive number of um/px: {value!r}")
    override = _positive(mpp_override)
    default = _positive(default_mpp)
    meta = _metadata_mpp(slide, name)
    if meta is not None:
        if override is not None and abs(override - meta) > MPP_REL_TOL * meta:
            _log.warning(
                "%s: the slide's metadata says %.4g um/px, the sheet's mpp column %.4g; "
                "using the metadata",
                name,
                meta,
                override,
            )
        return meta
    if override is not None:
        _log.info("%s: no mpp metadata; using the sheet's mpp %.4g um/px", name, override)
        return override
    if default is not None:
        _log.warning("%s: no mpp metadata; using the configured default %.4g um/px", name, default)
        return default
    raise SlideError(
        f"{name}: the slide has no pixel-size metadata (openslide.mpp-x). Give its microns per "
        "pixel in the slides sheet's 'mpp' column (e.g. 0.25 for 40x, 0.5 for 20x scans), or "
        "set an explicit default for the whole cohort in the configuration."
    )
