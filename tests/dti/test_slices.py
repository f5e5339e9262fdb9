"""Tumour box, slice positions, the 16-slice stack and its montage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsurv.dti.maps import DIFFUSIVITY_SCALE, MAPS
from mmsurv.dti.slices import (
    extract_slices,
    plot_slices,
    slice_positions,
    tumor_bounding_box,
    tumor_crops,
)
from mmsurv.mri.io import VolumeError

SHAPE = (20, 18, 22)  # (z, y, x)


def _tumor(z=(5, 15), y=(4, 12), x=(6, 17)) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[z[0] : z[1], y[0] : y[1], x[0] : x[1]] = True
    return mask


def _coded_maps() -> dict[str, np.ndarray]:
    """Map m, slice z holds ``(m + 1) * 1000 + z`` after scaling (constant in plane)."""
    z = np.arange(SHAPE[0], dtype=np.float64)[:, None, None]
    maps = {}
    for m, name in enumerate(MAPS):
        value = np.broadcast_to((m + 1) * 1000.0 + z, SHAPE)
        scale = 1.0 if name == "fa" else DIFFUSIVITY_SCALE
        maps[name] = (value / scale).astype(np.float32)
    return maps


@pytest.mark.parametrize("start", [0, 3, 11])
@pytest.mark.parametrize("depth", [4, 5, 7, 9, 16, 33])
def test_positions_are_increasing_and_inside(start: int, depth: int) -> None:
    z = slice_positions(start, start + depth, 4)
    assert z.shape == (4,) and z.dtype.kind == "i"
    assert (np.diff(z) > 0).all()
    assert z.min() >= start and z.max() < start + depth
    expected = np.floor(start + (np.arange(4) + 0.5) * depth / 4).astype(int)
    assert np.array_equal(z, expected)


def test_positions_are_equally_spaced() -> None:
    assert slice_positions(10, 30, 4).tolist() == [12, 17, 22, 27]
    assert slice_positions(0, 4, 4).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_thin_box_repeats_slices_inside(depth: int) -> None:
    z = slice_positions(7, 7 + depth, 4)
    assert (np.diff(z) >= 0).all() and len(set(z.tolist())) == depth
    assert z.min() >= 7 and z.max() < 7 + depth


def test_positions_reject_an_empty_range() -> None:
    with pytest.raises(ValueError):
        slice_positions(5, 5)


def test_bounding_box_is_tight() -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[3, 4, 5] = mask[9, 2, 10] = mask[6, 11, 7] = True
    z, y, x = tumor_bounding_box(mask)
    assert (z.start, z.stop, y.start, y.stop, x.start, x.stop) == (3, 10, 2, 12, 5, 11)
    with pytest.raises(VolumeError, match="empty"):
        tumor_bounding_box(np.zeros(SHAPE, dtype=bool))


def test_stack_is_map_major_with_the_right_slices() -> None:
    tumor = _tumor()
    slices, record = extract_slices(_coded_maps(), tumor, n_slices=4, size=(16, 24))
    assert slices.shape == (16, 16, 24) and slices.dtype == np.float32
    z = slice_positions(5, 15, 4).tolist()
    assert record["slices"] == z
    assert record["box"] == {"z": [5, 15], "y": [4, 12], "x": [6, 17]}
    assert record["size"] == [16, 24]
    assert record["order"] == [f"{m}@z{k}" for m in MAPS for k in z]
    for i, label in enumerate(record["order"]):
        name, k = label.split("@z")
        expected = (MAPS.index(name) + 1) * 1000.0 + int(k)
        np.testing.assert_allclose(slices[i], expected, rtol=1e-6)


def test_diffusivities_are_scaled_fa_is_not() -> None:
    maps = {name: np.full(SHAPE, 0.8e-3, dtype=np.float32) for name in MAPS}
    maps["fa"] = np.full(SHAPE, 0.4, dtype=np.float32)
    slices, record = extract_slices(maps, _tumor(), size=(8, 8))
    np.testing.assert_allclose(slices[:4], 0.4, rtol=1e-6)
    np.testing.assert_allclose(slices[4:], 0.8, rtol=1e-5)
    assert record["scale"] == {"fa": 1.0, "md": 1000.0, "ad": 1000.0, "rd": 1000.0}


def test_crop_follows_the_box_and_margin() -> None:
    """In-plane value = x index: the resized crop runs from the box's first to last column."""
    x = np.arange(SHAPE[2], dtype=np.float32)[None, None, :]
    maps = {name: np.broadcast_to(x, SHAPE).copy() for name in MAPS}
    maps["md"] = maps["md"] / DIFFUSIVITY_SCALE
    slices, record = extract_slices(maps, _tumor(), size=(10, 12))
    np.testing.assert_allclose(slices[0][:, 0], 6.0, atol=1e-5)
    np.testing.assert_allclose(slices[0][:, -1], 16.0, atol=1e-5)
    np.testing.assert_allclose(slices[4], slices[0], atol=1e-4)  # md, scaled back
    grown, rec = extract_slices(maps, _tumor(), size=(10, 12), margin_vox=(2, 8))
    assert rec["crop"] == {"y": [2, 14], "x": [0, 22]}  # x clipped to the volume
    np.testing.assert_allclose(grown[0][:, 0], 0.0, atol=1e-5)
    np.testing.assert_allclose(grown[0][:, -1], 21.0, atol=1e-5)
    assert record["crop"] == {"y": [4, 12], "x": [6, 17]}


def test_thin_tumour_repeats_slices_in_the_stack() -> None:
    slices, record = extract_slices(_coded_maps(), _tumor(z=(8, 10)), size=(8, 8))
    assert record["slices"] == [8, 8, 9, 9]
    assert slices.shape == (16, 8, 8)
    np.testing.assert_allclose(slices[0], slices[1])


def test_bad_inputs_are_errors() -> None:
    maps = _coded_maps()
    with pytest.raises(ValueError, match="missing"):
        extract_slices({k: v for k, v in maps.items() if k != "rd"}, _tumor())
    with pytest.raises(ValueError, match="shape"):
        extract_slices({**maps, "ad": maps["ad"][:-1]}, _tumor())
    bad = maps["md"].copy()
    bad[int(slice_positions(5, 15)[2])] = np.nan
    with pytest.raises(VolumeError, match="non-finite"):
        extract_slices({**maps, "md": bad}, _tumor())
    with pytest.raises(VolumeError, match="empty"):
        extract_slices(maps, np.zeros(SHAPE, dtype=bool))


def test_tumor_crops_and_montage(tmp_path: Path) -> None:
    tumor = np.zeros(SHAPE, dtype=bool)
    zz, yy, xx = np.indices(SHAPE)
    tumor[(zz - 10) ** 2 + (yy - 9) ** 2 / 2 + (xx - 11) ** 2 / 3 < 25] = True
    slices, record = extract_slices(_coded_maps(), tumor, size=(32, 32))
    crops = tumor_crops(tumor, record)
    assert crops.shape == (4, 32, 32) and crops.min() >= 0.0 and crops.max() <= 1.0
    assert (crops > 0.5).any(axis=(1, 2)).all()
    out = tmp_path / "qc" / "P1.png"
    plot_slices(slices, record["order"], out, "P1: test", tumor_contours=crops)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["P1.png"]  # no temporary left
    with pytest.raises(ValueError):
        plot_slices(slices, record["order"][:-1], out, "bad")
