"""Reading tiles at the target resolution."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmsurv.wsi import open_slide, read_tile, tile_slide

BOX, LANCZOS = Image.Resampling.BOX, Image.Resampling.LANCZOS


@pytest.mark.parametrize(
    ("key", "target", "size", "read_size", "resample"),
    [
        ("mpp025", 0.5, 224, 448, BOX),  # 0.25 um/px slide read at 0.5: level 0, shrunk by 2
        ("mpp025", 0.5, 224, 448, LANCZOS),
        ("mpp050", 0.625, 256, 320, BOX),  # non-integer factor 1.25
    ],
)
def test_tile_from_finer_level_is_shrunk_to_the_target(
    demo_slides, key, target, size, read_size, resample
) -> None:
    path = demo_slides[key]
    result = tile_slide(path, target_mpp=target, tile_size_px=size)
    assert (result.level, result.read_size_px) == (0, read_size)
    x, y = result.coords[0]
    with open_slide(path) as slide:
        tile = read_tile(slide, result, result.coords[0], resample=resample)
        manual = slide.read_region((int(x), int(y)), 0, (read_size, read_size)).convert("RGB")
    assert tile.shape == (size, size, 3) and tile.dtype == np.uint8
    resized = np.asarray(manual.resize((size, size), resample))
    if resample == BOX and read_size % size == 0:  # integer factor: k x k block means
        np.testing.assert_array_equal(tile, np.asarray(manual.reduce(read_size // size)))
        assert np.abs(tile.astype(int) - resized).max() <= 1  # same filter, other rounding
    else:
        np.testing.assert_array_equal(tile, resized)


@pytest.mark.parametrize(("key", "target", "level"), [("mpp050", 0.5, 0), ("mpp025", 1.0, 1)])
def test_tile_at_a_matching_level_is_read_as_is(demo_slides, key, target, level) -> None:
    path = demo_slides[key]
    result = tile_slide(path, target_mpp=target, max_tiles=3)
    assert (result.level, result.read_downsample) == (level, 1.0)
    with open_slide(path) as slide:
        for xy in result.coords:
            tile = read_tile(slide, result, xy)
            region = slide.read_region((int(xy[0]), int(xy[1])), level, (256, 256))
            np.testing.assert_array_equal(tile, np.asarray(region.convert("RGB")))


def test_tile_past_the_edge_is_white(demo_slides) -> None:
    path = demo_slides["mpp050"]
    result = tile_slide(path, max_tiles=1)
    w, h = result.slide_dimensions
    with open_slide(path) as slide:
        tile = read_tile(slide, result, (w - 100, h - 100))
    assert tile.shape == (256, 256, 3)
    assert (tile[150:, 150:] == 255).all()
