"""Tile coordinate files: round trip, attributes and the CLAM/TRIDENT layout."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import mmsurv
from mmsurv.wsi import read_tiles_h5, tile_slide, write_tiles_h5


def test_round_trip_with_attributes(tmp_path: Path, demo_slides) -> None:
    result = tile_slide(demo_slides["mpp025"], max_tiles=4, seed=3)
    path = write_tiles_h5(result, tmp_path / "tiles" / "S1.h5", "S1")
    assert [p.name for p in path.parent.iterdir()] == ["S1.h5"]  # no temporary left behind

    coords, attrs = read_tiles_h5(path)
    assert coords.dtype == np.int64 and coords.shape == (4, 2)
    np.testing.assert_array_equal(coords, result.coords)
    expected = {
        "patch_size": 256,
        "patch_size_level0": 512,
        "level": 0,
        "downsample": 2.0,
        "mpp": 0.5,
        "mpp0": 0.25,
        "magnification": 20.0,
        "tile_size_um": 128.0,
        "slide_id": "S1",
        "n_candidates": result.n_candidates,
        "mmsurv_version": mmsurv.__version__,
    }
    assert attrs.keys() >= expected.keys()
    assert {k: attrs[k] for k in expected} == pytest.approx(expected)
    assert isinstance(attrs["slide_id"], str)


def test_clam_trident_layout(tmp_path: Path, demo_slides) -> None:
    result = tile_slide(demo_slides["mpp050"])
    path = write_tiles_h5(result, tmp_path / "S2.h5", "S2")
    with h5py.File(path, "r") as f:
        assert f["coords"].dtype == np.int64 and f["coords"].shape == (result.n_tiles, 2)
        ca = f["coords"].attrs
        assert ca["patch_size"] == 256 and ca["patch_level"] == 0
        assert ca["patch_size_level0"] == 256
        assert f["tissue_fraction"].shape == (result.n_tiles,)


def test_overwrite_replaces_the_file(tmp_path: Path, demo_slides) -> None:
    path = tmp_path / "S3.h5"
    write_tiles_h5(tile_slide(demo_slides["mpp050"], max_tiles=5), path, "S3")
    write_tiles_h5(tile_slide(demo_slides["mpp050"], max_tiles=3), path, "S3")
    assert read_tiles_h5(path)[0].shape == (3, 2)
