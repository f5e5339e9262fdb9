"""The training job of one (experiment, fold): fit per endpoint, choose on validation, predict."""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import time as _time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from mmsurv.config import clinical_set, experiment_endpoints
from mmsurv.evaluation.metrics import binary_auc, harrell_c
from mmsurv.io import atomic_path, write_tsv
from mmsurv.models.base import SurvivalModel
from mmsurv.models.registry import NEURAL_MODELS, get_model

__all__ = ["param_grid", "experiment_patients", "experiment_inputs", "train_fold", "time_grid"]

log = logging.getLogger(__name__)

#: Number of points of the time grid on which survival curves are stored.
N_GRID = 100


def param_grid(
    params: Mapping[str, Any], list_valued: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Expand list-valued parameters into candidate settings (cartesian product, in order).

    A parameter in ``list_valued`` takes a list as its value (e.g. ``input_size: [32, 32,
    32]``): for it only a list of lists is a grid.
    """
    keys = list(params)
    values = []
    for key, value in params.items():
        if key in list_valued:
            grid = isinstance(value, list) and bool(value) and isinstance(value[0], list)
        else:
            grid = isinstance(value, list)
        values.append(value if grid else [value])
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*values)]


def experiment_patients(cohort: pd.DataFrame, requires: tuple[str, ...]) -> set[str]:
    """Patients of the cohort table who have every modality an experiment's inputs need.

    ``requires`` holds input keys; ``radiomics`` needs the ``mri`` column. A tumor mask is not
    required here: a scan without one has a weak mask (``mri.weak_labels``) or was skipped at
    preprocessing, and the preprocessing records decide (see :func:`_patient_inputs`).
    """
    from mmsurv.plan import INPUT_MODALITY

    columns = {INPUT_MODALITY.get(key, key) for key in requires}
    ok = np.ones(len(cohort), dtype=bool)
    for column in sorted(columns):
        ok &= cohort[column].astype(bool).to_numpy()
    return set(cohort.loc[ok, "patient_id"])


def _clinical_inputs(
    config: Mapping[str, Any], experiment: str, samples: pd.DataFrame, selection: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Clinical table (patients x variables) and the model's numeric/categorical keywords.

    Patients with none of the variables are dropped (their row would be pure imputation);
    partly missing rows are kept and imputed inside the model.
    """
    variables = clinical_set(config, selection)
    numeric = [v for v in variables if v in config["clinical"]["numeric"]]
    categorical = [v for v in variables if v in config["clinical"]["categorical"]]
    X = samples.set_index("patient_id")[numeric + categorical]
    empty = X.isna().all(axis=1)
    if empty.any():
        log.info(
            "%s: %d patient(s) without any of %s left out",
            experiment,
            int(empty.sum()),
            ", ".join(variables),
        )
    return X.loc[~empty], {"numeric": numeric, "categorical": categorical}


def _usable_bags(features: Mapping[str, str | Path], slides: pd.DataFrame) -> pd.DataFrame:
    """Slides (index slide_id; patient_id, wsi path) whose feature file holds patches.

    Slides skipped at tiling, or without a tile on tissue, are left out with a log line.
    """
    import h5py

    rows = []
    for slide_id, path in features.items():
        with h5py.File(path, "r") as f:
            n = int(f["features"].shape[-2]) if f["features"].ndim >= 2 else 0
            skipped = bool(f.attrs.get("skipped", 0))
        if n == 0 or skipped:
            why = "skipped at tiling" if skipped else "no tissue tiles"
            log.warning("slide %s left out: %s (%s)", slide_id, why, path)
            continue
        rows.append({"slide_id": slide_id, "wsi": str(path)})
    bags = pd.DataFrame(rows, columns=["slide_id", "wsi"])
    bags = bags.merge(slides[["slide_id", "patient_id"]], on="slide_id", how="left")
    return bags.set_index("slide_id")[["patient_id", "wsi"]]


def experiment_inputs(
    config: Mapping[str, Any],
    experiment: str,
    samples: pd.DataFrame,
    features: Mapping[str, str | Path] | None = None,
    rna: str | Path | None = None,
    slides: pd.DataFrame | None = None,
    mri: Sequence[str | Path] | None = None,
    radiomics: str | Path | None = None,
    scna: str | Path | None = None,
    dti: Sequence[str | Path] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Input table of an experiment and the model's keyword arguments.

    Clinical experiments: one row per patient (index ``patient_id``), the clinical variables.
    Experiments with ``wsi`` and/or ``rna`` inputs: one row per prediction unit, indexed by
    ``slide_id`` when ``wsi`` is an input (a patient may have several slides), else by
    ``patient_id``; column ``patient_id``; ``wsi`` (path of the slide's feature file);
    ``rna:{gene}`` (the patient's log-normalised expression). Units lacking an input are left
    out (the experiment's policy for a missing modality; nothing is filled in).

    Parameters
    ----------
    features
        slide_id -> feature file (``results/wsi/features/{encoder}/{slide}.h5``).
    rna
        ``results/omics/rna.parquet`` (patients x genes).
    slides
        The slides sheet (slide_id, patient_id).
    mri
        The patients' ``results/mri/preprocessed/{patient}/preprocess.json`` records (the
        tumor crop ``crop.npz`` lies beside each); see :func:`_patient_inputs`.
    radiomics
        ``results/mri/radiomics.parquet`` (patients x ``{sequence}_{feature}``).
    scna
        ``results/omics/scna.parquet`` (patients x genes, SCNA-only patients included).
    dti
        The patients' ``results/dti/slices/{patient}.json`` records (the 16-slice input
        ``{patient}.npy`` lies beside each).
    """
    inputs = config["experiments"][experiment]["inputs"]
    if set(inputs) == {"clinical"}:
        return _clinical_inputs(config, experiment, samples, inputs["clinical"])
    if set(inputs) & {"mri", "radiomics", "scna", "dti"}:
        return _patient_inputs(config, experiment, samples, mri, radiomics, scna, dti)
    if "clinical" in inputs:
        raise NotImplementedError(
            f"experiment {experiment!r}: clinical inputs combined with {sorted(inputs)} are not "
            "available yet"
        )
    unknown = set(inputs) - {"wsi", "rna"}
    if unknown:
        raise NotImplementedError(
            f"experiment {experiment!r}: inputs {sorted(unknown)} are not available yet"
        )
    X: pd.DataFrame | None = None
    if "wsi" in inputs:
        if features is None or slides is None:
            raise ValueError(f"experiment {experiment!r} needs feature files and the slides sheet")
        X = _usable_bags(features, slides)
    if "rna" in inputs:
        if rna is None:
            raise ValueError(f"experiment {experiment!r} needs the RNA matrix")
        expr = pd.read_parquet(rna)
        expr.index = expr.index.astype(str)
        expr.columns = [f"rna:{g}" for g in expr.columns]
        if X is None:
            # unnamed index: a column and an index both called patient_id would be ambiguous
            X = expr.assign(patient_id=expr.index).rename_axis(None)
        else:
            X = X.join(expr, on="patient_id", how="inner")
        X = X[["patient_id", *[c for c in X.columns if c != "patient_id"]]]
    assert X is not None
    return X, {}


def scna_table(path: str | Path) -> pd.DataFrame:
    """``results/omics/scna.parquet`` as model columns ``scna:{gene}`` (index: patient id)."""
    from mmsurv.omics.scna import SCNA_PREFIX

    table = pd.read_parquet(path)
    table.index = table.index.astype(str)
    table.columns = [f"{SCNA_PREFIX}{g}" for g in table.columns]
    return table


def _patient_inputs(
    config: Mapping[str, Any],
    experiment: str,
    samples: pd.DataFrame,
    records: Sequence[str | Path] | None,
    radiomics: str | Path | None,
    scna: str | Path | None,
    dti: Sequence[str | Path] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Input table of an experiment with ``mri``, ``radiomics``, ``scna`` and/or ``dti``
    (+ ``clinical``).

    One row per patient (index ``patient_id``). ``mri: [channel, ...]``: column ``mri``, the
    path of the patient's network input (the tumor crop ``crop.npz``, or ``brain.npz`` for an
    experiment with ``region: brain``); patients whose preprocessing was skipped are left out;
    the model gets ``channels``. ``radiomics: [sequence, ...]``: the columns
    ``{sequence}_{feature}`` of those sequences, passed to the model as numeric variables.
    ``scna: genes``: the gene-level copy number as columns ``scna:{gene}`` (the PCA is fitted
    inside the model). ``dti: slices``: column ``dti``, the path of the patient's 16-slice
    input (patients whose DTI stage was skipped are left out). ``clinical: SET``: the set's
    variables (numeric / categorical keywords). Patients lacking an input are left out (nothing
    is filled in here; a partly missing clinical row is imputed inside the model on training
    patients).
    """
    from mmsurv.mri.stage import usable_crops

    spec = config["experiments"][experiment]
    inputs = spec["inputs"]
    parts: list[pd.DataFrame] = []
    kwargs: dict[str, Any] = {"numeric": [], "categorical": []}
    if "mri" in inputs:
        if records is None:
            raise ValueError(f"experiment {experiment!r} needs the MRI preprocessing records")
        crops = usable_crops(records, spec.get("region", "crop"))
        parts.append(pd.DataFrame({"mri": crops}, index=pd.Index(list(crops), name="patient_id")))
        kwargs["channels"] = list(inputs["mri"])
    if "dti" in inputs:
        if dti is None:
            raise ValueError(f"experiment {experiment!r} needs the DTI slice records")
        stacks = usable_slices(dti)
        parts.append(pd.DataFrame({"dti": stacks}, index=pd.Index(list(stacks), name="patient_id")))
    if "radiomics" in inputs:
        if radiomics is None:
            raise ValueError(f"experiment {experiment!r} needs the radiomics table")
        table = pd.read_parquet(radiomics)
        table.index = table.index.astype(str)
        prefixes = tuple(f"{seq}_" for seq in inputs["radiomics"])
        columns = [c for c in table.columns if c.startswith(prefixes)]
        if not columns:
            raise ValueError(
                f"experiment {experiment!r}: {radiomics} has no features of "
                f"{list(inputs['radiomics'])} (mri.radiomics.sequences lists the extracted ones)"
            )
        parts.append(table[columns].dropna(how="all"))
        kwargs["numeric"] += columns
    if "scna" in inputs:
        if scna is None:
            raise ValueError(f"experiment {experiment!r} needs the SCNA matrix")
        parts.append(scna_table(scna).dropna(how="any"))
    if "clinical" in inputs:
        clinical, kinds = _clinical_inputs(config, experiment, samples, inputs["clinical"])
        parts.append(clinical)
        kwargs["numeric"] += kinds["numeric"]
        kwargs["categorical"] += kinds["categorical"]
    X = parts[0]
    for part in parts[1:]:
        X = X.join(part, how="inner")
    X.index.name = "patient_id"
    if not (kwargs["numeric"] or kwargs["categorical"]):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("numeric", "categorical")}
    return X, kwargs


def usable_slices(records: Sequence[str | Path]) -> dict[str, str]:
    """patient_id -> ``{patient}.npy`` beside every DTI record whose stage succeeded; skipped
    patients are left out with a log line."""
    out = {}
    for path in records:
        record = json.loads(Path(path).read_text())
        if record.get("status", "ok") != "ok":
            log.warning("patient %s left out: %s", record.get("patient_id"), record.get("reason"))
            continue
        out[str(record["patient_id"])] = str(Path(path).with_suffix(".npy"))
    return out


def time_grid(train_time: np.ndarray) -> np.ndarray:
    """Times (days) at which survival curves are stored: 0 to the last training time."""
    return np.linspace(0.0, float(np.max(train_time)), N_GRID)


def unit_patients(X: pd.DataFrame) -> pd.Series:
    """Patient of each row of an input table (its ``patient_id`` column, else its index)."""
    if "patient_id" in X.columns:
        return X["patient_id"].astype(str)
    return pd.Series(X.index.astype(str), index=X.index)


def _units(
    X: pd.DataFrame, data: pd.DataFrame, split: str
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The rows of ``X`` of the patients in ``split``, with their patients' time and event."""
    part = data[data["split"] == split].set_index("patient_id")
    patients = unit_patients(X)
    rows = X[patients.isin(part.index).to_numpy()]
    pid = unit_patients(rows)
    return rows, part.loc[pid, "time"].to_numpy(float), part.loc[pid, "event"].to_numpy(int)


def patient_mean(ids: pd.Series, values: np.ndarray) -> pd.Series:
    """Mean of per-unit ``values`` (n,) or rows (n, k) by patient; NaN units are ignored."""
    frame = pd.DataFrame(np.asarray(values, float).reshape(len(ids), -1), index=ids.to_numpy())
    means = frame.groupby(level=0, sort=False).mean()
    return means.iloc[:, 0] if means.shape[1] == 1 else means


def binary_labels(samples: pd.DataFrame, column: str) -> pd.Series:
    """A 0/1 label column of the samples sheet as floats indexed by patient (NaN: unknown).

    Raises
    ------
    ValueError
        When the column is missing or holds a value other than 0, 1, true or false.
    """
    if column not in samples:
        raise ValueError(f"label column {column!r} is not in the samples sheet")
    raw = samples.set_index("patient_id")[column]
    text = raw.astype("string").str.strip().str.lower()
    mapped = text.map({"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0})
    bad = text.notna() & mapped.isna()
    if bad.any():
        who = ", ".join(f"{p}={raw[p]!r}" for p in raw.index[bad.to_numpy()][:5])
        raise ValueError(f"label column {column!r} must hold 0/1 values; got {who}")
    out = mapped.astype(float)
    out.index = out.index.astype(str)
    return out


def _fit_endpoint(
    cls: type[SurvivalModel],
    kwargs: dict[str, Any],
    candidates: list[dict[str, Any]],
    X: pd.DataFrame,
    data: pd.DataFrame,
    labels: pd.Series | None = None,
    extra: pd.DataFrame | None = None,
    extra_scans: pd.DataFrame | None = None,
) -> tuple[SurvivalModel, list[dict[str, Any]]]:
    """Fit every candidate on train; pick the best validation score (first on ties).

    The score is the validation C-index, or for a classifier (its ``fit`` takes ``labels``)
    the validation AUC of its score. Models whose ``fit`` takes ``validation`` get the
    validation units for early stopping. Classifiers get the label of the training and
    validation patients and of ``extra_scans`` only (never a test patient's); models whose
    ``fit`` takes ``extra`` get ``extra`` (SCNA rows of patients in no split, for the SCNA
    PCA), those taking ``extra_scans`` the input rows of patients in no split (scans without
    an outcome, for the networks' label and segmentation losses).
    The validation C-index is computed at patient level (mean risk over a patient's slides).
    A candidate whose validation C-index is undefined (no comparable pair), or whose fit
    diverges numerically (``ArithmeticError``, logged with the candidate), never wins; a grid
    none of whose candidates can be scored is an error, not a silent first choice.
    """
    X_tr, t_tr, e_tr = _units(X, data, "train")
    X_va, t_va, e_va = _units(X, data, "val")
    val = data[data["split"] == "val"].set_index("patient_id")
    accepts = inspect.signature(cls.fit).parameters
    more: dict[str, Any] = {}
    if "validation" in accepts:
        more["validation"] = (X_va, t_va, e_va) if len(X_va) else None
    if "labels" in accepts:
        if labels is None:
            raise ValueError(f"{cls.__name__} is a classifier: the experiment needs a label")
        seen = data.loc[data["split"].isin(["train", "val"]), "patient_id"].astype(str)
        if extra_scans is not None:
            seen = pd.concat([seen, unit_patients(extra_scans)])
        more["labels"] = labels.reindex(seen.unique())  # test labels never reach fit
    if "extra" in accepts:
        more["extra"] = extra
    if "extra_scans" in accepts:
        more["extra_scans"] = extra_scans
    metric = "val_auc" if "labels" in more else "val_c_index"
    trials = []
    models = []
    for cand in candidates:
        try:
            model = cls(**kwargs, **cand).fit(X_tr, t_tr, e_tr, **more)
        except ArithmeticError as err:  # a setting that diverges (e.g. too weak a penalty)
            if len(candidates) == 1:
                raise
            log.warning("  %s -> fit diverged (%s); candidate dropped", cand, err)
            trials.append({"params": cand, metric: float("nan"), "error": str(err)})
            models.append(None)
            continue
        score = float("nan")
        if len(X_va) and "labels" in more:  # a classifier is chosen on its label
            truth = more["labels"].reindex(unit_patients(X_va)).to_numpy(float)
            score = binary_auc(truth, model.predict_score(X_va))
        elif len(X_va):
            risk = patient_mean(unit_patients(X_va), model.predict_risk(X_va)).dropna()
            score = harrell_c(
                val.loc[risk.index, "time"].to_numpy(float),
                val.loc[risk.index, "event"].to_numpy(int),
                risk.to_numpy(float),
            )
        trials.append({"params": cand, metric: score})
        models.append(model)
        log.info("  %s -> %s %.3f", cand, metric.replace("_", " "), score)
    if len(candidates) == 1:
        return models[0], trials
    scores = np.array([t[metric] for t in trials], dtype=float)
    if np.isnan(scores).all():
        raise ValueError(
            f"a parameter grid needs validation patients with comparable pairs to choose on "
            f"({len(val)} validation patients, {int(val['event'].sum())} events); give single "
            "values or a split with a larger validation part"
        )
    return models[int(np.nanargmax(scores))], trials  # NaN (also diverged) never wins


def _prediction_rows(
    X: pd.DataFrame,
    data: pd.DataFrame,
    risk: np.ndarray,
    surv: np.ndarray,
    grid: np.ndarray,
    endpoint: str,
    fold: int,
    scores: tuple[pd.Series, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prediction rows (DESIGN.md columns) and long survival curves of one endpoint.

    Slide-level experiments (``X`` indexed by slide) give one row per slide (``slide_id`` set)
    plus one per patient (``slide_id`` empty) with the mean risk and mean survival curve of
    the patient's slides; other experiments give the patient rows only. Curves are stored for
    patient rows only. ``scores`` (classifiers: every patient's true label, NaN when unknown,
    and the predicted score of each unit) adds the columns ``label`` and ``score``.
    """
    pid = unit_patients(X)
    slide_level = "wsi" in X.columns
    p_risk = patient_mean(pid, risk).dropna()
    p_surv = patient_mean(pid, surv).loc[p_risk.index]
    info = data.set_index("patient_id").loc[p_risk.index]
    rows = [
        pd.DataFrame(
            {
                "patient_id": p_risk.index,
                "slide_id": "",
                "endpoint": endpoint,
                "fold": fold,
                "split": info["split"].to_numpy(),
                "risk": p_risk.to_numpy(),
                "time": info["time"].to_numpy(),
                "event": info["event"].to_numpy(int),
            }
        )
    ]
    if slide_level:
        ok = np.isfinite(risk)
        sinfo = data.set_index("patient_id").loc[pid[ok]]
        rows.insert(
            0,
            pd.DataFrame(
                {
                    "patient_id": pid[ok].to_numpy(),
                    "slide_id": X.index[ok].astype(str),
                    "endpoint": endpoint,
                    "fold": fold,
                    "split": sinfo["split"].to_numpy(),
                    "risk": risk[ok],
                    "time": sinfo["time"].to_numpy(),
                    "event": sinfo["event"].to_numpy(int),
                }
            ),
        )
    if scores is not None:
        if slide_level:
            raise ValueError("classification experiments are patient-level")
        truth, score = scores
        p_score = patient_mean(pid, score).loc[p_risk.index]
        rows[0]["label"] = truth.reindex(p_risk.index.astype(str)).to_numpy(float)
        rows[0]["score"] = p_score.to_numpy(float)
    n = len(p_risk)
    curves = pd.DataFrame(
        {
            "patient_id": np.repeat(p_risk.index.to_numpy(), len(grid)),
            "endpoint": endpoint,
            "split": np.repeat(info["split"].to_numpy(), len(grid)),
            "time": np.tile(grid, n),
            "survival": np.asarray(p_surv, float).reshape(n, len(grid)).ravel(),
        }
    )
    return pd.concat(rows, ignore_index=True), curves


def train_fold(
    config: Mapping[str, Any],
    experiment: str,
    fold: int,
    samples: pd.DataFrame,
    cohort: pd.DataFrame,
    splits: Mapping[str, pd.DataFrame],
    out_dir: str | Path,
    threads: int = 1,
    features: Mapping[str, str | Path] | None = None,
    rna: str | Path | None = None,
    slides: pd.DataFrame | None = None,
    mri: Sequence[str | Path] | None = None,
    radiomics: str | Path | None = None,
    scna: str | Path | None = None,
    dti: Sequence[str | Path] | None = None,
) -> None:
    """Train ``experiment`` on ``fold`` for each of its endpoints and write the fold folder.

    Writes ``model.joblib`` (endpoint -> fitted model), ``predictions.tsv`` (DESIGN.md columns;
    slide and patient rows for slide-level experiments), ``survival.parquet`` (long:
    patient_id, endpoint, split, time, survival on a grid) and ``train_log.json`` (candidates,
    validation scores, chosen parameters, sizes, timings, training curves of networks).
    ``features``, ``rna``, ``slides``, ``mri``, ``radiomics``, ``scna`` and ``dti`` are needed by
    experiments with those inputs (see :func:`experiment_inputs`). A classification experiment
    (``label``) adds ``label`` and ``score`` to its predictions. SCNA samples of patients in
    no split of an endpoint are passed to models that take ``extra`` (the SCNA PCA).
    """
    out_dir = Path(out_dir)
    spec = config["experiments"][experiment]
    cls = get_model(spec["model"])
    X, kwargs = experiment_inputs(
        config, experiment, samples, features, rna, slides, mri, radiomics, scna, dti
    )
    labels = None
    if spec.get("label"):
        labels = binary_labels(samples, config["labels"][spec["label"]])
    all_scna = scna_table(scna) if "scna" in spec["inputs"] and scna is not None else None
    kwargs |= {"seed": int(config["seed"]) + fold, "threads": threads}
    if spec["model"] in NEURAL_MODELS:
        kwargs["device"] = config["device"]
    eligible = experiment_patients(cohort, tuple(spec["inputs"])) & set(unit_patients(X))
    candidates = param_grid(spec.get("params", {}), getattr(cls, "list_params", frozenset()))
    models: dict[str, SurvivalModel] = {}
    preds, curves, logs = [], [], {}
    for endpoint in experiment_endpoints(config, experiment):
        ep = config["endpoints"][endpoint]
        split = splits[endpoint]
        split = split[(split["fold"] == fold) & split["patient_id"].isin(eligible)]
        data = split.merge(
            samples[["patient_id", ep["time"], ep["event"]]], on="patient_id", how="left"
        ).rename(columns={ep["time"]: "time", ep["event"]: "event"})
        data["event"] = data["event"].astype(int)
        log.info(
            "%s fold %d %s: %s", experiment, fold, endpoint, data["split"].value_counts().to_dict()
        )
        # patients in no split of any of the experiment's endpoints (SCNA-only patients,
        # patients without the outcomes): never a validation or test patient
        in_split = set().union(*(set(t["patient_id"].astype(str)) for t in splits.values()))
        extra = None
        if all_scna is not None:
            extra = all_scna[~all_scna.index.isin(in_split)].dropna(how="any")
            log.info("%d SCNA sample(s) of patients in no split", len(extra))
        extra_scans = None
        if "mri" in spec["inputs"]:
            extra_scans = X[~unit_patients(X).isin(in_split).to_numpy()]
            log.info("%d scan(s) of patients in no split", len(extra_scans))
        start = _time.perf_counter()
        model, trials = _fit_endpoint(cls, kwargs, candidates, X, data, labels, extra, extra_scans)
        models[endpoint] = model
        grid = time_grid(data.loc[data["split"] == "train", "time"].to_numpy())
        Xp = X[unit_patients(X).isin(data["patient_id"]).to_numpy()]
        risk = np.asarray(model.predict_risk(Xp), float)
        surv = model.predict_survival(Xp, grid)  # (units, len(grid))
        scores = None
        if labels is not None:
            scores = (labels, np.asarray(model.predict_score(Xp), float))
        rows, curve = _prediction_rows(Xp, data, risk, surv, grid, endpoint, fold, scores)
        preds.append(rows)
        curves.append(curve)
        logs[endpoint] = {
            "n": data["split"].value_counts().to_dict(),
            "units": int(len(Xp)),
            "events": data.groupby("split")["event"].sum().astype(int).to_dict(),
            "candidates": trials,
            "chosen": model.params,
            "fit_seconds": round(_time.perf_counter() - start, 3),
            "model": model.describe(),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "model.joblib") as tmp:
        joblib.dump(models, tmp)
    write_tsv(pd.concat(preds, ignore_index=True), out_dir / "predictions.tsv")
    with atomic_path(out_dir / "survival.parquet") as tmp:
        pd.concat(curves, ignore_index=True).to_parquet(tmp, index=False)
    with atomic_path(out_dir / "train_log.json") as tmp:
        tmp.write_text(
            json.dumps(
                {"experiment": experiment, "fold": fold, "model": spec["model"], "endpoints": logs},
                indent=2,
                default=str,
            )
        )
