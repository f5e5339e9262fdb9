"""Tissue segmentation: saturation, threshold, morphology and the mask of a synthetic slide."""

from __future__ import annotations

import numpy as np
import pytest

from mmsurv.wsi import TissueParams, open_slide, segment_tissue, tissue_mask
from mmsurv.wsi.tissue import otsu_threshold, saturation, saturation_threshold

GLASS = (243, 241, 245)
PINK = (228, 150, 195)


def test_saturation_of_known_colours() -> None:
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0], [200, 100, 150]]], np.uint8)
    np.testing.assert_allclose(saturation(rgb), [[0.0, 0.0, 1.0, 0.5]])


def test_otsu_separates_two_modes() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.05, 0.01, 7000), rng.normal(0.4, 0.03, 3000)])
    assert 0.15 < otsu_threshold(np.clip(values, 0, 1)) < 0.3
    two_values = np.concatenate([np.full(700, 0.1), np.full(300, 0.5)])
    assert otsu_threshold(two_values) == pytest.approx(0.3, abs=0.01)  # middle of the gap
    assert otsu_threshold(np.full(100, 0.3)) == 0.0
    assert otsu_threshold(np.array([])) == 0.0


def test_threshold_lies_between_glass_and_otsu_and_has_a_floor() -> None:
    sat = np.concatenate([np.full(6000, 0.02), np.full(4000, 0.32)])
    otsu = otsu_threshold(sat)
    assert saturation_threshold(sat, 1.0, 0.0) == pytest.approx(otsu)
    assert saturation_threshold(sat, 0.5, 0.0) == pytest.approx((0.02 + otsu) / 2, abs=1e-6)
    assert saturation_threshold(np.full(100, 0.01), 0.5, 0.05) == 0.05


def _image(h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = GLASS
    return img


def test_segment_fills_holes_and_drops_specks() -> None:
    img = _image(200, 300)
    yy, xx = np.ogrid[0:200, 0:300]
    r2 = (yy - 100) ** 2 + (xx - 100) ** 2
    ring = (r2 <= 60**2) & (r2 > 20**2)
    img[ring] = PINK
    img[(yy - 40) ** 2 + (xx - 250) ** 2 <= 3**2] = PINK  # ~28 px * 64 um^2: a speck
    img[150:190, 230:290] = (20, 20, 20)  # pen mark: dark, not tissue
    mask, threshold = segment_tissue(img, mpp=8.0)
    assert 0.05 <= threshold < 0.3
    assert mask[100, 100]  # the ring's hole is filled
    assert mask[(yy - 100) ** 2 + (xx - 100) ** 2 <= 55**2].all()
    assert not mask[40, 250]  # speck dropped
    assert not mask[150:190, 230:290].any()  # black excluded
    assert not mask[:, 175:].any()


def test_pale_tissue_counts() -> None:
    img = _image(200, 200)
    img[40:160, 20:100] = PINK
    img[40:160, 100:180] = (241, 204, 219)  # pale pink necrosis, saturation 0.15
    mask, _ = segment_tissue(img, mpp=8.0)
    assert mask[50:150, 30:170].all()


def test_min_area_is_in_square_microns() -> None:
    img = _image(100, 100)
    img[40:60, 40:60] = PINK  # 400 px
    at_8, _ = segment_tissue(img, mpp=8.0)  # 25,600 um^2: kept
    at_4, _ = segment_tissue(img, mpp=4.0)  # 6,400 um^2: dropped
    assert at_8.sum() > 300 and not at_4.any()
    kept, _ = segment_tissue(img, mpp=4.0, params=TissueParams(min_area_um2=5_000.0))
    assert kept.sum() > 300


def test_mask_of_synthetic_slide(disc_slide) -> None:
    with open_slide(disc_slide.path) as slide:
        tm = tissue_mask(slide, disc_slide.mpp)
    assert tm.level == 2  # 4 um/px level, shrunk by 2 to 8 um/px
    assert tm.mpp == pytest.approx(8.0, rel=0.01)
    dx, dy = tm.downsample
    assert tm.mask.shape == (round(disc_slide.height / dy), round(disc_slide.width / dx))
    h, w = tm.mask.shape
    yy, xx = np.mgrid[0:h, 0:w]
    x0, y0 = (xx + 0.5) * dx, (yy + 0.5) * dy  # mask pixel centres in level-0 px
    margin = 3 * dx

    def dist(circle):
        cx, cy, _ = circle
        return np.hypot(x0 - cx, y0 - cy)

    disc_r, blob_r = disc_slide.disc[2], disc_slide.blob[2]
    assert tm.mask[dist(disc_slide.disc) <= disc_r - margin].all()
    assert tm.mask[dist(disc_slide.blob) <= blob_r - margin].all()
    assert not tm.mask[dist(disc_slide.speck) <= disc_slide.speck[2] + margin].any()
    outside = (dist(disc_slide.disc) > disc_r + margin) & (dist(disc_slide.blob) > blob_r + margin)
    assert not tm.mask[outside].any()
