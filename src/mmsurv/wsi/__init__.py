"""Whole-slide images: opening slides, their pixel size, tissue masks and tiling.

Tiles are defined by physical resolution (``target_mpp`` um/px, default 0.5 um/px, about 20x)
and size (``tile_size_px``), read from the coarsest pyramid level that is at least as fine as
the target and downsampled when no level matches. See :func:`tile_slide`.

Patch features: :func:`get_encoder` (registry :data:`ENCODERS`), :func:`extract_features` and
:func:`load_bag`. These import torch, so they are loaded on first access
(``mmsurv.wsi.extract_features``), keeping ``import mmsurv.wsi`` light for the tiling jobs.
"""

from __future__ import annotations

import importlib
from typing import Any

from .grid import tile_grid, tissue_fractions
from .h5 import read_tiles_h5, write_tiles_h5
from .levels import LevelChoice, choose_level
from .lowres import LowResImage, read_low_res
from .read import TileGeometry, read_tile
from .result import TilingResult
from .slide import SlideError, open_slide, slide_mpp
from .thumbnail import write_thumbnail
from .tiling import tile_open_slide, tile_slide
from .tissue import TissueMask, TissueParams, segment_tissue, tissue_mask

#: Names loaded lazily (they import torch): name -> submodule.
_LAZY = {
    "ENCODERS": "encoders",
    "Encoder": "encoders",
    "EncoderWeightsError": "encoders",
    "TileTransform": "encoders",
    "get_encoder": "encoders",
    "TileDataset": "extract",
    "extract_features": "extract",
    "is_current": "extract",
    "BagError": "features",
    "load_bag": "features",
}

__all__ = [
    "BagError",
    "ENCODERS",
    "Encoder",
    "EncoderWeightsError",
    "LevelChoice",
    "LowResImage",
    "SlideError",
    "TileDataset",
    "TileGeometry",
    "TileTransform",
    "TilingResult",
    "TissueMask",
    "TissueParams",
    "choose_level",
    "extract_features",
    "get_encoder",
    "is_current",
    "load_bag",
    "open_slide",
    "read_low_res",
    "read_tile",
    "read_tiles_h5",
    "segment_tissue",
    "slide_mpp",
    "tile_grid",
    "tile_open_slide",
    "tile_slide",
    "tissue_fractions",
    "tissue_mask",
    "write_thumbnail",
    "write_tiles_h5",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based names of :data:`_LAZY` on first access (PEP 562)."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
