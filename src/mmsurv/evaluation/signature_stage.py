"""The seed-4 analysis of a risk signature (Yan et al. 2021): one job per experiment.

From an experiment's patient-level predictions (its ``risk`` is the signature, e.g. the DTI
deep-learning signature, DLS) on the configured endpoint and the first fold:

1. **Risk groups**: the cutoff is chosen on training patients only by the X-tile search
   (:func:`mmsurv.evaluation.signature.xtile_cutoff`) and applied unchanged to validation and
   test patients; per split the log-rank and G-rho (rho = 1) tests and the hazard ratio.
2. **Independence**: a multivariable Cox model of the signature with the clinical factors
   (``signature.factors``), fitted on training patients; its hazard-ratio table.
3. **Nomograms**: the clinicomolecular nomogram (the factors) and the deep-learning nomogram
   (factors + signature), fitted on training patients; with the signature alone they are the
   rows of the paper's Table 1 (Harrell's C with a patient-bootstrap 95 % interval and AIC per
   split); calibration at ``horizons_years`` on the test split; the net reclassification
   improvement of the second nomogram over the first at ``nri_years`` per split; decision
   curves on the test split; the nomogram figures.

Patients with no value of the signature (not imaged) are not part of the analysis; missing
clinical factors are imputed inside the nomograms from training patients. A factor with no
value, or a single value, among the training patients cannot enter a Cox model: it is left
out of every model with a warning in the log (``summary["dropped_factors"]``). Without test
patients the calibration and decision curves are left empty (figures say why).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.evaluation.nomogram import (
    DAYS_PER_YEAR,
    calibration_curves,
    fit_nomogram,
    plot_calibration,
    plot_nomogram,
    table1,
)
from mmsurv.evaluation.signature import (
    decision_curve,
    group_tests,
    nri_interval,
    plot_decision_curves,
    plot_risk_groups,
    risk_group,
    xtile_cutoff,
)
from mmsurv.io import read_tsv, write_tsv

__all__ = ["SPLITS", "MODEL_NAMES", "signature_table", "usable_factors", "analyse_signature"]

log = logging.getLogger(__name__)

#: Splits reported, in order.
SPLITS = ("train", "val", "test")
#: Display names of the three Table-1 models.
MODEL_NAMES = {
    "signature": "DLS",
    "clinical": "clinicomolecular nomogram",
    "combined": "deep-learning nomogram",
}
#: Threshold probabilities of the decision curves.
THRESHOLDS = np.round(np.arange(0.0, 0.96, 0.01), 2)


def signature_table(
    predictions: pd.DataFrame,
    samples: pd.DataFrame,
    endpoint: str,
    factors: list[str],
    fold: int | None = None,
) -> pd.DataFrame:
    """One row per patient: patient_id, split, time (days), event, ``dls`` (the experiment's
    risk), and the clinical ``factors`` from the samples sheet.

    Patient-level rows only (a slide-level experiment's patient rows); ``fold`` defaults to
    the first fold of the predictions.
    """
    rows = predictions[predictions["endpoint"] == endpoint]
    if "slide_id" in rows:
        rows = rows[rows["slide_id"].isna() | (rows["slide_id"].astype(str) == "")]
    if rows.empty:
        raise ValueError(f"no patient-level predictions for endpoint {endpoint!r}")
    fold = int(rows["fold"].min()) if fold is None else fold
    rows = rows[rows["fold"] == fold]
    table = rows[["patient_id", "split", "time", "event", "risk"]].rename(columns={"risk": "dls"})
    table = table.merge(samples[["patient_id", *factors]], on="patient_id", how="left")
    table["event"] = table["event"].astype(int)
    return table.reset_index(drop=True)


def usable_factors(
    train: pd.DataFrame, variables: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``variables`` (factor -> kind) into those a Cox model can fit on the training
    rows ``train`` and those it cannot, with the reason (no value, or one value only)."""
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for name, kind in variables.items():
        values = train[name].dropna()
        if values.empty:
            dropped[name] = "no value among the training patients"
        elif values.nunique() < 2:
            dropped[name] = f"a single value ({values.iloc[0]}) among the training patients"
        else:
            kept[name] = kind
    return kept, dropped


def _horizon_risk(model: Any, table: pd.DataFrame, days: float) -> np.ndarray:
    """Predicted probability of the event by ``days``: ``1 - S(days | x)``, shape (n,)."""
    return 1.0 - model.survival_at(table, [days])[:, 0]


def _oracle_rows(table: pd.DataFrame, truth: pd.DataFrame | None) -> list[dict[str, Any]]:
    """Harrell's C of the synthetic cohort's true risk (and its DTI part) per split."""
    if truth is None:
        return []
    truth = truth.set_index("patient_id")
    rows = []
    for column, name in (("risk", "oracle (true risk)"), ("risk_dti", "oracle (true DTI risk)")):
        if column not in truth:
            continue
        for split in SPLITS:
            part = table[table["split"] == split]
            if part.empty:
                continue
            risk = truth.reindex(part["patient_id"])[column].to_numpy(float)
            c = harrell_c(part["time"].to_numpy(float), part["event"].to_numpy(int), risk)
            rows.append(
                {
                    "model": name,
                    "split": split,
                    "n": len(part),
                    "events": int(part["event"].sum()),
                    "c_index": c,
                }
            )
    return rows


def _test_curves(
    experiment: str,
    table: pd.DataFrame,
    test: pd.DataFrame,
    models: Mapping[str, Any],
    sig: Mapping[str, Any],
    days: float,
    outputs: Mapping[str, str | Path],
    n_bins: int,
) -> None:
    """Calibration (``horizons_years``) and decision curves (``days``) on the test split."""
    clinical, combined = models[MODEL_NAMES["clinical"]], models[MODEL_NAMES["combined"]]
    curves = calibration_curves(
        table,
        {MODEL_NAMES["clinical"]: clinical, MODEL_NAMES["combined"]: combined},
        split="test",
        horizons_years=list(sig["horizons_years"]),
        n_bins=n_bins,
    )
    plot_calibration(curves, outputs["calibration"], f"{experiment}: calibration (test split)")

    dca = {}
    for name, model in models.items():
        dca[name] = decision_curve(
            test["time"].to_numpy(float),
            test["event"].to_numpy(int),
            _horizon_risk(model, test, days),
            days,
            THRESHOLDS,
        )
    write_tsv(
        pd.concat([c.assign(model=name) for name, c in dca.items()], ignore_index=True),
        outputs["decision"],
    )
    plot_decision_curves(
        dca,
        outputs["decision_plot"],
        f"{experiment}: decision curves at {sig['nri_years']} y (test split)",
    )


def analyse_signature(
    config: Mapping[str, Any],
    experiment: str,
    predictions: str | Path,
    samples: pd.DataFrame,
    variables: Mapping[str, str],
    outputs: Mapping[str, str | Path],
    truth: str | Path | None = None,
) -> dict[str, Any]:
    """Write the signature analysis of ``experiment`` (see the module docstring).

    Parameters
    ----------
    config
        The workflow configuration (``signature``, ``evaluation.bootstrap``, ``seed``).
    predictions
        ``results/predictions/{experiment}.tsv``.
    samples
        The samples sheet (clinical factors).
    variables
        Clinical factor -> ``numeric`` or ``categorical``.
    outputs
        Paths keyed ``groups``, ``risk_groups``, ``multivariable``, ``table1``, ``nri``,
        ``decision``, ``km``, ``calibration``, ``decision_plot``, ``nomogram``,
        ``nomogram_cm``.
    truth
        The synthetic cohort's true risk (``truth.tsv``): oracle rows in Table 1.

    Returns
    -------
    dict
        Summary: cutoff, its statistic, n per split.
    """
    sig = config["signature"]
    n_boot, seed = int(config["evaluation"]["bootstrap"]), int(config["seed"])
    table = signature_table(read_tsv(predictions), samples, sig["endpoint"], [*variables])
    train = table[table["split"] == "train"]
    if train.empty or not train["event"].any():
        raise ValueError(f"{experiment}: no training patient with an event on {sig['endpoint']}")
    variables, dropped = usable_factors(train, variables)
    for name, why in dropped.items():
        log.warning("%s: clinical factor %r left out of the Cox models: %s", experiment, name, why)
    numeric = [v for v, kind in variables.items() if kind == "numeric"]
    categorical = [v for v, kind in variables.items() if kind == "categorical"]

    # 1. risk groups: the X-tile cut of training patients, applied unchanged to the rest
    xt = xtile_cutoff(
        train["dls"].to_numpy(float),
        train["time"].to_numpy(float),
        train["event"].to_numpy(int),
        tuple(sig["cutoff_quantiles"]),
    )
    table["group"] = risk_group(table["dls"].to_numpy(float), xt.cutoff)
    log.info(
        "%s: X-tile cutoff %.4g (log-rank chi2 %.2f on training)",
        experiment,
        xt.cutoff,
        xt.statistic,
    )
    write_tsv(table.assign(cutoff=xt.cutoff), outputs["groups"])
    group_rows = []
    for split in SPLITS:
        part = table[table["split"] == split]
        if part.empty:
            continue
        tests = group_tests(
            part["group"].to_numpy(), part["time"].to_numpy(float), part["event"].to_numpy(int)
        )
        group_rows.append({"split": split, "cutoff": xt.cutoff, **tests})
    write_tsv(pd.DataFrame(group_rows), outputs["risk_groups"])
    plot_risk_groups(
        table,
        outputs["km"],
        f"{experiment} ({sig['endpoint']}): risk groups at the training X-tile cutoff "
        f"{xt.cutoff:.3g}",
        SPLITS,
    )

    # 2-3. nomograms and the multivariable model, fitted on training patients only
    penalizer = float(sig["penalizer"])
    if penalizer > 0:
        log.warning(
            "%s: signature.penalizer %g: the hazard ratios are shrunk and their Wald intervals "
            "and p-values ignore the penalty (not valid inference); use 0 for the HR table",
            experiment,
            penalizer,
        )
    clinical = fit_nomogram(table, numeric, categorical, penalizer=penalizer)
    combined = fit_nomogram(table, numeric, categorical, signature="dls", penalizer=penalizer)
    alone = fit_nomogram(table, [], [], signature="dls", penalizer=penalizer)
    hr = combined.hazard_ratios().reset_index()
    write_tsv(hr, outputs["multivariable"])
    models = {
        MODEL_NAMES["signature"]: alone,
        MODEL_NAMES["clinical"]: clinical,
        MODEL_NAMES["combined"]: combined,
    }
    t1 = table1(table, models, splits=SPLITS, n_boot=n_boot, seed=seed)
    oracle = _oracle_rows(table, read_tsv(truth) if truth else None)
    if oracle:
        t1 = pd.concat([t1, pd.DataFrame(oracle, columns=t1.columns)], ignore_index=True)
    write_tsv(t1, outputs["table1"])

    test = table[table["split"] == "test"]
    days = float(sig["nri_years"]) * DAYS_PER_YEAR
    if test.empty:
        from mmsurv.mri.stage import skip_figure

        log.warning("%s: no test patients: no calibration or decision curves", experiment)
        for key in ("calibration", "decision_plot"):
            skip_figure(experiment, "no test patients", outputs[key])
        columns = ["threshold", "net_benefit", "treat_all", "treat_none", "n_treated", "model"]
        write_tsv(pd.DataFrame(columns=columns), outputs["decision"])
    else:
        n_bins = int(config["evaluation"]["calibration_bins"])
        _test_curves(experiment, table, test, models, sig, days, outputs, n_bins)
    nri_rows = []
    for split in SPLITS:
        part = table[table["split"] == split]
        if part.empty:
            continue
        res = nri_interval(
            part["time"].to_numpy(float),
            part["event"].to_numpy(int),
            _horizon_risk(clinical, part, days),
            _horizon_risk(combined, part, days),
            days,
            n_boot=n_boot,
            seed=seed,
        )
        nri_rows.append({"split": split, "horizon_years": sig["nri_years"], **res})
    write_tsv(pd.DataFrame(nri_rows), outputs["nri"])

    horizons = list(sig["horizons_years"])
    plot_nomogram(
        combined,
        outputs["nomogram"],
        title=f"deep-learning nomogram ({experiment} + clinical factors)",
        horizons_years=horizons,
        reference=train,
    )
    plot_nomogram(
        clinical,
        outputs["nomogram_cm"],
        title="clinicomolecular nomogram",
        horizons_years=horizons,
        reference=train,
    )
    summary = {
        "experiment": experiment,
        "endpoint": sig["endpoint"],
        "cutoff": xt.cutoff,
        "statistic": xt.statistic,
        "n": table["split"].value_counts().to_dict(),
        "dropped_factors": dropped,
    }
    log.info("%s: %s", experiment, json.dumps(summary, default=str))
    return summary
