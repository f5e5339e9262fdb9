"""Seed-2 report tables: Table I by input format and arm, Table II by subgroup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.report.subtypes import input_format, label_oracle, table1, table2

SEQ = ["t1", "t1ce", "t2", "flair"]
EXPERIMENTS = {
    "cnn_idh": {"model": "mri_cnn", "inputs": {"mri": SEQ}, "label": "idh"},
    "mtl_idh": {"model": "mri_mtl", "inputs": {"mri": SEQ}, "label": "idh"},
    "scna_mtl_idh": {
        "model": "mri_scna_mtl",
        "inputs": {"mri": SEQ, "scna": "genes"},
        "label": "idh",
    },
    "mtl_idh_brain": {
        "model": "mri_mtl",
        "inputs": {"mri": SEQ},
        "label": "idh",
        "region": "brain",
    },
    "mtl_codel_t1ce": {"model": "mri_mtl", "inputs": {"mri": ["t1ce"]}, "label": "codel"},
    "scna_cox": {"model": "scna_coxph", "inputs": {"scna": "genes"}},
    "cox": {"model": "coxph", "inputs": {"clinical": "all"}},
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cnn_idh", "All (cropped)"),
        ("mtl_idh_brain", "All (whole brain)"),
        ("mtl_codel_t1ce", "T1ce (cropped)"),
    ],
)
def test_input_format(name, expected):
    assert input_format(EXPERIMENTS[name], SEQ) == expected
    sub = {"model": "mri_mtl", "inputs": {"mri": ["t1ce_t1"]}}
    assert input_format(sub, SEQ) == "T1ce-T1 (cropped)"


def _metrics() -> pd.DataFrame:
    rows = []
    for k, name in enumerate(EXPERIMENTS):
        for split in ("train", "test"):
            rows.append(
                {
                    "experiment": name,
                    "endpoint": "os",
                    "level": "patient",
                    "fold": 0,
                    "split": split,
                    "c_index": 0.6 + k / 100,
                    "c_index_lo": 0.5,
                    "c_index_hi": 0.7 + k / 100,
                    "c_index_oracle": 0.8,
                    "auc": 0.7 + k / 100 if "mri" in EXPERIMENTS[name]["inputs"] else np.nan,
                    "auc_lo": 0.6,
                    "auc_hi": 0.9,
                }
            )
    return pd.DataFrame(rows)


def test_table1_cells_by_format_label_and_arm():
    t = table1(_metrics(), EXPERIMENTS, SEQ)
    assert t["labels"] == ["idh", "codel"] and t["endpoint"] == "os"
    cropped = t["rows"]["All (cropped)"]
    assert cropped["auc"]["idh"]["CNN"]["text"].startswith("0.700 (0.600")
    assert cropped["auc"]["idh"]["MTL (MR)"]["experiment"] == "mtl_idh"
    assert cropped["c_index"]["MTL (MR+SCNA)"]["text"].startswith("0.620")
    assert "CNN" not in cropped["c_index"]  # survival from the MTL embeddings only
    assert t["rows"]["T1ce (cropped)"]["auc"]["codel"]["MTL (MR)"]["text"].startswith("0.740")
    assert t["rows"]["T1ce (cropped)"]["c_index"] == {}  # codel models give no C column
    assert set(t["rows"]) == {"All (cropped)", "All (whole brain)", "T1ce (cropped)"}
    assert t["oracle_c"] == "0.800"


def test_table2_subgroups_mr_vs_mr_scna_and_the_scna_baseline():
    rows = []
    for name in ("mtl_idh", "scna_mtl_idh", "scna_cox", "cox"):
        for g, c in (("IDHwt", 0.55), ("IDHmut-codel", 0.9)):
            rows.append(
                {
                    "experiment": name,
                    "endpoint": "os",
                    "fold": 0,
                    "split": "test",
                    "subgroup": g,
                    "c_index": c,
                    "c_index_lo": c - 0.1,
                    "c_index_hi": min(1.0, c + 0.1),
                    "c_index_oracle": 0.7,
                }
            )
    t = table2(pd.DataFrame(rows), EXPERIMENTS, SEQ, None)
    assert t["subgroups"] == ["IDHmut-codel", "IDHwt"]
    cells = t["rows"]["All (cropped)"]
    assert cells["IDHwt"]["MTL (MR)"]["text"].startswith("0.550")
    assert cells["IDHmut-codel"]["MTL (MR+SCNA)"]["experiment"] == "scna_mtl_idh"
    assert set(t["baselines"]) == {"scna_cox"}  # clinical Cox is not in Table II
    assert t["oracle"] == {"IDHwt": "0.700", "IDHmut-codel": "0.700"}


def test_label_oracle_is_the_auc_of_the_planted_mri_signal_on_test_patients():
    ids = [f"P{i}" for i in range(8)]
    truth = pd.DataFrame({"patient_id": ids, "risk_mri": [0, 1, 2, 3, 4, 5, 6, 7.0]})
    samples = pd.DataFrame({"patient_id": ids, "idh_mutant": [1, 1, 1, 0, 1, 0, 0, None]})
    split = pd.DataFrame({"patient_id": ids, "split": ["train"] * 2 + ["test"] * 6})
    out = label_oracle(truth, samples, {"os": split}, {"idh": "idh_mutant"}, ["idh"], "os")
    # test: P2 (1, 2.0), P3 (0, 3.0), P4 (1, 4.0), P5 (0, 5.0), P6 (0, 6.0); P7 unlabeled
    # AUC of risk_mri for label 1: pairs (pos, neg) with pos > neg: (4 > 3) -> 1 of 6; the
    # severity falls with the label here, so the oracle is 1 - 1/6
    assert out == {"idh": f"{5 / 6:.3f}"}
