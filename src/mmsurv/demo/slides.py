"""Synthetic H&E-like whole-slide images written as pyramidal, tiled, JPEG-compressed TIFF.

A slide is drawn at a quarter of its resolution (glass, eosin-pink tissue with an irregular
border, pale necrotic patches, grain noise), upsampled, overlaid at full resolution with purple
nuclei whose density follows the patient's ``wsi_nuclei_per_mm2``, and written as successive
TIFF pages (one per pyramid level) that OpenSlide's generic-TIFF reader opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ._util import rng_for, smooth_noise
from .presets import DemoPreset
from .tiff import write_pyramidal_tiff

__all__ = [
    "SlideSpec",
    "render_slide",
    "plan_slides",
    "write_slide",
    "slide_path",
    "slides_sheet",
]

_GLASS = np.array([243.0, 241.0, 245.0])
_EOSIN = np.array([232.0, 160.0, 198.0])
_NECROSIS = np.array([241.0, 204.0, 219.0])
_HEMATOXYLIN = np.array([78.0, 42.0, 128.0])
_COARSE = 4  # the background is drawn at 1/_COARSE of level-0 resolution


@dataclass(frozen=True)
class SlideSpec:
    """One slide to draw.

    Attributes
    ----------
    slide_id, patient_id
        Identifiers (``TCGA-D0-0001-01Z-00-DX1``, ``TCGA-D0-0001``).
    index
        Global slide number (seeds its random stream).
    width_px, height_px
        Level-0 size in pixels.
    mpp
        Physical pixel size of level 0 in microns.
    write_mpp
        Whether the TIFF carries resolution metadata (OpenSlide then reports ``mpp``).
    nuclei_per_mm2
        Nuclei per mm^2 of viable tissue.
    necrosis_fraction
        Fraction (0..1) of the tissue area drawn as necrosis.
    """

    slide_id: str
    patient_id: str
    index: int
    width_px: int
    height_px: int
    mpp: float
    write_mpp: bool
    nuclei_per_mm2: float
    necrosis_fraction: float


def _nucleus_stamps(mpp: float, rng: np.random.Generator, n: int = 24) -> list[np.ndarray]:
    """Soft elliptical nucleus alpha masks (uint8, 0..235 = opacity * 255), radius 3-5.5 um."""
    stamps = []
    for _ in range(n):
        a = rng.uniform(3.0, 5.5) / mpp
        b = a * rng.uniform(0.55, 1.0)
        theta = rng.uniform(0.0, np.pi)
        r = int(np.ceil(a)) + 1
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        v = -xx * np.sin(theta) + yy * np.cos(theta)
        d = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        alpha = np.clip((1.15 - d) / 0.3, 0.0, 1.0) * rng.uniform(0.65, 0.92)
        stamps.append(np.round(255.0 * alpha).astype(np.uint8))
    return stamps


def _resize_linear(field: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear (corner-aligned) resize of a small 2-D field to ``shape``, as float32.

    Separable gathers rather than matrix products, so that no BLAS thread pool is involved.
    """
    out = field.astype(np.float32)
    for axis, n_out in enumerate(shape):
        n_in = out.shape[axis]
        pos = np.linspace(0.0, n_in - 1.0, n_out, dtype=np.float32)
        lo = np.minimum(pos.astype(np.intp), n_in - 2)
        frac = pos - lo
        frac = frac[:, None] if axis == 0 else frac[None, :]
        a, b = np.take(out, lo, axis=axis), np.take(out, lo + 1, axis=axis)
        out = a + (b - a) * frac
    return out


def _background(
    h: int, w: int, necrosis_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coarse background of a slide.

    Returns
    -------
    rgb : numpy.ndarray
        (h, w, 3) uint8 glass, eosin tissue and pale necrosis with shading and grain.
    tissue, necrosis : numpy.ndarray
        (h, w) bool masks.
    """
    lo_h, lo_w = max(h // 8, 8), max(w // 8, 8)
    yy, xx = np.mgrid[0:lo_h, 0:lo_w].astype(np.float64)
    cy, cx = lo_h * rng.uniform(0.4, 0.6), lo_w * rng.uniform(0.4, 0.6)
    ry, rx = lo_h * rng.uniform(0.32, 0.45), lo_w * rng.uniform(0.32, 0.45)
    ellipse = 1.0 - ((yy - cy) / ry) ** 2 - ((xx - cx) / rx) ** 2
    field = ellipse + 0.45 * smooth_noise((lo_h, lo_w), sigma=min(lo_h, lo_w) / 12, rng=rng)
    shading = smooth_noise((lo_h, lo_w), sigma=min(lo_h, lo_w) / 20, rng=rng)
    nec_field = smooth_noise((lo_h, lo_w), sigma=min(lo_h, lo_w) / 16, rng=rng)
    cut = np.inf
    if necrosis_fraction > 0 and (field > 0).any():
        cut = np.quantile(nec_field[field > 0], 1.0 - necrosis_fraction)
    tissue = _resize_linear(field, (h, w)) > 0.0
    necrosis = tissue & (_resize_linear(nec_field, (h, w)) > cut)
    shade = np.clip(_resize_linear(shading, (h, w)) * 5.0 + 16.0, 0, 31).astype(np.intp)
    rgb = _BACKGROUND_LUT[tissue.astype(np.intp) + necrosis, shade]
    grain = rng.integers(-4, 5, rgb.shape, dtype=np.int16)
    grain += rng.integers(-4, 5, rgb.shape, dtype=np.int16)
    grain += rgb
    return np.clip(grain, 0, 255).astype(np.uint8), tissue, necrosis


def _lut() -> np.ndarray:
    """(3, 32, 3) int16 colours of glass / tissue / necrosis at 32 shading steps of 1 %."""
    tint = 1.0 + 0.01 * (np.arange(32) - 16.0)
    glass = np.broadcast_to(_GLASS, (32, 3))
    colours = np.stack([glass, _EOSIN * tint[:, None], _NECROSIS * tint[:, None]])
    return np.clip(np.round(colours), 0, 255).astype(np.int16)


_BACKGROUND_LUT = _lut()


def _stamp_all(
    h: int, w: int, ys: np.ndarray, xs: np.ndarray, stamps: list[np.ndarray], which: np.ndarray
) -> np.ndarray:
    """Opacity map of all nuclei: the maximum of the stamps centred at (ys, xs).

    Returns an (h, w) uint8 array (255 = opaque hematoxylin).
    """
    pad = max(st.shape[0] for st in stamps) // 2
    pw = w + 2 * pad
    canvas = np.zeros((h + 2 * pad) * pw, dtype=np.uint8)
    centre = (ys + pad) * pw + (xs + pad)
    for k, st in enumerate(stamps):
        r = st.shape[0] // 2
        dy, dx = np.nonzero(st)
        offsets = (dy - r) * pw + (dx - r)
        where = centre[which == k]
        idx = (where[:, None] + offsets[None, :]).ravel()
        np.maximum.at(canvas, idx, np.tile(st[dy, dx], where.size))
    return canvas.reshape(h + 2 * pad, pw)[pad : pad + h, pad : pad + w].copy()


def render_slide(spec: SlideSpec, seed: int) -> np.ndarray:
    """Draw one slide at level 0.

    Parameters
    ----------
    spec
        What to draw.
    seed
        Cohort seed; with ``spec.index`` it seeds the slide's random stream.

    Returns
    -------
    numpy.ndarray
        (height_px, width_px, 3) uint8 RGB image.
    """
    rng = rng_for(seed, "slide", spec.index)
    h, w = spec.height_px, spec.width_px
    ch, cw = -(-h // _COARSE), -(-w // _COARSE)
    coarse, tissue, necrosis = _background(ch, cw, spec.necrosis_fraction, rng)
    rgb = np.ascontiguousarray(coarse.repeat(_COARSE, axis=0).repeat(_COARSE, axis=1)[:h, :w])

    area_mm2 = h * w * (spec.mpp * 1e-3) ** 2
    n = rng.poisson(spec.nuclei_per_mm2 * area_mm2)
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    keep = tissue[ys // _COARSE, xs // _COARSE]
    in_nec = necrosis[ys // _COARSE, xs // _COARSE]
    keep &= ~in_nec | (rng.random(n) < 0.08)
    ys, xs = ys[keep], xs[keep]
    stamps = _nucleus_stamps(spec.mpp, rng)
    alpha = _stamp_all(h, w, ys, xs, stamps, rng.integers(0, len(stamps), ys.size))
    idx = np.flatnonzero(alpha)
    a = (alpha.ravel()[idx].astype(np.float32) / 255.0)[:, None]
    flat = rgb.reshape(-1, 3)
    flat[idx] = (flat[idx] * (1.0 - a) + _HEMATOXYLIN.astype(np.float32) * a).astype(np.uint8)

    return rgb


def plan_slides(traits: pd.DataFrame, preset: DemoPreset, seed: int) -> list[SlideSpec]:
    """Decide which patients get 0, 1 or 2 slides, their sizes and their pixel sizes.

    About 10 % of patients have no slide and 20 % have two; 20 % of slides are scanned at
    0.25 um/px, the rest at 0.5 um/px; one slide (two for 100+ slides) has no resolution
    metadata.
    """
    rng = rng_for(seed, "slide-plan")
    n = len(traits)
    counts = np.ones(n, dtype=int)
    order = rng.permutation(n)
    n_none, n_two = max(1, round(0.10 * n)), max(1, round(0.20 * n))
    counts[order[:n_none]] = 0
    counts[order[n_none : n_none + n_two]] = 2
    n_slides = int(counts.sum())
    mpp = np.where(rng.random(n_slides) < 0.2, 0.25, 0.5)
    no_meta = set(rng.choice(n_slides, size=1 if n_slides < 100 else 2, replace=False).tolist())
    step = preset.slide_downsample ** (preset.slide_levels - 1)
    specs, k = [], 0
    for i, row in enumerate(traits.itertuples(index=False)):
        for j in range(counts[i]):
            w, h = (round(s * rng.uniform(0.9, 1.1) / step) * step for s in preset.slide_size_px)
            specs.append(
                SlideSpec(
                    slide_id=f"{row.patient_id}-01Z-00-DX{j + 1}",
                    patient_id=row.patient_id,
                    index=k,
                    width_px=int(w),
                    height_px=int(h),
                    mpp=float(mpp[k]),
                    write_mpp=k not in no_meta,
                    nuclei_per_mm2=float(row.wsi_nuclei_per_mm2),
                    necrosis_fraction=float(row.wsi_necrosis_fraction),
                )
            )
            k += 1
    return specs


def write_slide(spec: SlideSpec, out: Path, preset: DemoPreset, seed: int) -> Path:
    """Render one slide and write it to ``out/slides/{slide_id}.tiff``; return that path."""
    path = out / slide_path(spec)
    write_pyramidal_tiff(
        path,
        render_slide(spec, seed),
        spec.mpp if spec.write_mpp else None,
        levels=preset.slide_levels,
        downsample=preset.slide_downsample,
        tile_px=preset.tile_px,
        quality=preset.jpeg_quality,
    )
    return path


def slide_path(spec: SlideSpec) -> str:
    """Path of a slide relative to the cohort folder (``slides/{slide_id}.tiff``)."""
    return f"slides/{spec.slide_id}.tiff"


def slides_sheet(specs: list[SlideSpec]) -> pd.DataFrame:
    """The ``slides.tsv`` sheet of the planned slides.

    Returns
    -------
    pandas.DataFrame
        Columns ``slide_id``, ``patient_id``, ``path`` (relative to the cohort folder) and
        ``mpp`` (microns per pixel; NA except for slides without resolution metadata).
    """
    return pd.DataFrame(
        {
            "slide_id": [s.slide_id for s in specs],
            "patient_id": [s.patient_id for s in specs],
            "path": [slide_path(s) for s in specs],
            "mpp": pd.array([None if s.write_mpp else s.mpp for s in specs], dtype="Float64"),
        }
    )
