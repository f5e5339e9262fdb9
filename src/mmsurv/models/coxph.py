"""Cox proportional hazards on tabular inputs (lifelines)."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Self

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from mmsurv.models.base import SurvivalModel
from mmsurv.models.tabular import TabularPreprocessor

__all__ = ["CoxPHModel"]

log = logging.getLogger(__name__)


class CoxPHModel(SurvivalModel):
    """Penalised Cox model (lifelines ``CoxPHFitter``) after training-fitted preprocessing.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    penalizer : float, default 0.1
        Strength of the coefficient penalty (lifelines' ``penalizer``).
    l1_ratio : float, default 0.0
        Elastic-net mix (0 ridge, 1 lasso).
    """

    def __init__(
        self,
        *,
        numeric: list[str],
        categorical: list[str],
        penalizer: float = 0.1,
        l1_ratio: float = 0.0,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.params = {"penalizer": penalizer, "l1_ratio": l1_ratio}
        self.prep = TabularPreprocessor(numeric, categorical, drop_first=True)
        self.fitter = CoxPHFitter(penalizer=penalizer, l1_ratio=l1_ratio)

    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> Self:
        design = self.prep.fit_transform(X)
        design = design.loc[:, design.std(ddof=0) > 0]  # a level absent from training
        self.columns_ = list(design.columns)
        frame = design.assign(_time=np.asarray(time, float), _event=np.asarray(event, int))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.fitter.fit(frame, duration_col="_time", event_col="_event")
        for w in caught:
            log.warning("lifelines: %s", w.message)
        return self

    def _design(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.prep.transform(X)[self.columns_]

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.fitter.predict_log_partial_hazard(self._design(X)), dtype=float)

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        sf = self.fitter.predict_survival_function(self._design(X), times=times)
        return sf.to_numpy().T

    def describe(self) -> dict[str, Any]:
        summary = self.fitter.summary[["coef", "exp(coef)", "p"]]
        return {
            "params": self.params,
            "coefficients": {
                name: {k: float(v) for k, v in row.items()} for name, row in summary.iterrows()
            },
            "log_likelihood": float(self.fitter.log_likelihood_),
        }
