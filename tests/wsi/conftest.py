"""Fixtures of the WSI tests: small pyramidal JPEG TIFF slides written once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mmsurv.demo.slides import SlideSpec, render_slide
from mmsurv.demo.tiff import write_pyramidal_tiff

GLASS = (243, 241, 245)
PINK = (228, 150, 195)


@dataclass(frozen=True)
class DiscSlide:
    """A synthetic slide: glass, a large pink disc, a kept blob and a speck to be dropped.

    Centres and radii are in level-0 pixels; ``mpp`` is the level-0 pixel size in um/px.
    """

    path: Path
    width: int
    height: int
    mpp: float
    disc: tuple[float, float, float]
    blob: tuple[float, float, float]
    speck: tuple[float, float, float]


def _paint(img: np.ndarray, circle: tuple[float, float, float], colour) -> None:
    cx, cy, r = circle
    yy, xx = np.ogrid[0 : img.shape[0], 0 : img.shape[1]]
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = colour


@pytest.fixture(scope="session")
def disc_slide(tmp_path_factory: pytest.TempPathFactory) -> DiscSlide:
    """4096 x 3072 px at 0.25 um/px, levels (1, 4, 16).

    Disc of radius 250 um, blob of 75 um (17,700 um^2, kept), speck of 40 um (5,000 um^2,
    below the default minimum area).
    """
    w, h, mpp = 4096, 3072, 0.25
    rng = np.random.default_rng(0)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = GLASS
    disc, blob, speck = (2048.0, 1536.0, 1000.0), (3600.0, 450.0, 300.0), (500.0, 2700.0, 160.0)
    for circle in (disc, blob, speck):
        _paint(img, circle, PINK)
    img = np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("wsi_disc") / "disc.tiff"
    write_pyramidal_tiff(path, img, mpp, levels=3, downsample=4)
    return DiscSlide(path, w, h, mpp, disc, blob, speck)


def _demo_slide(folder: Path, name: str, mpp: float, write_mpp: bool, index: int) -> Path:
    spec = SlideSpec(name, "P", index, 2048, 1536, mpp, write_mpp, 3000.0, 0.1)
    path = folder / f"{name}.tiff"
    write_pyramidal_tiff(path, render_slide(spec, 0), mpp if write_mpp else None, levels=2)
    return path


@pytest.fixture(scope="session")
def demo_slides(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Demo-style H&E slides (2048 x 1536 px, levels (1, 4)).

    Keys: ``mpp050`` (0.5 um/px, metadata), ``mpp025`` (0.25 um/px, metadata), ``nompp``
    (0.25 um/px, no resolution metadata), ``mpp100`` (1.0 um/px, metadata).
    """
    folder = tmp_path_factory.mktemp("wsi_demo")
    return {
        "mpp050": _demo_slide(folder, "mpp050", 0.5, True, 1),
        "mpp025": _demo_slide(folder, "mpp025", 0.25, True, 2),
        "nompp": _demo_slide(folder, "nompp", 0.25, False, 3),
        "mpp100": _demo_slide(folder, "mpp100", 1.0, True, 4),
    }
