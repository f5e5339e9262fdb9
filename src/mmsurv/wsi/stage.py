"""The WSI stage as the workflow runs it: one slide's tiling job, skipped slides, the QC table.

A slide that cannot be used (unreadable, truncated, no pixel size) raises
:class:`~mmsurv.wsi.slide.SlideError`. With ``wsi.on_error: fail`` (default) that error fails
the slide's own job and names the file; with ``skip`` the job writes a tile file with no tiles
whose attributes say ``skipped`` and why, a thumbnail that says so, and the QC table lists it.
Either way the other slides are unaffected.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmsurv import __version__
from mmsurv.io import atomic_path

from .h5 import read_tiles_h5, write_tiles_h5
from .slide import SlideError, open_slide
from .thumbnail import write_thumbnail
from .tiling import tile_slide
from .tissue import TissueParams

__all__ = [
    "tissue_params",
    "slide_seed",
    "tile_one_slide",
    "write_skipped_tiles",
    "write_skipped_features",
    "is_skipped",
    "qc_table",
    "QC_COLUMNS",
]

_log = logging.getLogger("mmsurv.wsi.stage")

#: Columns of ``results/wsi/qc.tsv``.
QC_COLUMNS = [
    "slide_id",
    "patient_id",
    "status",
    "reason",
    "n_tiles",
    "n_candidates",
    "n_grid",
    "mpp0",
    "mpp",
    "magnification",
    "level",
    "downsample",
    "tile_size_px",
    "tile_size_um",
    "slide_width",
    "slide_height",
]


def tissue_params(wsi: Mapping[str, Any]) -> TissueParams:
    """The :class:`TissueParams` of the config's ``wsi.tissue`` mapping."""
    return TissueParams(**dict(wsi.get("tissue", {})))


def slide_seed(seed: int, slide_id: str) -> int:
    """Seed of one slide's tile sample: the run's ``seed`` combined with the slide id.

    Stable across runs and machines (CRC-32 of the id), different between slides, so that
    slides do not share one sampling pattern.
    """
    return (int(seed) << 32) | zlib.crc32(slide_id.encode())


def write_skipped_tiles(path: str | os.PathLike[str], slide_id: str, reason: str) -> Path:
    """Write the tile file of a skipped slide: no coordinates, ``skipped=1`` and the reason.

    Readers of tile files (:func:`read_tiles_h5`) see an empty ``coords`` (0, 2) array.
    """
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("coords", data=np.zeros((0, 2), dtype=np.int64))
        f.create_dataset("tissue_fraction", data=np.zeros(0, dtype=np.float32))
        f.attrs.update(
            {"slide_id": slide_id, "skipped": 1, "error": reason, "mmsurv_version": __version__}
        )
    return path


def write_skipped_features(path: str | os.PathLike[str], slide_id: str, reason: str) -> Path:
    """Write the feature file of a slide skipped at tiling: ``features`` (0, 0), ``skipped=1``."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("features", data=np.zeros((0, 0), dtype=np.float32))
        f.create_dataset("coords", data=np.zeros((0, 2), dtype=np.int64))
        f.attrs.update(
            {"slide_id": slide_id, "skipped": 1, "error": reason, "mmsurv_version": __version__}
        )
    return path


def is_skipped(attrs: Mapping[str, Any]) -> bool:
    """Whether tile- or feature-file attributes mark a skipped slide."""
    return bool(attrs.get("skipped", 0))


def _failure_thumbnail(path_png: str | os.PathLike[str], slide_id: str, reason: str) -> None:
    """A QC image stating that a slide was skipped and why."""
    fig = Figure(figsize=(6.0, 2.0), dpi=120)
    FigureCanvasAgg(fig)
    fig.text(0.02, 0.8, f"{slide_id}: SKIPPED", fontsize=11, color="firebrick", va="top")
    fig.text(0.02, 0.55, reason, fontsize=7, va="top", wrap=True)
    with atomic_path(path_png) as tmp:
        fig.savefig(tmp, format="png")


def tile_one_slide(
    wsi: Mapping[str, Any],
    seed: int,
    slide_id: str,
    slide_path: str | os.PathLike[str],
    mpp: float | None,
    out_h5: str | os.PathLike[str],
    out_png: str | os.PathLike[str],
) -> bool:
    """Tile one slide with the config's ``wsi`` settings; write its tile file and thumbnail.

    Parameters
    ----------
    wsi
        The validated ``wsi`` config mapping (target_mpp, tile_size_px, ...).
    seed
        The run's seed (combined with the slide id by :func:`slide_seed`).
    slide_id, slide_path
        The slide's id and file.
    mpp
        The slides sheet's ``mpp`` value in um/px, or ``None``/NaN when empty.
    out_h5, out_png
        ``results/wsi/tiles/{slide}.h5`` and ``results/wsi/thumbnails/{slide}.png``.

    Returns
    -------
    bool
        True if tiled, False if skipped (``on_error: skip``).

    Raises
    ------
    SlideError
        With ``on_error: fail``, when the slide cannot be used.
    """
    mpp = None if mpp is None or pd.isna(mpp) else float(mpp)
    try:
        result = tile_slide(
            slide_path,
            target_mpp=float(wsi["target_mpp"]),
            tile_size_px=int(wsi["tile_size_px"]),
            min_tissue_fraction=float(wsi["min_tissue_fraction"]),
            max_tiles=wsi["max_tiles"],
            seed=slide_seed(seed, slide_id),
            mpp_override=mpp,
            default_mpp=wsi["default_mpp"],
            tissue=tissue_params(wsi),
            verify_reads=int(wsi["verify_reads"]),
        )
        with open_slide(slide_path) as slide:
            write_thumbnail(out_png, slide, result)
    except SlideError as err:
        if wsi["on_error"] != "skip":
            raise
        _log.error("%s: SKIPPED (wsi.on_error: skip): %s", slide_id, err)
        write_skipped_tiles(out_h5, slide_id, str(err))
        _failure_thumbnail(out_png, slide_id, str(err))
        return False
    write_tiles_h5(result, out_h5, slide_id)
    return True


def qc_table(tile_files: Sequence[str | os.PathLike[str]], slides: pd.DataFrame) -> pd.DataFrame:
    """One QC row per slide from its tile file (``results/wsi/qc.tsv``).

    Parameters
    ----------
    tile_files
        The slides' ``results/wsi/tiles/{slide}.h5`` files.
    slides
        The slides sheet (``slide_id``, ``patient_id``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`QC_COLUMNS`; ``status`` is ``ok``, ``no_tissue`` (tiled, but no tile
        reached the minimum tissue fraction) or ``skipped`` (with the ``reason``).
    """
    patient = dict(
        zip(slides["slide_id"].astype(str), slides["patient_id"].astype(str), strict=True)
    )
    rows = []
    for path in tile_files:
        coords, a = read_tiles_h5(path)
        slide_id = str(a.get("slide_id", Path(path).stem))
        row: dict[str, Any] = {"slide_id": slide_id, "patient_id": patient.get(slide_id, "")}
        if is_skipped(a):
            row |= {"status": "skipped", "reason": a.get("error", ""), "n_tiles": 0}
        else:
            row |= {
                "status": "ok" if len(coords) else "no_tissue",
                "reason": "",
                "n_tiles": len(coords),
                "n_candidates": a["n_candidates"],
                "n_grid": a["n_grid"],
                "mpp0": a["mpp0"],
                "mpp": a["mpp"],
                "magnification": a["magnification"],
                "level": a["level"],
                "downsample": a["downsample"],
                "tile_size_px": a["patch_size"],
                "tile_size_um": a["tile_size_um"],
                "slide_width": a["slide_width"],
                "slide_height": a["slide_height"],
            }
        rows.append(row)
    table = pd.DataFrame(rows, columns=QC_COLUMNS)
    n_skip = int((table["status"] == "skipped").sum())
    _log.info(
        "wsi QC: %d slides, %d tiles in all, %d skipped, %d without tissue tiles",
        len(table),
        int(table["n_tiles"].sum()),
        n_skip,
        int((table["status"] == "no_tissue").sum()),
    )
    return table
