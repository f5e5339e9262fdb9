"""Tiling speed on a full-size slide, and proof that choosing tiles reads no level-0 pixels.

Writes a 40,000 x 30,000 px (0.25 um/px, a 10 x 7.5 mm section scanned at 40x) tiled JPEG
pyramidal TIFF, streamed tile by tile with tifffile (the level-0 image, 3.6 GB as RGB, is never
held in memory): level-0 tiles are drawn from a set of demo-style H&E texture tiles
(``mmsurv.demo.slides.render_slide``) laid out by a smooth tissue field, plus reduced levels
(downsample 4, 16, 64) built from the same layout with a box filter, and X/YResolution metadata
that OpenSlide reports as ``openslide.mpp-x``.

Then times ``mmsurv.wsi.tile_slide`` (seconds per slide, tiles/s) and counts every OpenSlide
``read_region`` call by pyramid level through a wrapper: level-0 reads are only the
``verify_reads`` check tiles (none with ``verify_reads=0``).

Usage: python benchmarks/tiling.py [--slide /tmp/mmsurv_bench_40k.tiff] [--repeats 3]
       [--max-tiles 2000] [--no-doc]
The slide is kept (default /tmp/mmsurv_bench_40k.tiff) and reused by later runs. Writes the
table to docs/benchmarks.md (section "Tiling a 40,000 x 30,000 px slide"), replacing an older
one.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openslide
import tifffile
from _doc import replace_section  # benchmarks/_doc.py (scripts run from benchmarks/)
from PIL import Image

from mmsurv.demo._util import smooth_noise
from mmsurv.demo.slides import SlideSpec, render_slide
from mmsurv.wsi import tile_slide

SECTION = "## Tiling a 40,000 x 30,000 px slide"
WIDTH, HEIGHT, MPP = 40_000, 30_000, 0.25
TILE = 256
LEVELS = 4  # downsamples 1, 4, 16, 64
DOWNSAMPLE = 4

_log = logging.getLogger("benchmarks.tiling")


def _textures(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(K, 256, 256, 3) tissue and (G, 256, 256, 3) glass tiles cut from a rendered demo slide."""
    spec = SlideSpec("texture", "P", 7, 4096, 3072, MPP, True, 3000.0, 0.1)
    img = render_slide(spec, 0)
    tiles = img[: 3072 // TILE * TILE, : 4096 // TILE * TILE]
    tiles = tiles.reshape(3072 // TILE, TILE, 4096 // TILE, TILE, 3).swapaxes(1, 2)
    tiles = tiles.reshape(-1, TILE, TILE, 3)
    share = (tiles.min(-1) >= 220).mean(axis=(1, 2))  # share of glass (near-white) pixels
    tissue, glass = tiles[share < 0.02], tiles[share > 0.98]
    if not len(tissue) or not len(glass):
        raise RuntimeError(f"texture slide: {len(tissue)} tissue and {len(glass)} glass tiles")
    _log.info("texture tiles: %d tissue, %d glass", len(tissue), len(glass))
    return tissue, glass[: max(1, min(len(glass), 8))]


def _layout(rng: np.random.Generator, n_tissue: int, n_glass: int) -> np.ndarray:
    """(rows, cols) texture index of each level-0 tile: tissue inside a noisy ellipse."""
    rows, cols = -(-HEIGHT // TILE), -(-WIDTH // TILE)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    ellipse = 1.0 - ((yy - rows / 2) / (0.42 * rows)) ** 2 - ((xx - cols / 2) / (0.42 * cols)) ** 2
    field = ellipse + 0.35 * smooth_noise((rows, cols), sigma=min(rows, cols) / 10, rng=rng)
    tissue = field > 0
    index = rng.integers(0, n_glass, (rows, cols))
    index[tissue] = n_glass + rng.integers(0, n_tissue, int(tissue.sum()))
    return index


def _level(textures: np.ndarray, layout: np.ndarray, factor: int) -> np.ndarray:
    """A reduced level: each texture box-filtered by ``factor``, assembled, cropped."""
    small = np.stack([np.asarray(Image.fromarray(t).reduce(factor)) for t in textures])
    b = small.shape[1]
    rows, cols = layout.shape
    img = small[layout].swapaxes(1, 2).reshape(rows * b, cols * b, 3)
    return np.ascontiguousarray(img[: -(-HEIGHT // factor), : -(-WIDTH // factor)])


def write_big_slide(path: Path, seed: int = 0) -> None:
    """Stream the 40k x 30k pyramidal JPEG TIFF to ``path`` (temporary name, then renamed)."""
    rng = np.random.default_rng(seed)
    tissue, glass = _textures(rng)
    textures = np.concatenate([glass, tissue])
    layout = _layout(rng, len(tissue), len(glass))

    def level0() -> Iterator[np.ndarray]:
        for row in layout:
            for k in row:
                yield textures[k]

    tmp = path.with_name(f".{path.name}.tmp")
    common = {
        "photometric": "rgb",
        "tile": (TILE, TILE),
        "compression": "jpeg",
        "compressionargs": {"level": 80},
        "metadata": None,
        "resolutionunit": "CENTIMETER",
    }
    with tifffile.TiffWriter(tmp) as tw:
        px_per_cm = 1e4 / MPP
        tw.write(
            level0(),
            shape=(HEIGHT, WIDTH, 3),
            dtype=np.uint8,
            subfiletype=0,
            resolution=(px_per_cm, px_per_cm),
            **common,
        )
        for level in range(1, LEVELS):
            factor = DOWNSAMPLE**level
            px_per_cm = 1e4 / (MPP * factor)
            tw.write(
                _level(textures, layout, factor),
                subfiletype=1,
                resolution=(px_per_cm, px_per_cm),
                **common,
            )
    tmp.replace(path)


@contextlib.contextmanager
def count_reads() -> Iterator[collections.Counter]:
    """Count ``OpenSlide.read_region`` calls (key: level) and pixels (key: ``(level, 'px')``)."""
    counts: collections.Counter = collections.Counter()
    original = openslide.OpenSlide.read_region

    def wrapper(self, location, level, size):
        counts[level] += 1
        counts[(level, "px")] += int(size[0]) * int(size[1])
        return original(self, location, level, size)

    openslide.OpenSlide.read_region = wrapper
    try:
        yield counts
    finally:
        openslide.OpenSlide.read_region = original


def measure(path: Path, repeats: int, max_tiles: int | None, verify: int) -> dict:
    """Best and median seconds of ``tile_slide`` and the read counts of one run."""
    seconds = []
    for _ in range(repeats):
        with count_reads() as counts:
            start = time.perf_counter()
            result = tile_slide(path, max_tiles=max_tiles, verify_reads=verify)
            seconds.append(time.perf_counter() - start)
    return {
        "seconds": seconds,
        "n_tiles": result.n_tiles,
        "n_grid": result.n_grid,
        "n_candidates": result.n_candidates,
        "counts": counts,
    }


def _reads(counts: collections.Counter) -> str:
    levels = sorted(k for k in counts if isinstance(k, int))
    return "; ".join(f"L{lv}: {counts[lv]} ({counts[(lv, 'px')] / 1e6:.2f} Mpx)" for lv in levels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slide", type=Path, default=Path("/tmp/mmsurv_bench_40k.tiff"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tiles", type=int, default=2000)
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.slide.exists():
        start = time.perf_counter()
        write_big_slide(args.slide)
        _log.info("wrote %s in %.0f s", args.slide, time.perf_counter() - start)
    with openslide.OpenSlide(args.slide) as s:
        dims, downs = s.dimensions, s.level_downsamples
        mpp = s.properties.get(openslide.PROPERTY_NAME_MPP_X)
    size_mb = args.slide.stat().st_size / 1e6
    _log.info("slide %s: %s, levels %s, mpp %s, %.0f MB", args.slide, dims, downs, mpp, size_mb)

    rows, reads = [], []
    for max_tiles, verify in ((args.max_tiles, 4), (None, 4), (None, 0)):
        m = measure(args.slide, args.repeats, max_tiles, verify)
        best, median = min(m["seconds"]), statistics.median(m["seconds"])
        rows.append(
            f"| {max_tiles if max_tiles else 'all'} | {verify} | {m['n_grid']} "
            f"| {m['n_candidates']} | {m['n_tiles']} | {best:.2f} | {median:.2f} "
            f"| {m['n_tiles'] / median:,.0f} | {m['counts'][0]} |"
        )
        reads.append(f"max_tiles={max_tiles}, verify_reads={verify}: {_reads(m['counts'])}")
        print(rows[-1], "\n   ", reads[-1], flush=True)

    if args.no_doc:
        return
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    command = " ".join(["python", "benchmarks/tiling.py", *sys.argv[1:]])
    table = "\n".join(
        [
            SECTION,
            "",
            f"`{command}` on {time.strftime('%Y-%m-%d')}: {cpu}, {os.cpu_count()} CPUs. Slide: "
            f"{dims[0]:,} x {dims[1]:,} px at {float(mpp):g} um/px, JPEG tiles of {TILE} px, "
            f"levels {', '.join(f'{d:.4g}' for d in downs)}, {size_mb:.0f} MB on disk (in the "
            f"page cache). Tiles of 256 px at 0.5 um/px (512 level-0 px), tissue mask at 8 um/px; "
            f"{args.repeats} runs each (time: best and median; tiles/s from the median). "
            "Level-0 `read_region` calls counted with a wrapper around `OpenSlide.read_region`.",
            "",
            "| max_tiles | verify_reads | grid tiles | on tissue | kept | best (s) | median (s) "
            "| tiles/s | level-0 reads |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "`read_region` calls (and pixels) by level, per run:",
            "",
            *[f"- {line}" for line in reads],
            "",
            "Choosing the tile coordinates reads only the low-resolution level used for the "
            "tissue mask; the only level-0 reads are the `verify_reads` check tiles (a few tiles "
            "read back to prove the tile data decodes).",
            "",
        ]
    )
    replace_section(SECTION, table)


if __name__ == "__main__":
    main()
