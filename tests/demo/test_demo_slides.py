"""Synthetic whole-slide images: OpenSlide compatibility, pixel sizes and content."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile

from mmsurv.demo import PRESETS
from mmsurv.demo.slides import SlideSpec, render_slide
from mmsurv.demo.tiff import write_pyramidal_tiff

SMOKE = PRESETS["smoke"]


def test_openslide_opens_every_slide_and_reports_mpp(smoke_dir: Path, sheets) -> None:
    slides = sheets["slides"]
    without_meta = 0
    for row in slides.itertuples(index=False):
        with openslide.OpenSlide(smoke_dir / row.path) as slide:
            assert slide.level_count == SMOKE.slide_levels >= 2
            assert slide.properties["openslide.vendor"] == "generic-tiff"
            w, h = slide.dimensions
            assert abs(w / SMOKE.slide_size_px[0] - 1) <= 0.11
            assert abs(h / SMOKE.slide_size_px[1] - 1) <= 0.11
            assert slide.level_downsamples[1] == pytest.approx(SMOKE.slide_downsample, rel=0.01)
            assert slide.properties["openslide.level[0].tile-width"] == str(SMOKE.tile_px)
            mpp = slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
            if math.isnan(row.mpp):
                assert mpp is not None and float(mpp) in (0.25, 0.5)
            else:
                assert mpp is None and row.mpp in (0.25, 0.5)
                without_meta += 1
            region = np.asarray(slide.read_region((w // 2, h // 2), 0, (256, 256)))
            assert region.shape == (256, 256, 4) and (region[..., 3] == 255).all()
    assert without_meta == 1
    assert (slides["mpp"].isna()).sum() == len(slides) - 1


def test_slides_are_jpeg_tiled_pages(smoke_dir: Path, sheets) -> None:
    with tifffile.TiffFile(smoke_dir / sheets["slides"]["path"].iloc[0]) as tif:
        assert len(tif.pages) == SMOKE.slide_levels
        for page in tif.pages:
            assert page.is_tiled and page.compression == tifffile.COMPRESSION.JPEG
            assert (page.tilewidth, page.tilelength) == (SMOKE.tile_px, SMOKE.tile_px)
            # tifffile stores RGB input as YCbCr JPEG with 2x2 chroma subsampling
            assert page.photometric == tifffile.PHOTOMETRIC.YCBCR
            assert page.samplesperpixel == 3


def _spec(density: float, necrosis: float, mpp: float = 0.5) -> SlideSpec:
    return SlideSpec("S-DX1", "S", 7, 1024, 768, mpp, True, density, necrosis)


def _nuclear_fraction(img: np.ndarray) -> float:
    """Fraction of non-glass pixels that are dark purple (nuclei)."""
    tissue = img.mean(axis=2) < 230
    dark = (img[..., 0] < 160) & (img[..., 2] > img[..., 1])
    return float(dark[tissue].mean())


@pytest.mark.parametrize(("low", "high"), [(1500.0, 4000.0), (3000.0, 7000.0)])
def test_nuclei_density_follows_parameter(low: float, high: float) -> None:
    assert _nuclear_fraction(render_slide(_spec(high, 0.0), 0)) > 1.5 * _nuclear_fraction(
        render_slide(_spec(low, 0.0), 0)
    )


def test_necrosis_is_pale_and_sparse() -> None:
    plain, necrotic = render_slide(_spec(5000, 0.0), 0), render_slide(_spec(5000, 0.3), 0)
    assert _nuclear_fraction(necrotic) < 0.85 * _nuclear_fraction(plain)


def test_render_is_deterministic_per_seed() -> None:
    spec = _spec(4000, 0.1)
    first = render_slide(spec, 0)
    assert first.shape == (768, 1024, 3) and first.dtype == np.uint8
    assert np.array_equal(first, render_slide(spec, 0))
    assert not np.array_equal(first, render_slide(spec, 1))


@pytest.mark.parametrize(("mpp", "levels"), [(0.5, 2), (0.25, 3), (None, 2)])
def test_write_pyramidal_tiff_roundtrip(tmp_path: Path, mpp: float | None, levels: int) -> None:
    img = render_slide(_spec(3000, 0.0), 3)
    path = tmp_path / "x.tiff"
    write_pyramidal_tiff(path, img, mpp, levels=levels, downsample=4, tile_px=256, quality=90)
    with openslide.OpenSlide(path) as slide:
        assert slide.level_count == levels
        assert slide.dimensions == (1024, 768)
        got = slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
        assert (got is None) if mpp is None else float(got) == pytest.approx(mpp)
        back = np.asarray(slide.read_region((0, 0), 0, (1024, 768)).convert("RGB"), dtype=float)
    assert np.abs(back - img).mean() < 6.0  # JPEG loss only
