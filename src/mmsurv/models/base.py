"""The interface every survival model implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

__all__ = ["SurvivalModel", "step_survival"]


class SurvivalModel(ABC):
    """A survival model fitted on one fold's training patients.

    Subclasses take their parameters as keyword arguments; the experiment's ``inputs`` say
    which modalities a patient needs to be included. Everything fitted on data (imputation,
    scaling, encodings) is fitted in :meth:`fit` on the training patients only and stored on
    the instance, so the pickled model carries its own preprocessing.
    """

    #: Parameters whose value is itself a list (an experiment's list of lists is their grid).
    list_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, seed: int = 0, threads: int = 1) -> None:
        self.seed = seed
        self.threads = threads
        #: the experiment-level parameters this instance was built with (for the training log)
        self.params: dict[str, Any] = {}

    @abstractmethod
    def fit(self, X: pd.DataFrame, time: np.ndarray, event: np.ndarray) -> Self:
        """Fit on ``X`` (patients x inputs), ``time`` (days, shape (n,)) and ``event`` (0/1)."""

    @abstractmethod
    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Risk per patient, shape (n,); higher means worse prognosis."""

    @abstractmethod
    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival probabilities S(t | x), shape (n, len(times)), for ``times`` in days."""

    def describe(self) -> dict[str, Any]:
        """Parameters and fitted facts worth writing to the training log."""
        return {"params": self.params}


def step_survival(event_times: np.ndarray, surv: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Evaluate right-continuous step survival curves at ``times``.

    Parameters
    ----------
    event_times
        Sorted times (days) at which the curves jump, shape (m,).
    surv
        Survival at each of ``event_times``, shape (n, m).
    times
        Query times (days), shape (k,).

    Returns
    -------
    Shape (n, k): 1 before the first jump, the last value after the last one.
    """
    idx = np.searchsorted(event_times, times, side="right") - 1
    out = np.ones((surv.shape[0], len(times)))
    inside = idx >= 0
    out[:, inside] = surv[:, idx[inside]]
    return out
