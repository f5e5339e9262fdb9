"""Cox nomograms of clinical factors with or without a deep-learning signature (Yan et al. 2021).

Three Cox models are compared on training / tuning / test cohorts: the signature alone (one
risk score per patient, e.g. the CNN's ``dls``), a clinicomolecular nomogram (clinical factors)
and a deep-learning nomogram (clinical factors + the signature). Each is fitted on the training
patients only and applied unchanged to the other splits:

* :func:`fit_nomogram` -> :class:`CoxNomogram` (lifelines ``CoxPHFitter`` on the preprocessed
  covariates) with its hazard-ratio table, risk, survival and partial-likelihood AIC;
* :func:`table1`: Harrell's C with a patient-bootstrap 95% interval and the AIC per model and
  split (the paper's Table 1);
* :func:`calibration_curves` / :func:`plot_calibration`: grouped calibration at several
  horizons (:func:`mmsurv.evaluation.calibration.calibration_table`);
* :func:`nomogram_scale` / :func:`nomogram_points` / :func:`plot_nomogram`: the points scale of
  each variable, total points and the predicted survival at 1, 2 and 3 years.

Covariates. Numeric clinical factors are imputed with the training median and z-scored on the
training rows, categorical factors imputed with the training mode and one-hot encoded with the
first (sorted) level as reference (:class:`mmsurv.models.tabular.TabularPreprocessor`,
``drop_first=True``: an unpenalised Cox model needs a non-collinear design). The signature is
imputed with its training median but kept on its own scale, so its hazard ratio is per unit of
the signature (the scale on which it is reported and drawn); clinical numeric hazard ratios are
per training SD.

Conventions: times in days (horizons in years are converted with 365.25 days per year);
``event`` 0/1; ``risk`` is the Cox linear predictor, higher for worse prognosis, centred as
lifelines centres it: ``(x - mean_train(x)) @ beta`` with ``x`` the design row, so the baseline
cumulative hazard ``H0(t)`` is that of the mean training design row and
``S(t | x) = exp(-H0(t) exp(risk(x)))``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import CoxPHFitter  # noqa: E402
from lifelines.utils import interpolate_at_times  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from mmsurv.evaluation.calibration import calibration_table  # noqa: E402
from mmsurv.evaluation.metrics import bootstrap_c_interval, harrell_c  # noqa: E402
from mmsurv.io import atomic_path  # noqa: E402
from mmsurv.models.tabular import TabularPreprocessor  # noqa: E402

__all__ = [
    "DAYS_PER_YEAR",
    "TABLE1_COLUMNS",
    "CoxNomogram",
    "fit_nomogram",
    "table1",
    "calibration_curves",
    "plot_calibration",
    "NomogramScale",
    "nomogram_scale",
    "nomogram_points",
    "plot_nomogram",
]

log = logging.getLogger(__name__)

#: Days per year used to turn horizons in years into days.
DAYS_PER_YEAR = 365.25

#: Columns of :func:`table1`.
TABLE1_COLUMNS = ["model", "split", "n", "events", "c_index", "c_index_lo", "c_index_hi", "aic"]

#: Survival probabilities labelled on the nomogram's survival axes (those that are achievable).
SURVIVAL_TICKS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)

_TIME, _EVENT = "__time__", "__event__"


def _training_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The ``train`` rows when ``table`` has a ``split`` column, else all of it."""
    if "split" not in table.columns:
        return table
    train = table[table["split"] == "train"]
    if train.empty:
        raise ValueError("table has a split column but no 'train' rows")
    return train


def _outcome(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``time`` (days) and ``event`` (0/1) of ``table``, shape (n,) each; both must be known."""
    time = pd.to_numeric(table["time"], errors="coerce").to_numpy(float)
    event = pd.to_numeric(table["event"], errors="coerce").to_numpy(float)
    if not (np.isfinite(time).all() and np.isfinite(event).all()):
        raise ValueError("time and event must be known for every row")
    return time, event.astype(int)


@dataclass
class CoxNomogram:
    """A Cox model of clinical factors and/or a signature, fitted on training rows.

    Built by :func:`fit_nomogram`. ``columns`` are the design columns the Cox model uses (a
    one-hot level absent from training is dropped); ``prep`` is ``None`` when there are no
    clinical factors (signature-only model); ``signature_median`` is the training median that
    replaces a missing signature value.
    """

    numeric: list[str]
    categorical: list[str]
    signature: str | None
    penalizer: float
    prep: TabularPreprocessor | None
    signature_median: float
    columns: list[str]
    cph: CoxPHFitter
    n_train: int = 0
    events_train: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        """Input columns of the model: numeric, categorical, then the signature."""
        return self.numeric + self.categorical + ([self.signature] if self.signature else [])

    @property
    def beta(self) -> pd.Series:
        """Fitted coefficients, one per design column (log hazard ratio per design unit)."""
        return self.cph.params_

    def _full_design(self, table: pd.DataFrame) -> pd.DataFrame:
        parts = []
        if self.prep is not None:
            parts.append(self.prep.transform(table))
        if self.signature is not None:
            sig = pd.to_numeric(table[self.signature], errors="coerce").astype(float)
            parts.append(sig.fillna(self.signature_median).to_frame(self.signature))
        return pd.concat(parts, axis=1)

    def design(self, table: pd.DataFrame) -> pd.DataFrame:
        """Preprocessed covariates of ``table``'s rows, shape (n, len(columns)).

        Numeric factors z-scored with the training mean/SD (missing -> training median),
        categorical factors one-hot against the reference level (missing -> training mode),
        the signature on its own scale (missing -> training median).
        """
        return self._full_design(table)[self.columns]

    def risk(self, table: pd.DataFrame) -> np.ndarray:
        """Linear predictor ``(x - mean_train(x)) @ beta`` of each row, shape (n,); higher is
        worse."""
        return np.asarray(self.cph.predict_log_partial_hazard(self.design(table)), float)

    def survival_at(self, table: pd.DataFrame, times_days: Sequence[float]) -> np.ndarray:
        """Predicted ``S(t | x)`` at ``times_days``, shape (n, len(times_days)).

        lifelines' Breslow baseline, linearly interpolated between training event times and
        constant after the last training time.
        """
        times = np.asarray(times_days, float)
        sf = self.cph.predict_survival_function(self.design(table), times=times)
        return sf.to_numpy(float).T

    def baseline_cumulative_hazard(self, times_days: Sequence[float]) -> np.ndarray:
        """``H0(t)`` at ``times_days`` (the mean training design row's), shape (len(times),)."""
        return np.asarray(
            interpolate_at_times(self.cph.baseline_cumulative_hazard_, np.asarray(times_days)),
            float,
        )

    def log_likelihood(self, table: pd.DataFrame) -> float:
        """Unpenalised Cox partial log-likelihood of the fitted coefficients on ``table``'s
        rows (risk sets formed from those rows only; Efron's method for tied times).

        lifelines' ``score(..., scoring_method="log_likelihood")`` is this sum divided by the
        number of rows; it is multiplied back here. NaN when the rows hold no event.
        """
        time, event = _outcome(table)
        if event.sum() == 0:
            return float("nan")
        frame = self.design(table).assign(**{_TIME: time, _EVENT: event})
        return float(self.cph.score(frame, scoring_method="log_likelihood") * len(frame))

    def aic(self, table: pd.DataFrame) -> float:
        """Partial-likelihood AIC on ``table``'s rows: ``-2 * log_likelihood(table) + 2 k``.

        ``k`` is the number of coefficients. On the training rows of an unpenalised fit this is
        lifelines' ``AIC_partial_``; with a penalty lifelines' value also holds the penalty and
        this one does not. NaN when the rows hold no event.
        """
        return -2.0 * self.log_likelihood(table) + 2.0 * len(self.columns)

    def hazard_ratios(self) -> pd.DataFrame:
        """Multivariable hazard ratios with 95% intervals and Wald p-values.

        Returns
        -------
        One row per design column, indexed by a readable term (``"age (per SD)"``,
        ``"grade_III"`` against the first level, ``"dls (per unit)"``), with columns
        ``covariate`` (design column), ``hr``, ``hr_lo``, ``hr_hi`` and ``p_value``.
        """
        s = self.cph.summary
        ci = round(100 * (1 - self.cph.alpha))
        out = pd.DataFrame(
            {
                "covariate": list(s.index),
                "hr": s["exp(coef)"].to_numpy(float),
                "hr_lo": s[f"exp(coef) lower {ci:g}%"].to_numpy(float),
                "hr_hi": s[f"exp(coef) upper {ci:g}%"].to_numpy(float),
                "p_value": s["p"].to_numpy(float),
            },
            index=pd.Index([self.labels.get(c, c) for c in s.index], name="term"),
        )
        return out


def fit_nomogram(
    table: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    *,
    signature: str | None = None,
    penalizer: float = 0.0,
) -> CoxNomogram:
    """Fit a Cox nomogram on the training rows of ``table``.

    Parameters
    ----------
    table
        One row per patient with ``time`` (days), ``event`` (0/1), the clinical columns and
        the ``signature`` column. When it has a ``split`` column only the ``train`` rows are
        used (preprocessing and Cox fit); otherwise every row is a training row.
    numeric, categorical
        Clinical factors: numeric ones median-imputed and z-scored, categorical ones
        mode-imputed and one-hot encoded against their first sorted level.
    signature
        A numeric risk score (e.g. ``"dls"``), median-imputed and kept on its own scale.
    penalizer
        lifelines' L2 penalty (0: the unpenalised model of a nomogram).

    lifelines' convergence warnings are not silenced: they reach the caller.
    """
    if signature is not None and signature in numeric + categorical:
        raise ValueError(f"signature {signature!r} is also listed as a clinical factor")
    if signature is None and not numeric + categorical:
        raise ValueError("a nomogram needs clinical factors or a signature")
    train = _training_rows(table)
    time, event = _outcome(train)
    parts = []
    prep = None
    labels: dict[str, str] = {}
    if numeric + categorical:
        prep = TabularPreprocessor(numeric, categorical, drop_first=True)
        parts.append(prep.fit_transform(train))
        labels.update({c: f"{c} (per SD)" for c in numeric})
    median = float("nan")
    if signature is not None:
        sig = pd.to_numeric(train[signature], errors="coerce").astype(float)
        median = float(sig.median())
        if not np.isfinite(median):
            raise ValueError(f"signature {signature!r} is missing on every training row")
        parts.append(sig.fillna(median).to_frame(signature))
        labels[signature] = f"{signature} (per unit)"
    design = pd.concat(parts, axis=1)
    constant = design.columns[design.std(ddof=0).to_numpy() == 0]
    if len(constant):
        log.info("nomogram: dropping constant training columns %s", list(constant))
    design = design.drop(columns=constant)
    cph = CoxPHFitter(penalizer=penalizer)
    cph.fit(design.assign(**{_TIME: time, _EVENT: event}), duration_col=_TIME, event_col=_EVENT)
    return CoxNomogram(
        numeric=list(numeric),
        categorical=list(categorical),
        signature=signature,
        penalizer=float(penalizer),
        prep=prep,
        signature_median=median,
        columns=list(design.columns),
        cph=cph,
        n_train=len(train),
        events_train=int(event.sum()),
        labels=labels,
    )


def _groups(table: pd.DataFrame) -> np.ndarray:
    """Bootstrap units: ``patient_id`` when present, else the row position."""
    if "patient_id" in table.columns:
        return table["patient_id"].astype(str).to_numpy()
    return np.arange(len(table))


def table1(
    table: pd.DataFrame,
    models: Mapping[str, CoxNomogram | str],
    *,
    splits: Sequence[str],
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """Harrell's C (patient-bootstrap 95% interval) and AIC of each model on each split.

    Parameters
    ----------
    table
        Rows of every split: ``split``, ``time`` (days), ``event``, the models' inputs, and
        ``patient_id`` if rows should be resampled by patient.
    models
        Display name -> fitted :class:`CoxNomogram`, or the name of a signature column. A
        column name is turned into a one-covariate Cox model of that signature fitted on the
        ``train`` rows of ``table``; its C and AIC both come from that model (its risk is
        ``beta * signature``, so its C equals the raw score's when the hazard ratio exceeds 1).
    splits
        Splits to report, in order.
    n_boot, seed
        Bootstrap resamples of patients (0: no interval); the same seed on every row, so the
        models on one split are resampled identically (paired intervals).

    Returns
    -------
    One row per (model, split) with :data:`TABLE1_COLUMNS`; ``aic`` from
    :meth:`CoxNomogram.aic` on that split's rows.
    """
    fitted = {
        name: fit_nomogram(table, [], [], signature=m) if isinstance(m, str) else m
        for name, m in models.items()
    }
    rows = []
    for name, model in fitted.items():
        for split in splits:
            part = table[table["split"] == split]
            row: dict[str, object] = {"model": name, "split": split, "n": len(part)}
            if part.empty:
                rows.append(row | {"events": 0})
                continue
            time, event = _outcome(part)
            risk = model.risk(part)
            lo, hi, _ = bootstrap_c_interval(time, event, risk, _groups(part), n_boot, seed)
            row |= {
                "events": int(event.sum()),
                "c_index": harrell_c(time, event, risk),
                "c_index_lo": lo,
                "c_index_hi": hi,
                "aic": model.aic(part),
            }
            rows.append(row)
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


def calibration_curves(
    table: pd.DataFrame,
    models: Mapping[str, CoxNomogram],
    *,
    split: str,
    horizons_years: Sequence[float],
    n_bins: int,
) -> pd.DataFrame:
    """Grouped calibration of each model on ``split`` at each horizon.

    Returns
    -------
    One row per (model, horizon, group): ``model``, ``split``, ``horizon_years``,
    ``horizon_days`` and the columns of :func:`mmsurv.evaluation.calibration.calibration_table`
    (predicted and Kaplan-Meier observed probability of an event by the horizon).
    """
    part = table[table["split"] == split]
    time, event = _outcome(part)
    frames = []
    for name, model in models.items():
        days = [h * DAYS_PER_YEAR for h in horizons_years]
        surv = model.survival_at(part, days) if len(part) else np.empty((0, len(days)))
        for j, (years, horizon) in enumerate(zip(horizons_years, days, strict=True)):
            cal = calibration_table(time, event, surv[:, j], horizon, n_bins=n_bins)
            cal.insert(0, "horizon_days", horizon)
            cal.insert(0, "horizon_years", float(years))
            cal.insert(0, "split", split)
            cal.insert(0, "model", name)
            frames.append(cal)
    return pd.concat(frames, ignore_index=True)


def _save(fig: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_calibration(curves: pd.DataFrame, path: str | Path, title: str) -> None:
    """Calibration figure of :func:`calibration_curves`: one panel per model, one line per
    horizon (groups with a Kaplan-Meier estimate at the horizon, 95% interval bars) and the
    diagonal of perfect calibration."""
    names = list(dict.fromkeys(curves["model"]))
    fig, axes = plt.subplots(
        1, max(1, len(names)), figsize=(4.6 * max(1, len(names)), 5.0), layout="constrained"
    )
    axes = np.atleast_1d(axes)
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes, names, strict=False):
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
        rows = curves[curves["model"] == name]
        for k, (years, cal) in enumerate(rows.groupby("horizon_years", sort=True)):
            cal = cal[cal["observed"].notna()]
            if cal.empty:
                continue
            err = np.vstack(
                [cal["observed"] - cal["observed_lo"], cal["observed_hi"] - cal["observed"]]
            )
            ax.errorbar(
                cal["predicted"],
                cal["observed"],
                yerr=np.clip(err.astype(float), 0, None),
                fmt="o-",
                color=colours(k),
                capsize=3,
                label=f"{years:g} year{'s' if years != 1 else ''}",
            )
        split = rows["split"].iloc[0] if "split" in rows.columns and len(rows) else ""
        ax.set_title(f"{name} ({split})" if split else name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("predicted P(event by horizon)")
        ax.set_ylabel("observed P(event by horizon), 1 - KM")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


@dataclass
class NomogramScale:
    """Points scale of a :class:`CoxNomogram` (see :func:`nomogram_scale`).

    ``points`` maps each input variable to its table of ``value`` (original units or level),
    ``points`` (0-100) and ``tick`` (labelled on the axis; numeric tables also hold the ends
    of the training range). The linear predictor of a patient is
    ``lp_at_zero + lp_per_point * total_points`` (centred as :meth:`CoxNomogram.risk`).
    """

    model: CoxNomogram
    points: dict[str, pd.DataFrame]
    lp_at_zero: float
    lp_per_point: float
    max_total: float

    def risk(self, total_points: np.ndarray | float) -> np.ndarray:
        """Linear predictor of ``total_points``, same shape."""
        return self.lp_at_zero + self.lp_per_point * np.asarray(total_points, float)

    def survival(self, total_points: np.ndarray | float, horizon_days: float) -> np.ndarray:
        """``S(horizon | total points) = S0(horizon) ** exp(lp)``, same shape as the points."""
        h0 = float(self.model.baseline_cumulative_hazard([horizon_days])[0])
        return np.exp(-h0 * np.exp(self.risk(total_points)))

    def total_points_at(self, survival: float, horizon_days: float) -> float:
        """Total points at which ``S(horizon)`` equals ``survival`` (NaN if never)."""
        h0 = float(self.model.baseline_cumulative_hazard([horizon_days])[0])
        if h0 <= 0 or not 0 < survival < 1:
            return float("nan")
        return (np.log(-np.log(survival) / h0) - self.lp_at_zero) / self.lp_per_point


def _numeric_grid(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Axis values of a numeric variable: the training range ends and round ticks inside;
    returns ``(values, is_tick)``."""
    x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
    if len(x) == 0:
        raise ValueError(f"reference has no value of {values.name!r}")
    lo, hi = float(x.min()), float(x.max())
    ticks = MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    eps = 1e-9 * max(1.0, abs(hi - lo))
    ticks = ticks[(ticks >= lo - eps) & (ticks <= hi + eps)]
    grid = np.unique(np.concatenate([[lo, hi], ticks]))
    is_tick = np.isin(grid, ticks)
    return grid, is_tick


def nomogram_scale(model: CoxNomogram, reference: pd.DataFrame) -> NomogramScale:
    """Points of every variable value, and the map from total points to the linear predictor.

    Each variable's contribution ``f_j(v)`` to the linear predictor is evaluated through the
    fitted preprocessing (so numeric variables are read in their original units, e.g. age in
    years): over the training range of ``reference`` for numeric variables and the signature,
    at every level present in ``reference`` for categorical ones. With ``min_j``/``range_j``
    the minimum/range of ``f_j`` and ``R`` the widest range,
    ``points_j(v) = 100 (f_j(v) - min_j) / R``; the widest variable spans 0-100.

    Parameters
    ----------
    reference
        The training rows (ranges and levels shown on the axes).
    """
    variables = model.variables
    missing = [v for v in variables if v not in reference.columns]
    if missing:
        raise ValueError(f"reference lacks columns {missing}")
    base: dict[str, object] = {}
    for v in model.numeric + ([model.signature] if model.signature else []):
        base[v] = float(pd.to_numeric(reference[v], errors="coerce").median())
    levels: dict[str, list[object]] = {}
    for v in model.categorical:
        present = reference[v].dropna().unique().tolist()
        levels[v] = sorted(present, key=str)
        if not levels[v]:
            raise ValueError(f"reference has no level of {v!r}")
        base[v] = levels[v][0]
    base_row = pd.DataFrame([base])
    base_lp = float(model.risk(base_row)[0])
    contributions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for v in variables:
        if v in model.categorical:
            values = np.asarray(levels[v], dtype=object)
            ticks = np.ones(len(values), bool)
        else:
            values, ticks = _numeric_grid(reference[v])
        probe = pd.DataFrame([base] * len(values))
        probe[v] = values
        contributions[v] = (values, ticks, model.risk(probe) - base_lp)
    widest = max(float(np.ptp(f)) for _, _, f in contributions.values())
    if not widest > 0:
        raise ValueError("every coefficient is zero: no points scale")
    points: dict[str, pd.DataFrame] = {}
    lp_at_zero = base_lp
    max_total = 0.0
    for v, (values, ticks, f) in contributions.items():
        p = 100.0 * (f - f.min()) / widest
        points[v] = pd.DataFrame({"value": values, "points": p, "tick": ticks})
        lp_at_zero += float(f.min())
        max_total += float(p.max())
    return NomogramScale(
        model=model,
        points=points,
        lp_at_zero=lp_at_zero,
        lp_per_point=widest / 100.0,
        max_total=max_total,
    )


def nomogram_points(model: CoxNomogram, reference: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Variable -> table of ``value``, ``points`` and ``tick`` (see :func:`nomogram_scale`)."""
    return nomogram_scale(model, reference).points


def _label(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:g}"
    return str(value)


def _axis(
    ax: plt.Axes,
    y: float,
    name: str,
    xs: np.ndarray,
    labels: list[str],
    span: tuple[float, float] | None = None,
) -> None:
    """One horizontal nomogram axis at height ``y``: a line over ``span`` (default the ticks'
    extent), ticks at ``xs`` (0-100 coordinates) labelled above, alternately raised where
    neighbours crowd."""
    ax.text(-3, y, name, ha="right", va="center", fontsize=9)
    if len(xs) == 0:
        return
    lo, hi = span if span is not None else (float(np.min(xs)), float(np.max(xs)))
    ax.plot([lo, hi], [y, y], color="black", lw=1)
    order = np.argsort(xs)
    last, raised = -np.inf, False
    for i in order:
        raised = (not raised) if xs[i] - last < 5 else False
        last = xs[i]
        ax.plot([xs[i], xs[i]], [y, y + 0.12], color="black", lw=1)
        ax.text(
            xs[i], y + (0.38 if raised else 0.16), labels[i], ha="center", va="bottom", fontsize=7
        )


def plot_nomogram(
    model: CoxNomogram,
    path: str | Path,
    *,
    title: str,
    horizons_years: Sequence[float] = (1, 2, 3),
    reference: pd.DataFrame,
) -> NomogramScale:
    """Draw the nomogram of ``model`` as a PNG (written atomically) and return its scale.

    Top to bottom: a 0-100 "Points" axis; one axis per variable (numeric variables over the
    training range of ``reference`` in original units with round ticks, categorical
    variables with a tick per level); "Total points" (0 to the sum of the variables' maxima,
    drawn on the same width); and per horizon the predicted survival
    ``S0(t) ** exp(lp(total points))`` with ticks at the achievable ones of 0.9, 0.8, ..., 0.1.
    """
    scale = nomogram_scale(model, reference)
    n_rows = 2 + len(scale.points) + len(horizons_years)
    fig, ax = plt.subplots(figsize=(10, 0.62 * n_rows + 1.0))
    y = 0.0
    grid = np.arange(0, 101, 10, dtype=float)
    _axis(ax, y, "Points", grid, [f"{g:g}" for g in grid])
    for v, tab in scale.points.items():
        y -= 1
        p = tab["points"].to_numpy(float)
        tick = tab["tick"].to_numpy(bool)
        name = model.labels.get(v, v).replace(" (per SD)", "").replace(" (per unit)", "")
        _axis(ax, y, name, p[tick], [_label(x) for x in tab["value"][tick]], (p.min(), p.max()))
    y -= 1
    width = 100.0 / scale.max_total
    totals = MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]).tick_values(0, scale.max_total)
    totals = totals[(totals >= 0) & (totals <= scale.max_total + 1e-9)]
    _axis(ax, y, "Total points", totals * width, [f"{t:g}" for t in totals], (0, 100))
    for years in horizons_years:
        y -= 1
        days = years * DAYS_PER_YEAR
        probs = [
            p for p in SURVIVAL_TICKS if 0 <= scale.total_points_at(p, days) <= scale.max_total
        ]
        at = np.array([scale.total_points_at(p, days) for p in probs]) * width
        label = f"{years:g}-year survival"
        _axis(ax, y, label, at, [f"{p:g}" for p in probs])
        if not probs:
            s = scale.survival(np.array([0.0, scale.max_total]), days)
            ax.text(50, y, f"S between {s.min():.2f} and {s.max():.2f}", ha="center", fontsize=7)
    ax.set_xlim(-32, 104)
    ax.set_ylim(y - 0.6, 0.9)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    _save(fig, path)
    return scale
