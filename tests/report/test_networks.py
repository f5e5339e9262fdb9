"""Report parts of the neural and slide-level experiments."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.evaluate import METRIC_COLUMNS
from mmsurv.report.build import _encoder_summary
from mmsurv.report.networks import (
    PROVENANCE_COLUMNS,
    features_provenance,
    level_table,
    plot_training_curves,
)
from mmsurv.wsi.stage import write_skipped_features


def _row(exp, level, fold, c, n=10):
    base = dict.fromkeys(METRIC_COLUMNS, np.nan)
    return base | {
        "experiment": exp,
        "endpoint": "os",
        "level": level,
        "fold": fold,
        "split": "test",
        "n": n,
        "events": 5,
        "c_index": c,
        "c_index_lo": c - 0.1,
        "c_index_hi": c + 0.1,
        "c_index_oracle": 0.8,
    }


def test_level_table_puts_slide_and_case_side_by_side():
    metrics = pd.DataFrame(
        [
            _row("xattn", "slide", 0, 0.62, n=14),
            _row("xattn", "patient", 0, 0.58),
            _row("xattn", "slide", 1, 0.66, n=12),
            _row("xattn", "patient", 1, 0.60),
            _row("rna", "patient", 0, 0.7),
        ]
    )
    table = level_table(metrics).set_index("experiment")
    assert table.loc["xattn", "c_slide"] == pytest.approx(0.64)  # mean over folds
    assert table.loc["xattn", "c_patient"] == pytest.approx(0.59)
    assert table.loc["xattn", "n_slides"] == pytest.approx(13)
    assert np.isnan(table.loc["rna", "c_slide"]) and table.loc["rna", "c_patient"] == 0.7
    assert table.loc["rna", "c_oracle"] == 0.8


def test_training_curves_figure(tmp_path: Path):
    logs = []
    for fold in (0, 1):
        hist = [
            {"epoch": e, "train_loss": 2.0 - 0.1 * e, "val_loss": 2.1 - 0.05 * e}
            for e in range(1, 6)
        ]
        log = {"fold": fold, "endpoints": {"os": {"model": {"history": hist, "best_epoch": 5}}}}
        path = tmp_path / f"fold{fold}.json"
        path.write_text(json.dumps(log))
        logs.append(path)
    plot_training_curves(logs, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_training_curves_add_the_blending_weights_row(tmp_path: Path):
    """A gradient-blended network's log (w_* per epoch) gets a second row of panels."""
    from matplotlib.image import imread

    hist = [
        {"epoch": e, "train_loss": 2.0 - 0.1 * e, "val_loss": 2.0, "w_mm": None}
        for e in range(1, 7)
    ]  # a network without blending logs None weights
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"fold": 0, "endpoints": {"os": {"model": {"history": hist}}}}))
    weights = [{"w_mm": 1 / 3, "w_image": 1 / 3, "w_clinical": 1 / 3}] * 3
    weights += [{"w_mm": 0.5, "w_image": 0.1, "w_clinical": 0.4}] * 3
    blended = [h | w for h, w in zip(hist, weights, strict=True)]
    gb = tmp_path / "gb.json"
    gb.write_text(json.dumps({"fold": 0, "endpoints": {"os": {"model": {"history": blended}}}}))
    plot_training_curves([plain], tmp_path / "plain.png")
    plot_training_curves([gb], tmp_path / "gb.png")
    h_plain = imread(tmp_path / "plain.png").shape[0]
    h_gb = imread(tmp_path / "gb.png").shape[0]
    assert h_gb > 1.5 * h_plain


def test_gradcam_figure_one_row_per_patient_at_the_tumor_slice(tmp_path: Path):
    from matplotlib.image import imread

    from mmsurv.report.gradcam import plot_gradcam, tumor_slice

    mask = np.zeros((8, 6, 6), np.uint8)
    mask[5, 2:4, 2:4] = 1
    mask[4, 3, 3] = 1
    assert tumor_slice(mask) == 5 and tumor_slice(np.zeros((8, 2, 2))) == 4
    rng = np.random.default_rng(0)
    panel = {
        "risk": 0.3,
        "time": 400.0,
        "event": 1,
        "channels": {"t1ce": rng.normal(size=(8, 6, 6)), "t2": rng.normal(size=(8, 6, 6))},
        "mask": mask,
        "cam": rng.uniform(size=(8, 6, 6)),
    }
    plot_gradcam([panel | {"patient_id": "P1"}], "one", tmp_path / "one.png")
    plot_gradcam(
        [panel | {"patient_id": p} for p in ("P1", "P2", "P3")], "three", tmp_path / "three.png"
    )
    assert imread(tmp_path / "three.png").shape[0] > 2 * imread(tmp_path / "one.png").shape[0]


def test_provenance_of_our_skipped_and_clam_files(tmp_path: Path):
    ours = tmp_path / "ours.h5"
    with h5py.File(ours, "w") as f:
        f["features"] = np.zeros((7, 512), np.float32)
        f["coords"] = np.zeros((7, 2), np.int64)
        f.attrs.update(
            {
                "slide_id": "S1",
                "encoder": "resnet18",
                "encoder_id": "resnet18-monai-random-seed0",
                "weights": "random-init",
                "pretrained": False,
                "device": "cpu",
                "dtype": "float32",
            }
        )
    clam = tmp_path / "S3.h5"
    with h5py.File(clam, "w") as f:
        f["features"] = np.zeros((1, 4, 1024), np.float32)  # CLAM's leading batch axis
        f["coords"] = np.zeros((4, 2), np.int64)
    write_skipped_features(tmp_path / "skip.h5", "S2", "unreadable")
    table = features_provenance([ours, tmp_path / "skip.h5", clam])
    assert list(table.columns) == PROVENANCE_COLUMNS
    assert table["slide_id"].tolist() == ["S1", "S2", "S3"]
    assert table["n_tiles"].tolist() == [7, 0, 4]
    assert table["skipped"].tolist() == [0, 1, 0]
    summary = _encoder_summary("resnet18", table)
    assert summary["random"] and summary["slides"] == 2 and summary["tiles"] == 11
