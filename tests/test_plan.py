"""What the workflow plans: experiments left out for a missing modality or label."""

from __future__ import annotations

from mmsurv.plan import plan_experiments


def test_experiments_without_their_modality_or_label_are_left_out(config):
    config["experiments"]["scna_only"] = {"model": "scna_coxph", "inputs": {"scna": "genes"}}
    config["experiments"]["idh_cnn"] = {
        "model": "mri_cnn",
        "inputs": {"mri": ["t1"]},
        "label": "idh",
    }
    config["experiments"]["codel_cnn"] = {
        "model": "mri_cnn",
        "inputs": {"mri": ["t1"]},
        "label": "codel",
    }
    active, excluded = plan_experiments(config)
    assert {"cox_small", "rsf_all", "idh_cnn"} <= set(active)
    assert excluded["scna_only"] == "the cohort has no scna data"  # the fixture has no SCNA
    assert excluded["codel_cnn"] == "its label 'codel' is not configured (labels)"
