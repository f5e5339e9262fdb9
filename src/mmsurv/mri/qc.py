"""Per-patient QC montage of the MRI preprocessing (matplotlib Agg canvas, no pyplot state).

Rows are the sequences; columns are the mid-tumour axial slice after resampling (before N4),
the same slice after N4 and z-scoring, and the estimated multiplicative bias field. The tumour
mask (red; dashed orange for a weak mask from the segmentation network or a weak-mask file) and
the head mask (cyan) are drawn as contours on every panel.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["MontageData", "montage"]

_log = logging.getLogger(__name__)


@dataclass
class MontageData:
    """The 2-D slices one patient's montage is drawn from.

    All arrays are (H, W) = (rows, columns) of one axial slice of the output grid; with the
    default LPS orientation rows run anterior to posterior and columns right to left (the
    radiological view).

    Attributes
    ----------
    patient_id
        Patient shown in the title.
    channels
        Sequences, one montage row each, in this order.
    before
        Channel -> slice after resampling, before N4 (input intensity units).
    after
        Channel -> slice after N4 and z-scoring (unitless).
    bias
        Channel -> estimated multiplicative bias field ``exp(log_field)`` (1 = no bias).
    tumor
        Boolean tumour mask slice.
    head
        Boolean head mask slice.
    slice_index
        Index of the slice along the grid's axial axis.
    pixel_mm
        (row, column) pixel size in mm (sets the aspect ratio).
    cv_before, cv_after
        Channel -> coefficient of variation inside the head mask before / after N4.
    mask_source
        Where the tumour mask came from: ``ground_truth``, ``weak_network`` or ``weak_file``.
    """

    patient_id: str
    channels: tuple[str, ...]
    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    bias: dict[str, np.ndarray]
    tumor: np.ndarray
    head: np.ndarray
    slice_index: int
    pixel_mm: tuple[float, float] = (1.0, 1.0)
    cv_before: dict[str, float] = field(default_factory=dict)
    cv_after: dict[str, float] = field(default_factory=dict)
    mask_source: str = "ground_truth"


#: How each mask source is named in the montage's title.
_SOURCE_TEXT = {
    "ground_truth": "tumour: ground-truth mask",
    "weak_network": "tumour: WEAK label from the segmentation network",
    "weak_file": "tumour: WEAK label from the weak-mask folder",
}


def _range(values: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentiles of ``values`` inside ``inside`` (all values when empty)."""
    sample = values[inside] if inside.any() else values.ravel()
    low, high = (float(v) for v in np.percentile(sample, [1.0, 99.0]))
    return (low, high) if high > low else (low, low + 1.0)


def _contours(ax: Axes, data: MontageData) -> None:
    """Draw the tumour (red) and head (cyan) outlines, skipping an empty or full slice."""
    weak = data.mask_source != "ground_truth"
    tumour_style = ("orange", "dashed") if weak else ("red", "solid")
    for mask, (colour, style) in ((data.head, ("cyan", "solid")), (data.tumor, tumour_style)):
        if mask.any() and not mask.all():
            ax.contour(
                mask.astype(np.float32),
                levels=[0.5],
                colors=colour,
                linewidths=0.7,
                linestyles=style,
            )


def _panel(
    ax: Axes, image: np.ndarray, data: MontageData, cmap: str, vrange: tuple[float, float]
) -> object:
    shown = ax.imshow(
        image,
        cmap=cmap,
        vmin=vrange[0],
        vmax=vrange[1],
        aspect=data.pixel_mm[0] / data.pixel_mm[1],
        interpolation="nearest",
    )
    _contours(ax, data)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def _cv_text(data: MontageData, channel: str) -> str:
    before, after = data.cv_before.get(channel), data.cv_after.get(channel)
    if before is None or after is None:
        return channel
    return f"{channel}\nCV {before:.3f} -> {after:.3f}"


def _draw(fig: Figure, data: MontageData) -> None:
    """Fill ``fig`` with one row of three panels per channel."""
    axes = fig.subplots(len(data.channels), 3, squeeze=False)
    for row, channel in zip(axes, data.channels, strict=True):
        _panel(row[0], data.before[channel], data, "gray", _range(data.before[channel], data.head))
        _panel(row[1], data.after[channel], data, "gray", _range(data.after[channel], data.head))
        bias = np.where(data.head, data.bias[channel], np.nan)
        low, high = _range(data.bias[channel], data.head)
        shown = _panel(row[2], bias, data, "coolwarm", (min(low, 1.0), max(high, 1.0)))
        fig.colorbar(shown, ax=row[2], fraction=0.046, pad=0.02)
        row[0].set_ylabel(_cv_text(data, channel), fontsize=8)
    for ax, title in zip(axes[0], ("before N4", "after N4 + z-score", "bias field"), strict=True):
        ax.set_title(title, fontsize=9)
    cvs = ", ".join(
        f"{c} {data.cv_before[c]:.3f}->{data.cv_after[c]:.3f}"
        for c in data.channels
        if c in data.cv_before and c in data.cv_after
    )
    source = _SOURCE_TEXT.get(data.mask_source, data.mask_source)
    fig.suptitle(
        f"{data.patient_id}: axial slice {data.slice_index} ({source})\nCV in head mask {cvs}",
        fontsize=9,
    )


def montage(data: MontageData, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write the QC montage of one patient as a PNG, atomically.

    Parameters
    ----------
    data
        The slices and numbers to draw (from :func:`mmsurv.mri.preprocess.preprocess_patient`).
    path
        Destination ``.png``; parent folders are created.
    dpi
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    missing = [
        c for c in data.channels if not all(c in d for d in (data.before, data.after, data.bias))
    ]
    if missing:
        raise ValueError(f"montage of {data.patient_id}: no slices for channels {missing}")
    fig = Figure(figsize=(7.5, 2.3 * len(data.channels) + 0.6))
    FigureCanvasAgg(fig)  # render with Agg whatever pyplot's backend is
    _draw(fig, data)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _log.debug("wrote QC montage %s", path)
    return path
