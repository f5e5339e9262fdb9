"""Elastic-net Cox model on tabular inputs, penalty chosen by internal cross-validation.

scikit-survival's ``CoxnetSurvivalAnalysis`` on the :class:`~mmsurv.models.tabular.
TabularPreprocessor` design (clinical variables and radiomics features arrive as ``numeric``
columns: median-imputed and z-scored; categorical ones one-hot encoded). As in Bozzo et al. 2024
(seed 3), "the strength of the regularization [is] determined by 5-fold cross-validation
optimizing the concordance index", here on the training patients given to :meth:`fit` only:

1. for each ``l1_ratio``, the alpha path (``n_alphas`` values from the alpha that zeroes every
   coefficient down to ``alpha_min_ratio`` times it) is computed once on all training patients;
2. ``KFold(cv_folds, shuffle=True, random_state=seed)`` splits the training patients; in each
   fold the preprocessing is refitted on the fold's training part, the whole path is fitted
   there (warm starts along the path) and every alpha's linear predictor is scored on the
   fold's held-out part with Harrell's C (lifelines, :func:`mmsurv.evaluation.metrics.
   harrell_c`);
3. the (l1_ratio, alpha) with the best mean C over the folds wins (the first on ties: earlier
   ``l1_ratios``, then larger alpha, i.e. the sparser model), and the model is refitted on all
   training patients along the path down to that alpha, with a Breslow baseline for survival
   curves.

A fit that diverges numerically (scikit-survival's ``ArithmeticError``, "weights too large") on a
fold's path is retried alpha by alpha; an alpha that still diverges in any fold is dropped from
the choice (logged, and marked in the CV table). If every candidate diverges, ``fit`` raises
``ArithmeticError`` (the training job then drops that setting).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.base import SurvivalModel, step_survival
from mmsurv.models.tabular import TabularPreprocessor

__all__ = ["CoxnetModel"]

log = logging.getLogger(__name__)

#: Elastic-net mixes tried by default (1 would be the lasso; 0 is not allowed by Coxnet).
DEFAULT_L1_RATIOS = (0.1, 0.5, 0.9)
#: Larger ``alpha_min_ratio`` values tried, in order, when the path on all training patients
#: diverges at its weak-penalty end.
_FALLBACK_MIN_RATIOS = (1e-3, 1e-2, 1e-1)


def _captured(label: str, caught: list[warnings.WarningMessage], level: int) -> None:
    for w in caught:
        log.log(level, "scikit-survival Coxnet (%s): %s", label, w.message)


class CoxnetModel(SurvivalModel):
    """Elastic-net Cox (``coxnet``) with l1_ratio and alpha chosen by CV on the training patients.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    l1_ratios : float or list of float, default [0.1, 0.5, 0.9]
        Elastic-net mixes to choose among (each in (0, 1]; 1 is the lasso). Note that the
        training job expands a list-valued experiment parameter into a grid of candidates, so
        an experiment gives the whole list as ``l1_ratios: [[0.1, 0.5, 0.9]]`` (or leaves the
        default); a single value fixes the mix.
    n_alphas : int, default 50
        Length of the alpha path (scikit-survival may stop it earlier once the fit saturates).
    alpha_min_ratio : float or "auto", default "auto"
        Smallest alpha of the path as a fraction of the largest (scikit-survival's rule for
        "auto": 1e-4 with more patients than features, else 1e-2).
    cv_folds : int, default 5
        Folds of the internal cross-validation over the training patients.
    max_iter : int, default 100000
        Coordinate-descent iterations per fit.

    ``threads`` is accepted for the common interface; Coxnet fits run on one core.
    """

    def __init__(
        self,
        *,
        numeric: list[str],
        categorical: list[str],
        l1_ratios: float | Sequence[float] = DEFAULT_L1_RATIOS,
        n_alphas: int = 50,
        alpha_min_ratio: float | str = "auto",
        cv_folds: int = 5,
        max_iter: int = 100000,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        ratios = [float(l1_ratios)] if np.isscalar(l1_ratios) else [float(r) for r in l1_ratios]
        if not ratios or not all(0 < r <= 1 for r in ratios):
            raise ValueError(f"l1_ratios must be non-empty values in (0, 1], got {l1_ratios!r}")
        if n_alphas < 1 or cv_folds < 2 or max_iter < 1:
            raise ValueError(
                f"need n_alphas >= 1, cv_folds >= 2 and max_iter >= 1, got {n_alphas}, "
                f"{cv_folds}, {max_iter}"
            )
        if isinstance(alpha_min_ratio, str) and alpha_min_ratio != "auto":
            raise ValueError(f"alpha_min_ratio must be a number or 'auto', got {alpha_min_ratio!r}")
        self.params = {
            "l1_ratios": ratios,
            "n_alphas": int(n_alphas),
            "alpha_min_ratio": alpha_min_ratio,
            "cv_folds": int(cv_folds),
            "max_iter": int(max_iter),
        }
        self.numeric = list(numeric)
        self.categorical = list(categorical)

    # -- design matrices ------------------------------------------------------------------

    def _prep(self) -> TabularPreprocessor:
        return TabularPreprocessor(self.numeric, self.categorical, drop_first=False)

    @staticmethod
    def _fit_design(prep: TabularPreprocessor, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Fitted design of ``X`` and the mask of its non-constant columns."""
        design = prep.fit_transform(X).to_numpy(float)
        keep = design.std(axis=0) > 0  # a level absent from these rows
        return design[:, keep], keep

    # -- fitting --------------------------------------------------------------------------

    def _estimator(self, l1_ratio: float, **kwargs: Any) -> CoxnetSurvivalAnalysis:
        return CoxnetSurvivalAnalysis(l1_ratio=l1_ratio, max_iter=self.params["max_iter"], **kwargs)

    def _alpha_path(self, design: np.ndarray, y: np.ndarray, l1_ratio: float) -> np.ndarray:
        """Descending alphas of the path on all training patients (shortened at its weak end
        when the fit diverges there)."""
        ratio = self.params["alpha_min_ratio"]
        tries = [ratio] + [r for r in _FALLBACK_MIN_RATIOS if isinstance(ratio, str) or r > ratio]
        for k, min_ratio in enumerate(tries):
            est = self._estimator(
                l1_ratio, n_alphas=self.params["n_alphas"], alpha_min_ratio=min_ratio
            )
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    est.fit(design, y)
            except ArithmeticError as err:
                if k + 1 == len(tries):
                    raise ArithmeticError(
                        f"Coxnet l1_ratio={l1_ratio}: the alpha path diverges on the training "
                        f"patients even with alpha_min_ratio={min_ratio} ({err})"
                    ) from err
                log.warning(
                    "Coxnet l1_ratio=%g: path with alpha_min_ratio=%s diverged (%s); retrying "
                    "with %g",
                    l1_ratio,
                    min_ratio,
                    err,
                    tries[k + 1],
                )
                continue
            _captured(f"path l1_ratio={l1_ratio:g}", caught, logging.DEBUG)
            return np.sort(np.asarray(est.alphas_, float))[::-1]
        raise AssertionError("unreachable")

    def _path_risks(
        self,
        train: np.ndarray,
        y_train: np.ndarray,
        val: np.ndarray,
        l1_ratio: float,
        alphas: np.ndarray,
        label: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear predictors on ``val`` of fits on ``train`` at every alpha.

        Returns
        -------
        risk
            Shape (len(val), len(alphas)); NaN columns for alphas whose fit diverged.
        ok
            Shape (len(alphas),), False where the fit diverged.
        """
        risk = np.full((len(val), len(alphas)), np.nan)
        ok = np.zeros(len(alphas), bool)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = self._estimator(l1_ratio, alphas=alphas).fit(train, y_train)
            _captured(label, caught, logging.DEBUG)
            for j, alpha in enumerate(alphas):
                risk[:, j] = est.predict(val, alpha=alpha)
            ok[:] = True
            return risk, ok
        except ArithmeticError as err:
            log.info("Coxnet %s: path fit diverged (%s); fitting each alpha alone", label, err)
        for j, alpha in enumerate(alphas):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    est = self._estimator(l1_ratio, alphas=[alpha]).fit(train, y_train)
            except ArithmeticError as err:
                log.warning("Coxnet %s, alpha=%.4g: fit diverged (%s); dropped", label, alpha, err)
                continue
            _captured(label, caught, logging.DEBUG)
            risk[:, j] = est.predict(val)
            ok[j] = True
        return risk, ok

    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> Self:
        """Choose (l1_ratio, alpha) by CV on these patients, then fit on all of them.

        Parameters
        ----------
        X
            Training patients x input columns (``numeric`` and ``categorical``), n rows.
        time
            Event or censoring time (days), shape (n,).
        event
            1 event, 0 censored, shape (n,).

        Raises
        ------
        ValueError
            Fewer patients than folds, or no candidate with a defined CV C-index.
        ArithmeticError
            Every candidate diverged.
        """
        time = np.asarray(time, float)
        event = np.asarray(event, int)
        n, n_folds = len(X), self.params["cv_folds"]
        if n < n_folds:
            raise ValueError(f"Coxnet: {n} training patients for {n_folds}-fold CV")
        y = Surv.from_arrays(event=event.astype(bool), time=time)
        self.prep = self._prep()
        design, self.keep_ = self._fit_design(self.prep, X)
        self.columns_ = [c for c, k in zip(self.prep.feature_names, self.keep_, strict=True) if k]

        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=self.seed)
        folds = []
        for k, (tr, va) in enumerate(splitter.split(np.zeros((n, 1)))):
            prep = self._prep()
            d_tr, keep = self._fit_design(prep, X.iloc[tr])
            d_va = prep.transform(X.iloc[va]).to_numpy(float)[:, keep]
            folds.append((k, tr, va, d_tr, d_va))
        self.cv_folds_ = [
            {
                "fold": k,
                "n_train": len(tr),
                "n_val": len(va),
                "events_val": int(event[va].sum()),
            }
            for k, tr, va, _, _ in folds
        ]

        rows = []
        self.alpha_paths_: dict[float, np.ndarray] = {}
        for l1_ratio in self.params["l1_ratios"]:
            alphas = self._alpha_path(design, y, l1_ratio)
            self.alpha_paths_[l1_ratio] = alphas
            scores = np.full((n_folds, len(alphas)), np.nan)
            fitted = np.ones(len(alphas), bool)
            for k, tr, va, d_tr, d_va in folds:
                label = f"l1_ratio={l1_ratio:g}, fold {k}"
                risk, ok = self._path_risks(d_tr, y[tr], d_va, l1_ratio, alphas, label)
                fitted &= ok
                for j in np.flatnonzero(ok):
                    scores[k, j] = harrell_c(time[va], event[va], risk[:, j])
            for j, alpha in enumerate(alphas):
                fold_c = scores[:, j]
                defined = np.isfinite(fold_c)
                rows.append(
                    {
                        "l1_ratio": l1_ratio,
                        "alpha": float(alpha),
                        "c_index_mean": float(fold_c[defined].mean()) if defined.any() else np.nan,
                        "c_index_sd": float(fold_c[defined].std()) if defined.any() else np.nan,
                        "n_folds_scored": int(defined.sum()),
                        "diverged": bool(not fitted[j]),
                        **{f"c_index_fold{k}": float(fold_c[k]) for k in range(n_folds)},
                    }
                )
        table = pd.DataFrame(rows)
        self.cv_results_ = table
        usable = table[~table["diverged"] & table["c_index_mean"].notna()]
        if usable.empty:
            if table["diverged"].all():
                raise ArithmeticError(
                    "Coxnet: every (l1_ratio, alpha) candidate diverged in the internal CV"
                )
            raise ValueError(
                f"Coxnet: no candidate has a defined CV C-index ({n} training patients, "
                f"{int(event.sum())} events, {n_folds} folds)"
            )
        best = usable.index[int(np.argmax(usable["c_index_mean"].to_numpy()))]
        self.l1_ratio_ = float(table.at[best, "l1_ratio"])
        self.alpha_ = float(table.at[best, "alpha"])
        self.cv_c_index_ = float(table.at[best, "c_index_mean"])
        log.info(
            "Coxnet: chose l1_ratio=%g, alpha=%.4g (CV C-index %.3f over %d folds, %d candidates,"
            " %d diverged)",
            self.l1_ratio_,
            self.alpha_,
            self.cv_c_index_,
            n_folds,
            len(table),
            int(table["diverged"].sum()),
        )
        self._refit(design, y)
        return self

    def _refit(self, design: np.ndarray, y: np.ndarray) -> None:
        """Final fit on all training patients along the path down to the chosen alpha."""
        path = self.alpha_paths_[self.l1_ratio_]
        path = path[path >= self.alpha_ * (1 - 1e-12)]
        for alphas in (path, np.array([self.alpha_])):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    self.coxnet = self._estimator(
                        self.l1_ratio_, alphas=alphas, fit_baseline_model=True
                    ).fit(design, y)
            except ArithmeticError as err:
                if len(alphas) == 1:
                    raise
                log.warning("Coxnet: final path fit diverged (%s); fitting the alpha alone", err)
                continue
            _captured("final fit", caught, logging.WARNING)
            break
        coef = self.coxnet.coef_[:, -1]
        self.n_nonzero_ = int(np.count_nonzero(coef))
        log.info(
            "Coxnet: %d of %d features with a non-zero coefficient", self.n_nonzero_, len(coef)
        )

    # -- prediction -----------------------------------------------------------------------

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        return self.prep.transform(X).to_numpy(float)[:, self.keep_]

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Linear predictor at the chosen alpha, shape (n,); higher means worse prognosis."""
        return np.asarray(self.coxnet.predict(self._design(X), alpha=self.alpha_), float)

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival at ``times`` (days), shape (n, len(times)), from the Breslow baseline."""
        if len(X) == 0:
            return np.empty((0, len(times)))
        surv = self.coxnet.predict_survival_function(
            self._design(X), alpha=self.alpha_, return_array=True
        )
        return step_survival(self.coxnet.unique_times_, surv, np.asarray(times, float))

    def describe(self) -> dict[str, Any]:
        """Parameters, the chosen (l1_ratio, alpha), the CV table and non-zero coefficients."""
        out: dict[str, Any] = {"params": self.params}
        if not hasattr(self, "coxnet"):
            return out
        coef = self.coxnet.coef_[:, -1]
        out |= {
            "l1_ratio": self.l1_ratio_,
            "alpha": self.alpha_,
            "cv_c_index": self.cv_c_index_,
            "n_features": len(self.columns_),
            "n_nonzero": self.n_nonzero_,
            "coefficients": {
                name: float(c) for name, c in zip(self.columns_, coef, strict=True) if c != 0
            },
            "cv": {
                "n_samples": int(sum(f["n_val"] for f in self.cv_folds_)),
                "folds": self.cv_folds_,
                "table": self.cv_results_.to_dict(orient="records"),
            },
        }
        return out
