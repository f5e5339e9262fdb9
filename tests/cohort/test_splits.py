"""Patient-level splits: fractions, stratification, k-fold structure, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmsurv.cohort import load_samples, make_splits
from mmsurv.config import validate_config


def _splits(raw, **spec):
    raw["splits"] = spec
    cfg = validate_config(raw)
    return make_splits(load_samples(cfg), cfg, "os"), cfg


def test_holdout_fractions_and_disjoint_patients(raw_config):
    s, _ = _splits(raw_config, method="holdout")
    assert set(s["fold"]) == {0}
    assert s["patient_id"].is_unique and len(s) == 60
    counts = s["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (42, 6, 12)


def test_holdout_is_stratified_by_event(raw_config):
    s, cfg = _splits(
        raw_config, method="holdout", fractions={"train": 0.5, "val": 0.0, "test": 0.5}
    )
    samples = load_samples(cfg).set_index("patient_id")
    rate = s.assign(e=samples.loc[s["patient_id"], "os_event"].to_numpy()).groupby("split")["e"]
    events = rate.sum()
    assert abs(events["train"] - events["test"]) <= 1


def test_splits_are_deterministic_and_seeded(raw_config):
    a, _ = _splits(raw_config, method="holdout")
    b, _ = _splits(raw_config, method="holdout")
    pd.testing.assert_frame_equal(a, b)
    raw_config["seed"] = 7
    c, _ = _splits(raw_config, method="holdout")
    assert not a["split"].equals(c["split"])


def test_kfold_test_parts_partition_patients(raw_config):
    s, _ = _splits(raw_config, method="kfold", folds=4, val_fraction=0.2)
    assert sorted(s["fold"].unique()) == [0, 1, 2, 3]
    test = s[s["split"] == "test"]
    assert test["patient_id"].is_unique and len(test) == 60
    for _, part in s.groupby("fold"):
        assert part["patient_id"].is_unique and len(part) == 60
        n_val = (part["split"] == "val").sum()
        assert 7 <= n_val <= 10  # 20% of the 45 training patients


def test_column_split(raw_config, cohort_dir):
    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    df["split"] = np.where(df.index < 40, "train", np.where(df.index < 50, "val", "test"))
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    s, _ = _splits(raw_config, method="column")
    assert s["split"].value_counts().to_dict() == {"train": 40, "val": 10, "test": 10}


def test_column_split_rejects_unknown_values(raw_config, cohort_dir):
    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    df["split"] = "train"
    df.loc[3, "split"] = "holdout"
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match="TCGA-AA-0003='holdout'"):
        _splits(raw_config, method="column")


def test_patients_without_outcome_are_left_out(raw_config, cohort_dir):
    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    df.loc[[0, 1], "os_days"] = np.nan
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    s, _ = _splits(raw_config, method="holdout")
    assert len(s) == 58 and "TCGA-AA-0000" not in set(s["patient_id"])


def _two_endpoints(raw_config, cohort_dir, missing_primary=()):
    df = pd.read_csv(cohort_dir / "samples.tsv", sep="\t")
    rng = np.random.default_rng(3)
    df["dm_days"] = (df["os_days"] * rng.uniform(0.3, 1.0, len(df))).round(1)
    df["dm_event"] = rng.integers(0, 2, len(df))
    df.loc[list(missing_primary), "os_days"] = np.nan
    df.to_csv(cohort_dir / "samples.tsv", sep="\t", index=False)
    raw_config["endpoints"]["dm"] = {"time": "dm_days", "event": "dm_event"}
    return raw_config


@pytest.mark.parametrize("method", ["holdout", "kfold"])
def test_endpoints_share_one_assignment(raw_config, cohort_dir, method):
    raw = _two_endpoints(raw_config, cohort_dir, missing_primary=(0, 1, 2))
    raw["splits"] = {"method": method, "folds": 3}
    cfg = validate_config(raw)
    samples = load_samples(cfg)
    os_split = make_splits(samples, cfg, "os")
    dm_split = make_splits(samples, cfg, "dm")
    both = os_split.merge(dm_split, on=["patient_id", "fold"], suffixes=("_os", "_dm"))
    assert len(both) == len(os_split)  # every OS patient is in the DM split too ...
    assert (both["split_os"] == both["split_dm"]).all()  # ... in the same place
    extra = dm_split[dm_split["patient_id"].isin(["TCGA-AA-0000", "TCGA-AA-0001", "TCGA-AA-0002"])]
    assert len(extra) == len(set(dm_split["fold"])) * 3  # DM-only patients are split too
    if method == "kfold":
        assert dm_split.loc[dm_split["split"] == "test", "patient_id"].is_unique
