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
