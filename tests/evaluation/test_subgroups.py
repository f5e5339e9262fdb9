"""C-index within subgroups (seed-2 Table II) on a hand-made case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.evaluation.subgroups import SUBGROUP_COLUMNS, subgroup_metrics

EV = {"bootstrap": 200}


def _predictions() -> tuple[pd.DataFrame, pd.Series]:
    """Subgroup A: risk orders the deaths perfectly; B: exactly backwards; C: no event."""
    rows = []
    for g, risks in {"A": [3, 2, 1, 0], "B": [0, 1, 2, 3], "C": [1, 2]}.items():
        for i, r in enumerate(risks):
            rows.append(
                {
                    "patient_id": f"{g}{i}",
                    "slide_id": "",
                    "endpoint": "os",
                    "fold": 0,
                    "split": "test",
                    "risk": float(r),
                    "time": 100.0 * (i + 1),
                    "event": 0 if g == "C" else 1,
                }
            )
    preds = pd.DataFrame(rows)
    # a slide row (ignored: subgroups are patient-level) and a patient without a subgroup
    slide = preds.iloc[[0]].assign(slide_id="A0-slide", risk=-99.0)
    lost = preds.iloc[[0]].assign(patient_id="X0")
    groups = pd.Series({p: p[0] for p in preds["patient_id"]})
    return pd.concat([preds, slide, lost], ignore_index=True), groups


def test_c_index_within_each_subgroup():
    preds, groups = _predictions()
    truth = pd.Series({p: -float(p[1]) for p in groups.index})  # earlier death = higher risk
    table = subgroup_metrics("exp", preds, groups, EV, seed=0, oracle=truth)
    assert list(table.columns) == SUBGROUP_COLUMNS
    by = table.set_index("subgroup")
    assert list(by.index) == ["A", "B", "C"]
    assert by.loc["A", "c_index"] == pytest.approx(1.0)
    assert by.loc["B", "c_index"] == pytest.approx(0.0)
    assert np.isnan(by.loc["C", "c_index"]) and by.loc["C", "events"] == 0
    assert list(by["n"]) == [4, 4, 2]  # the slide row and the patient without a group are out
    assert by.loc["A", "c_index_oracle"] == pytest.approx(1.0)
    assert by.loc["B", "c_index_oracle"] == pytest.approx(1.0)
    assert by.loc["A", "c_index_lo"] <= 1.0 <= by.loc["A", "c_index_hi"] + 1e-12


def test_each_split_and_fold_is_its_own_row():
    preds, groups = _predictions()
    other = preds.assign(split="val", fold=1)
    table = subgroup_metrics("exp", pd.concat([preds, other]), groups, EV, seed=0)
    assert len(table) == 6 and set(table["split"]) == {"test", "val"}
    assert table["c_index_oracle"].isna().all()  # no truth given
