"""Grad-CAM maps of the 3D MRI networks over test patients' tumor crops (seed-3 Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = ["tumor_slice", "plot_gradcam"]


def tumor_slice(mask: np.ndarray) -> int:
    """Axial index (axis 0 of a (D, H, W) crop) with the largest tumor area; the middle slice
    when the mask is empty."""
    area = (np.asarray(mask) > 0).reshape(mask.shape[0], -1).sum(axis=1)
    return int(np.argmax(area)) if area.any() else mask.shape[0] // 2


def plot_gradcam(
    panels: Sequence[Mapping[str, Any]],
    title: str,
    path: str | Path,
    map_name: str = "Grad-CAM",
) -> None:
    """One row per patient: each input channel's tumor slice, then the map's overlay.

    Parameters
    ----------
    panels
        Per patient: ``patient_id``, ``risk`` (higher = worse), ``time`` (days), ``event``
        (0/1), ``channels`` (name -> (D, H, W) z-scored crop), ``mask`` ((D, H, W) tumor mask
        of the crop), ``cam`` ((D, H, W) map in [0, 1], the input's size) and optionally
        ``caption`` (text under the patient id instead of the risk, e.g. a classifier's score)
        and ``weak`` (True: the mask is a weak label, drawn dashed orange).
    title
        Figure title (experiment and endpoint).
    path
        PNG written atomically.
    map_name
        Title of the overlay column (``Grad-CAM``, ``integrated gradients``).
    """
    n_ch = max((len(p["channels"]) for p in panels), default=1)
    fig, axes = plt.subplots(
        max(1, len(panels)),
        n_ch + 1,
        figsize=(2.4 * (n_ch + 1), 2.5 * max(1, len(panels))),
        squeeze=False,
    )
    for row, panel in zip(axes, panels, strict=False):
        z = tumor_slice(panel["mask"])
        names = list(panel["channels"])
        for ax, name in zip(row, names, strict=False):
            ax.imshow(panel["channels"][name][z], cmap="gray")
            weak = panel.get("weak", False)  # a weak mask (segmentation network): dashed
            ax.contour(
                panel["mask"][z] > 0,
                levels=[0.5],
                colors="orange" if weak else "r",
                linewidths=0.6,
                linestyles="dashed" if weak else "solid",
            )
            ax.set_title(name, fontsize=8)
        ax = row[n_ch]
        ax.imshow(panel["channels"][names[-1]][z], cmap="gray")
        ax.imshow(panel["cam"][z], cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        ax.set_title(map_name, fontsize=8)
        caption = panel.get("caption") or f"risk {panel['risk']:.2f}"
        row[0].set_ylabel(
            f"{panel['patient_id']}\n{caption}, "
            f"{panel['time']:.0f} d, {'event' if panel['event'] else 'censored'}",
            fontsize=7,
        )
        for a in row:
            a.set_xticks([])
            a.set_yticks([])
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no test patient", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
