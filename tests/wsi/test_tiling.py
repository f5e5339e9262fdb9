"""Tiling: grid geometry, tissue fractions, tile count, seeded sampling and damaged slides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from mmsurv.wsi import SlideError, TilingResult, tile_grid, tile_slide, tissue_fractions


@pytest.mark.parametrize(
    ("width", "height", "step", "n_x", "n_y"),
    [
        (1024, 768, 256.0, 4, 3),
        (1000, 700, 256.0, 3, 2),
        (2000, 1100, 506.6, 3, 2),
        (100, 80, 128.0, 0, 0),
    ],
)
def test_tile_grid(width, height, step, n_x, n_y) -> None:
    grid = tile_grid(width, height, step)
    assert grid.dtype == np.int64 and grid.shape == (n_x * n_y, 2)
    if n_x:
        np.testing.assert_array_equal(np.unique(grid[:, 0]), np.floor(np.arange(n_x) * step))
        np.testing.assert_array_equal(np.unique(grid[:, 1]), np.floor(np.arange(n_y) * step))
        assert (grid[:, 0] + step <= width).all() and (grid[:, 1] + step <= height).all()
        np.testing.assert_array_equal(grid[:2, 1], [0, 0])  # row-major: x varies first


def test_tissue_fractions_are_exact_area_overlaps() -> None:
    mask = np.zeros((4, 4), bool)
    mask[:, :2] = True  # left half
    coords = np.array([[0, 0], [8, 0], [4, 0], [6, 6], [12, 12]], dtype=np.int64)
    got = tissue_fractions(mask, (4.0, 4.0), coords, 8.0)
    # tile 4 extends past the mask: the outside counts as background
    np.testing.assert_allclose(got, [1.0, 0.0, 0.5, 0.25, 0.0], atol=1e-6)


@pytest.fixture(scope="module")
def disc_tiles(disc_slide) -> TilingResult:
    """All tiles of 64 px at 0.5 um/px (32 um) on the disc slide, no cap."""
    return tile_slide(disc_slide.path, tile_size_px=64, max_tiles=None)


def _analytic_fraction(coords: np.ndarray, size: float, circles) -> np.ndarray:
    """Fraction of each tile inside the union of circles, on a 16 x 16 point grid."""
    offsets = (np.arange(16) + 0.5) / 16 * size
    px = coords[:, 0, None, None] + offsets[None, None, :]
    py = coords[:, 1, None, None] + offsets[None, :, None]
    inside = np.zeros(np.broadcast_shapes(px.shape, py.shape), bool)
    for cx, cy, r in circles:
        inside |= (px - cx) ** 2 + (py - cy) ** 2 <= r * r
    return inside.mean(axis=(1, 2))


def test_result_geometry(disc_slide, disc_tiles: TilingResult) -> None:
    r = disc_tiles
    assert (r.mpp0, r.mpp, r.magnification) == (0.25, 0.5, 20.0)
    assert (r.level, r.read_downsample, r.read_size_px) == (0, 2.0, 128)
    assert r.tile_size_um == 32.0 and r.tile_size_level0_px == 128.0
    assert r.slide_dimensions == (disc_slide.width, disc_slide.height)
    assert r.n_grid == (4096 // 128) * (3072 // 128)
    assert r.coords.dtype == np.int64 and r.coords.shape == (r.n_tiles, 2)
    assert r.n_tiles == r.n_candidates
    assert (r.coords % 128 == 0).all()  # on the grid


def test_every_tile_is_inside_the_slide_and_on_tissue(disc_slide, disc_tiles) -> None:
    r = disc_tiles
    size = r.tile_size_level0_px
    assert (r.coords >= 0).all()
    assert (r.coords[:, 0] + size <= disc_slide.width).all()
    assert (r.coords[:, 1] + size <= disc_slide.height).all()
    assert (r.tissue_fraction >= 0.5).all()
    truth = _analytic_fraction(r.coords, size, [disc_slide.disc, disc_slide.blob])
    assert truth.min() >= 0.3  # mask edges are 8 um (32 level-0 px) coarse
    assert np.mean(truth) > 0.9
    assert (_analytic_fraction(r.coords, size, [disc_slide.speck]) == 0).all()


def test_tile_count_follows_tissue_area(disc_slide, disc_tiles) -> None:
    area = sum(np.pi * c[2] ** 2 for c in (disc_slide.disc, disc_slide.blob))
    expected = area / disc_tiles.tile_size_level0_px**2
    assert disc_tiles.n_tiles == pytest.approx(expected, rel=0.08)
    strict = tile_slide(disc_slide.path, tile_size_px=64, max_tiles=None, min_tissue_fraction=1.0)
    loose = tile_slide(disc_slide.path, tile_size_px=64, max_tiles=None, min_tissue_fraction=0.01)
    assert strict.n_tiles < disc_tiles.n_tiles < loose.n_tiles


def test_cap_is_seeded_sorted_and_a_subset(disc_slide, disc_tiles) -> None:
    kwargs = {"tile_size_px": 64, "max_tiles": 50}
    a = tile_slide(disc_slide.path, seed=0, **kwargs)
    b = tile_slide(disc_slide.path, seed=0, **kwargs)
    c = tile_slide(disc_slide.path, seed=1, **kwargs)
    assert a.n_tiles == c.n_tiles == 50
    assert a.n_candidates == disc_tiles.n_tiles
    np.testing.assert_array_equal(a.coords, b.coords)
    assert not np.array_equal(a.coords, c.coords)
    order = np.lexsort((a.coords[:, 0], a.coords[:, 1]))
    np.testing.assert_array_equal(order, np.arange(50))  # row-major grid order
    all_tiles = {tuple(xy) for xy in disc_tiles.coords}
    assert {tuple(xy) for xy in a.coords} <= all_tiles


@pytest.mark.parametrize(
    ("key", "target", "level", "factor"),
    [("mpp025", 0.5, 0, 2.0), ("mpp050", 0.5, 0, 1.0), ("mpp025", 1.0, 1, 1.0)],
)
def test_demo_slides_level_choice(demo_slides, key, target, level, factor) -> None:
    r = tile_slide(demo_slides[key], target_mpp=target)
    assert (r.level, r.read_downsample) == (level, factor)
    assert r.tile_size_level0_px == pytest.approx(256 * target / r.mpp0)
    assert 0 < r.n_tiles <= r.n_candidates <= r.n_grid


def test_slide_coarser_than_target_fails_naming_it(demo_slides) -> None:
    with pytest.raises(SlideError, match=r"mpp100\.tiff.*1 um/px.*upsampled"):
        tile_slide(demo_slides["mpp100"], target_mpp=0.5)
    assert tile_slide(demo_slides["mpp100"], target_mpp=1.0).n_tiles > 0


@pytest.mark.parametrize(
    "kwargs",
    [{"target_mpp": 0.0}, {"tile_size_px": 0}, {"min_tissue_fraction": 1.5}, {"max_tiles": 0}],
)
def test_invalid_parameters(demo_slides, kwargs) -> None:
    with pytest.raises(ValueError):
        tile_slide(demo_slides["mpp050"], **kwargs)


def test_damaged_tile_data_fails_the_tiling(tmp_path: Path, demo_slides) -> None:
    data = bytearray(demo_slides["mpp050"].read_bytes())
    with tifffile.TiffFile(demo_slides["mpp050"]) as tif:
        page = tif.pages[0]  # level 0; the mask is computed from level 1
        for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True):
            data[offset : offset + count] = bytes(count)
    path = tmp_path / "damaged.tiff"
    path.write_bytes(bytes(data))
    # coordinates come from the low-resolution mask alone ...
    assert tile_slide(path, verify_reads=0).n_tiles > 0
    # ... and reading a few tiles back exposes the damage, naming the slide
    with pytest.raises(SlideError, match="damaged.tiff"):
        tile_slide(path)
