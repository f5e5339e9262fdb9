"""Report figures and tables of the neural and slide-level experiments.

- training curves (training and validation loss per epoch, best epoch marked; the
  gradient-blending weights over epochs where a network has them);
- attention heatmaps of attention-MIL models over test-slide thumbnails;
- the slide- and case-level C-index table laid out like the seed-1 paper's Tables 1-2;
- the provenance of the patch features (encoder, weights or random initialisation).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mmsurv.io import atomic_path  # noqa: E402

__all__ = [
    "plot_training_curves",
    "plot_attention",
    "level_table",
    "features_provenance",
    "PROVENANCE_COLUMNS",
]

_log = logging.getLogger(__name__)

#: Columns of ``results/wsi/features/{encoder}.tsv`` (one row per slide).
PROVENANCE_COLUMNS = [
    "slide_id",
    "n_tiles",
    "dim",
    "encoder",
    "encoder_id",
    "weights",
    "pretrained",
    "seed",
    "device",
    "dtype",
    "tile_size_px",
    "tile_size_um",
    "mpp",
    "skipped",
]


def plot_training_curves(train_logs: Sequence[str | os.PathLike[str]], path: str | Path) -> None:
    """Training and validation loss per epoch of every fold, one panel per endpoint.

    ``train_logs`` are the folds' ``train_log.json``; a network's ``describe()`` stores
    ``history`` (list of ``{"epoch", "train_loss", "val_loss", ...}``) and ``best_epoch``
    under ``endpoints/{endpoint}/model``. The chosen (restored) epoch is marked. Networks
    trained with gradient blending (history columns ``w_mm``, ``w_image``, ``w_clinical``)
    get a second row with the heads' loss weights over epochs (the seed-3 paper's Fig. 1).
    Subtype classifiers (history ``train_cls``) show the label's weighted BCE on training and
    validation patients, and their segmentation loss dotted.
    """
    runs: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for file in train_logs:
        log = json.loads(Path(file).read_text())
        for endpoint, entry in log["endpoints"].items():
            runs.setdefault(endpoint, []).append((int(log["fold"]), entry.get("model", {})))
    endpoints = sorted(runs)
    blended = any(
        pd.DataFrame(desc.get("history", [])).get("w_mm", pd.Series(dtype=float)).notna().any()
        for r in runs.values()
        for _, desc in r
    )
    ncol = max(1, len(endpoints))
    fig, axes = plt.subplots(
        2 if blended else 1, ncol, figsize=(5.0 * ncol, 6.4 if blended else 3.6), squeeze=False
    )
    if blended:
        for ax, endpoint in zip(axes[1], endpoints, strict=False):
            _plot_blending_weights(ax, endpoint, runs[endpoint])
    for ax, endpoint in zip(axes[0], endpoints, strict=False):
        classifier = False
        for k, (fold, desc) in enumerate(sorted(runs[endpoint], key=lambda r: r[0])):
            hist = pd.DataFrame(desc.get("history", []))
            if hist.empty:
                continue
            colour = f"C{k % 10}"
            # a blended network optimises a weighted sum; its multimodal head's own training
            # loss is what compares with the validation loss (also of that head); a subtype
            # classifier's validation loss is its label's weighted BCE, as is train_cls
            train = next((c for c in ("train_loss_mm", "train_cls") if c in hist), "train_loss")
            classifier = train == "train_cls"
            ax.plot(hist["epoch"], hist[train], color=colour, label=f"fold {fold} train")
            if classifier:
                seg = hist[["train_seg_gt", "train_seg_weak"]].sum(axis=1, min_count=1)
                if seg.fillna(0).any():
                    ax.plot(
                        hist["epoch"],
                        seg,
                        color=colour,
                        linestyle=":",
                        label=f"fold {fold} train segmentation",
                    )
            if "val_loss" in hist and hist["val_loss"].notna().any():
                ax.plot(
                    hist["epoch"],
                    hist["val_loss"],
                    color=colour,
                    linestyle="--",
                    label=f"fold {fold} validation",
                )
            best = desc.get("best_epoch")
            if best is not None:
                ax.axvline(best, color=colour, linewidth=0.8, alpha=0.5)
        ax.set_title(
            f"{endpoint}: label BCE (segmentation dotted)"
            if classifier
            else f"{endpoint}: Cox partial-likelihood loss"
        )
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss (lower is better)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


#: Heads of a gradient-blended network and their line styles in the weights panel.
_BLEND_HEADS = {"w_mm": "-", "w_image": "--", "w_clinical": ":"}


def _plot_blending_weights(
    ax: plt.Axes, endpoint: str, runs: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """Gradient-blending weight of each head over epochs (seed-3 Fig. 1), every fold."""
    for k, (fold, desc) in enumerate(sorted(runs, key=lambda r: r[0])):
        hist = pd.DataFrame(desc.get("history", []))
        for column, style in _BLEND_HEADS.items():
            if column in hist and hist[column].notna().any():
                head = column.removeprefix("w_")
                ax.step(
                    hist["epoch"],
                    hist[column],
                    where="post",
                    color=f"C{k % 10}",
                    linestyle=style,
                    label=f"fold {fold} {head}",
                )
    ax.set_title(f"{endpoint}: gradient-blending weights")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss weight")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)


def plot_attention(
    panels: Sequence[Mapping[str, Any]], title: str, path: str | Path, max_px: int = 600
) -> None:
    """Attention heatmaps over slide thumbnails, one panel per slide.

    Parameters
    ----------
    panels
        Each with ``slide_id``, ``slide_path``, ``mpp`` (sheet value or None), ``coords``
        ((N, 2) level-0 x, y), ``attention`` ((N,) weights summing to 1), ``tile_size_um``
        (tile edge in microns), ``risk`` and ``split``; optionally ``default_mpp``.
    title
        Figure title.
    max_px
        Longest edge of each thumbnail in pixels.
    """
    from mmsurv.wsi import open_slide, read_low_res, slide_mpp

    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=False):
        with open_slide(panel["slide_path"]) as slide:
            mpp0 = slide_mpp(slide, panel.get("mpp"), panel.get("default_mpp"))
            width, height = slide.dimensions
            thumb = read_low_res(slide, mpp0, mpp0 * max(1.0, max(width, height) / max_px))
        ax.imshow(thumb.rgb, extent=(0, width, height, 0))
        att = np.asarray(panel["attention"], float)
        # relative attention: 1 = the slide's most attended tile
        rel = att / att.max() if att.size and att.max() > 0 else att
        size = float(panel["tile_size_um"]) / mpp0  # level-0 pixels
        tiles = [Rectangle((float(x), float(y)), size, size) for x, y in panel["coords"]]
        coll = PatchCollection(tiles, cmap="inferno", alpha=0.55, edgecolor="none")
        coll.set_array(rel)
        coll.set_clim(0.0, 1.0)
        ax.add_collection(coll)
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_axis_off()
        ax.set_title(
            f"{panel['slide_id']}\n{panel['split']} slide, risk {panel['risk']:.2f}", fontsize=8
        )
    if panels:
        fig.colorbar(coll, ax=axes[0].tolist(), shrink=0.7, label="attention / max attention")
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def level_table(metrics: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """C-index at slide and case (patient) level per experiment and endpoint on ``split``.

    The layout of the seed-1 paper's Tables 1-2 (``CI (WSI)`` and ``CI (Case)``), with 95%
    patient-bootstrap intervals and the oracle on the same patients. Over k folds the values
    are means across folds. Experiments without slide-level rows have NaN slide columns.

    Returns
    -------
    pandas.DataFrame
        experiment, endpoint, n_slides, c_slide, c_slide_lo, c_slide_hi, n_patients,
        c_patient, c_patient_lo, c_patient_hi, c_oracle.
    """
    rows = metrics[metrics["split"] == split]
    cols = ["n", "c_index", "c_index_lo", "c_index_hi", "c_index_oracle"]
    by = rows.groupby(["experiment", "endpoint", "level"], sort=False)[cols].mean()
    wide = by.unstack("level")
    out = pd.DataFrame(index=wide.index)
    for level, prefix in (("slide", "c_slide"), ("patient", "c_patient")):
        for col, suffix in (("c_index", ""), ("c_index_lo", "_lo"), ("c_index_hi", "_hi")):
            key = (col, level)
            out[prefix + suffix] = wide[key] if key in wide.columns else np.nan
        n_key = ("n", level)
        out[f"n_{level}s"] = wide[n_key] if n_key in wide.columns else np.nan
    oracle_key = ("c_index_oracle", "patient")
    out["c_oracle"] = wide[oracle_key] if oracle_key in wide.columns else np.nan
    order = [
        "n_slides",
        "c_slide",
        "c_slide_lo",
        "c_slide_hi",
        "n_patients",
        "c_patient",
        "c_patient_lo",
        "c_patient_hi",
        "c_oracle",
    ]
    return out[order].reset_index()


def features_provenance(files: Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """One row per feature file: size and the provenance attributes (:data:`PROVENANCE_COLUMNS`).

    Works for feature files of other tools (CLAM/TRIDENT) too: attributes they lack are empty.
    """
    rows = []
    for file in files:
        with h5py.File(file, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            shape = f["features"].shape if "features" in f else (0, 0)
        n = int(np.prod(shape[:-1])) if len(shape) >= 2 else 0
        rows.append(
            {
                **{c: attrs.get(c, "") for c in PROVENANCE_COLUMNS},
                "slide_id": attrs.get("slide_id", Path(file).stem),
                "n_tiles": n,
                "dim": int(shape[-1]) if shape else 0,
                "skipped": int(attrs.get("skipped", 0)),
            }
        )
    return pd.DataFrame(rows, columns=PROVENANCE_COLUMNS)
