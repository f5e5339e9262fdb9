"""Class-activation maps of the DTI network over test patients' 16-slice input (seed-4 Fig. 6b)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = ["plot_dti_cam"]


def plot_dti_cam(
    panels: Sequence[Mapping[str, Any]], maps: Sequence[str], title: str, path: str | Path
) -> None:
    """One row per patient: each map's middle slice of the input, then Grad-CAM over FA.

    Parameters
    ----------
    panels
        Per patient: ``patient_id``, ``risk`` (the signature, higher = worse), ``time``
        (days), ``event`` (0/1), ``slices`` ((len(maps) * k, H, W) input, map-major) and
        ``cam`` ((H, W) map in [0, 1]).
    maps
        Map names in channel order (``fa``, ``md``, ``ad``, ``rd``).
    title
        Figure title.
    path
        PNG written atomically.
    """
    n_maps = len(maps)
    fig, axes = plt.subplots(
        max(1, len(panels)),
        n_maps + 1,
        figsize=(2.3 * (n_maps + 1), 2.4 * max(1, len(panels))),
        squeeze=False,
    )
    for row, panel in zip(axes, panels, strict=False):
        slices = np.asarray(panel["slices"])
        per_map = slices.shape[0] // n_maps
        middle = per_map // 2
        for j, (ax, name) in enumerate(zip(row, maps, strict=False)):
            ax.imshow(slices[j * per_map + middle], cmap="gray")
            ax.set_title(f"{name.upper()} (slice {middle + 1}/{per_map})", fontsize=7)
        ax = row[n_maps]
        ax.imshow(slices[middle], cmap="gray")
        ax.imshow(panel["cam"], cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
        ax.set_title("Grad-CAM over FA", fontsize=7)
        row[0].set_ylabel(
            f"{panel['patient_id']}\nDLS {panel['risk']:.2f}, {panel['time']:.0f} d, "
            f"{'event' if panel['event'] else 'censored'}",
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
