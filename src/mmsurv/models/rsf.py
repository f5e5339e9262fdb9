"""Random survival forest on tabular inputs (scikit-survival)."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from mmsurv.models.base import SurvivalModel, step_survival
from mmsurv.models.tabular import TabularPreprocessor

__all__ = ["RandomSurvivalForestModel"]


class RandomSurvivalForestModel(SurvivalModel):
    """scikit-survival ``RandomSurvivalForest`` after training-fitted preprocessing.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    n_estimators : int, default 300
    min_samples_leaf : int, default 10
    min_samples_split : int, default 20
    max_features : str | int | float, default "sqrt"
    """

    def __init__(
        self,
        *,
        numeric: list[str],
        categorical: list[str],
        n_estimators: int = 300,
        min_samples_leaf: int = 10,
        min_samples_split: int = 20,
        max_features: str | int | float = "sqrt",
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        self.params = {
            "n_estimators": n_estimators,
            "min_samples_leaf": min_samples_leaf,
            "min_samples_split": min_samples_split,
            "max_features": max_features,
        }
        self.prep = TabularPreprocessor(numeric, categorical, drop_first=False)
        self.forest = RandomSurvivalForest(
            n_estimators=n_estimators,
            min_samples_leaf=min_samples_leaf,
            min_samples_split=min_samples_split,
            max_features=max_features,
            n_jobs=self.threads,
            random_state=self.seed,
        )

    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> Self:
        y = Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))
        self.forest.fit(self.prep.fit_transform(X).to_numpy(), y)
        return self

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.forest.predict(self.prep.transform(X).to_numpy()), dtype=float)

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        surv = self.forest.predict_survival_function(
            self.prep.transform(X).to_numpy(), return_array=True
        )
        return step_survival(self.forest.unique_times_, surv, np.asarray(times, float))
