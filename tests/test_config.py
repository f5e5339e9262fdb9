"""Configuration validation: schema, defaults and cross-key checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmsurv.config import (
    COHORT_KEYS,
    ConfigError,
    load_config,
    validate_config,
    with_demo_cohort,
)

ROOT = Path(__file__).resolve().parents[1]


def test_default_config_is_valid_and_every_key_is_documented(raw_config, tmp_path):
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({k: raw_config[k] for k in COHORT_KEYS}))
    cfg = load_config(ROOT / "config" / "config.yaml", own)
    assert set(cfg["experiments"]) >= {"clinical_small_coxph", "clinical_full_rsf"}
    assert cfg["splits"]["fractions"] == {"train": 0.7, "val": 0.1, "test": 0.2}
    lines = (ROOT / "config" / "config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        key, sep, value = line.partition(":")
        if line.lstrip().startswith("#") or not sep or not value.strip():
            continue  # comments, blank lines and mapping headers (their children say more)
        previous = lines[i - 1].strip()
        assert "#" in line or previous.startswith("#"), f"line {i + 1} undocumented: {line}"


def test_defaults_are_filled(raw_config):
    cfg = validate_config(raw_config)
    assert cfg["splits"]["method"] == "holdout"
    assert cfg["evaluation"]["risk_group_quantile"] == 0.5
    assert cfg["cohort"]["channels"][:4] == ["t1", "t1ce", "t2", "flair"]
    assert cfg["experiments"]["cox_small"]["params"] == {"penalizer": [0.01, 1.0]}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(unknown_key=1), "Additional properties are not allowed"),
        (
            lambda c: (
                c["splits"].update(method="random")
                if "splits" in c
                else c.update(splits={"method": "random"})
            ),
            "'random' is not one of",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(model="deepsurv"),
            "unknown model 'deepsurv'",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"clinical": "tiny"}),
            "no clinical set 'tiny'",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"pet": "x"}),
            "unknown modality 'pet'",
        ),
        (
            lambda c: c["clinical"]["sets"].update(bad=["weight"]),
            "'weight' is not a numeric or categorical variable",
        ),
        (
            lambda c: c.update(splits={"fractions": {"train": 0.7, "val": 0.2, "test": 0.2}}),
            "must sum to 1",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(params={"penaliser": 1.0}),
            "'penaliser' is not a parameter of coxph",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(endpoints=["dfs"]),
            "unknown endpoint 'dfs'",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"wsi": "uni"}),
            "'uni' is not an encoder of wsi/encoders",
        ),
        (
            lambda c: c.update(wsi={"encoders": {"uni": {"weights": "/models/uni.bin"}}}),
            "wsi/encoders/uni: not a registry encoder",
        ),
        (lambda c: c.update(wsi={"on_error": "ignore"}), "'ignore' is not one of"),
        (lambda c: c.update(wsi={"target_mpp": 0}), "less than or equal to the minimum"),
        (lambda c: c.update(device="tpu"), "'tpu' is not one of"),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"mri": ["t1ce", "dwi"]}),
            "inputs/mri: 'dwi' is not a preprocessed channel",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"mri": ["t1ce", "t1ce_t1"]}),
            "'t1ce_t1' is not a preprocessed channel",  # needs mri.subtraction
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"radiomics": ["flair"]}),
            "'flair' is not a sequence of mri.radiomics.sequences",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"radiomics": "t2"}),
            "inputs/radiomics: give a non-empty list",
        ),
        (
            lambda c: (
                c.update(mri={"crop_size": [16, 16, 16]}),
                c["experiments"]["cox_small"].update(
                    model="mri_densenet", inputs={"mri": ["t1ce"]}, params={}
                ),
            ),
            "too small for DenseNet-121",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(label="idh"),
            "coxph does not learn a label",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(
                model="mri_mtl", inputs={"mri": ["t1ce"]}, params={}
            ),
            "mri_mtl is a classifier: name a key of labels",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(region="brain"),
            "region: 'brain' needs an mri input",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"scna": "pca"}),
            "the SCNA input is 'genes'",
        ),
        (
            lambda c: c.update(mri={"weak_labels": {"channels": ["t1ce_t1"]}}),
            "weak_labels/channels: 't1ce_t1' is not a preprocessed channel",
        ),
        (
            lambda c: c.update(mri={"sequences": ["t1", "t2"], "subtraction": True}),
            "the T1ce - T1 map needs t1 and t1ce",
        ),
        (
            lambda c: c["experiments"]["cox_small"].update(inputs={"dti": "maps"}),
            "the DTI input is 'slices'",
        ),
        (
            lambda c: c.update(signature={"experiments": ["nope"]}),
            "signature/experiments: 'nope' is not an experiment",
        ),
        (
            lambda c: c.update(signature={"experiments": ["cox_small"], "endpoint": "dfs"}),
            "signature/endpoint: 'dfs' is not an endpoint",
        ),
        (
            lambda c: c.update(signature={"factors": "nope"}),
            "signature/factors: no clinical set 'nope'",
        ),
        (
            lambda c: c.update(signature={"cutoff_quantiles": [0.9, 0.1]}),
            "need low < high",
        ),
        (
            lambda c: c.update(radiogenomics={"min_set_size": 50, "max_set_size": 10}),
            "min_set_size is larger than max_set_size",
        ),
        (lambda c: c.update(dti={"slice_size": [8, 64]}), "slice_size"),
        (lambda c: c.update(radiogenomics={"splits": ["holdout"]}), "'holdout' is not one of"),
        (lambda c: c.update(mri={"spacing_mm": [1.0, 1.0]}), "spacing_mm"),
        (lambda c: c.update(mri={"orientation": "XYZ"}), "does not match"),
        (lambda c: c.update(mri={"on_error": "ignore"}), "'ignore' is not one of"),
    ],
)
def test_invalid_config_is_rejected_with_reason(raw_config, edit, message):
    edit(raw_config)
    with pytest.raises(ConfigError, match=message):
        validate_config(raw_config)


def test_no_cohort_and_no_demo_is_an_error(raw_config):
    del raw_config["cohort"]
    with pytest.raises(ConfigError, match="no cohort configured"):
        validate_config(raw_config)


def test_demo_cohort_supplied_only_without_a_cohort(raw_config, tmp_path, monkeypatch):
    import mmsurv.demo

    calls = []

    def fake_demo(out, preset, seed):
        calls.append((Path(out), preset, seed))
        Path(out).mkdir(parents=True)
        (Path(out) / "config.yaml").write_text(
            yaml.safe_dump({k: raw_config[k] for k in COHORT_KEYS})
        )
        return Path(out) / "config.yaml"

    monkeypatch.setattr(mmsurv.demo, "make_demo_cohort", fake_demo)
    own = dict(raw_config, demo={"preset": "smoke", "folder": str(tmp_path / "d")})
    assert with_demo_cohort(own) == own  # a configured cohort is left alone
    assert calls == []
    bare = {k: v for k, v in own.items() if k not in COHORT_KEYS}
    filled = with_demo_cohort(bare)
    assert calls == [(tmp_path / "d" / "smoke-seed0", "smoke", 0)]
    assert filled["cohort"] == raw_config["cohort"]
    assert filled["endpoints"] == raw_config["endpoints"]
    with_demo_cohort(bare)  # second use: the written cohort is reused
    assert len(calls) == 1


def test_registry_encoder_names_agree_with_the_registry():
    from mmsurv.config import REGISTRY_ENCODERS
    from mmsurv.wsi.encoders import ENCODERS

    assert set(REGISTRY_ENCODERS) == set(ENCODERS)


def test_smallest_network_crop_agrees_with_the_networks():
    from mmsurv.config import MIN_NETWORK_CROP
    from mmsurv.models.mri_nets import MIN_INPUT_SIZE

    assert MIN_NETWORK_CROP == MIN_INPUT_SIZE
