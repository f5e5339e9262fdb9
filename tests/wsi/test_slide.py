"""Opening slides, damaged files and the pixel-size sources."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from mmsurv.wsi import SlideError, open_slide, slide_mpp, tile_slide


class FakeSlide:
    """Just enough of an OpenSlide object for :func:`slide_mpp`."""

    def __init__(self, properties: dict[str, str], filename: str = "/data/S1.svs") -> None:
        self.properties = properties
        self._filename = filename


META = {"openslide.mpp-x": "0.2527", "openslide.mpp-y": "0.2527"}
NO_META: dict[str, str] = {}


@pytest.mark.parametrize(
    ("props", "override", "default", "expected"),
    [
        (META, None, None, 0.2527),  # metadata
        (META, 0.2527, 0.5, 0.2527),  # metadata wins over sheet and default
        (NO_META, 0.5, None, 0.5),  # sheet column
        (NO_META, 0.25, 0.5, 0.25),  # sheet column wins over the default
        (NO_META, None, 0.5, 0.5),  # explicit config default
        (NO_META, math.nan, 0.5, 0.5),  # empty sheet cell (NaN) is missing
        (NO_META, pd.NA, 0.5, 0.5),  # empty nullable cell is missing
        ({"openslide.mpp-x": "0.5"}, None, None, 0.5),  # mpp-y absent: trust mpp-x
        ({"openslide.mpp-x": "0", "openslide.mpp-y": "0"}, 0.5, None, 0.5),  # unusable meta
    ],
)
def test_slide_mpp_sources(props, override, default, expected) -> None:
    assert slide_mpp(FakeSlide(props), override, default) == pytest.approx(expected)


def test_slide_mpp_missing_everywhere_names_the_file_and_the_fix() -> None:
    with pytest.raises(SlideError, match=r"/data/S1\.svs") as info:
        slide_mpp(FakeSlide(NO_META), None, None)
    message = str(info.value)
    assert "'mpp' column" in message and "default" in message


def test_slide_mpp_rejects_non_square_pixels() -> None:
    props = {"openslide.mpp-x": "0.25", "openslide.mpp-y": "0.5"}
    with pytest.raises(SlideError, match="not square"):
        slide_mpp(FakeSlide(props), None, None)


@pytest.mark.parametrize("bad", [-0.5, 0.0, "abc"])
def test_slide_mpp_rejects_invalid_values(bad) -> None:
    with pytest.raises(ValueError, match="positive"):
        slide_mpp(FakeSlide(NO_META), bad, None)


def test_metadata_disagreeing_with_sheet_is_logged(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="mmsurv.wsi"):
        assert slide_mpp(FakeSlide(META), 0.5, None) == pytest.approx(0.2527)
    assert "using the metadata" in caplog.text


def test_real_slide_metadata(demo_slides) -> None:
    with open_slide(demo_slides["mpp025"]) as slide:
        assert slide_mpp(slide, None, None) == pytest.approx(0.25)


def test_demo_slide_without_mpp_needs_the_sheet_value(demo_slides) -> None:
    path = demo_slides["nompp"]
    with pytest.raises(SlideError, match="nompp.tiff.*no pixel-size metadata"):
        tile_slide(path)
    result = tile_slide(path, mpp_override=0.25)
    assert result.mpp0 == 0.25
    assert (result.level, result.read_downsample) == (0, 2.0)
    assert result.n_tiles > 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SlideError, match="nothere.svs.*does not exist"):
        open_slide(tmp_path / "nothere.svs")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tiff"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(SlideError, match="garbage.tiff"):
        open_slide(path)
    with pytest.raises(SlideError, match="garbage.tiff"):
        tile_slide(path, default_mpp=0.5)


def test_truncated_file(tmp_path: Path, demo_slides) -> None:
    data = demo_slides["mpp050"].read_bytes()
    path = tmp_path / "truncated.tiff"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SlideError, match="truncated.tiff.*(truncated|corrupt)"):
        tile_slide(path)


def test_error_is_a_value_error() -> None:
    assert issubclass(SlideError, ValueError)
