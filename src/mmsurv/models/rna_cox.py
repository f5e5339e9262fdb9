"""Elastic-net Cox model on RNA-seq (scikit-survival ``CoxnetSurvivalAnalysis``)."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Self

import numpy as np
import pandas as pd
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.util import Surv

from mmsurv.models.base import SurvivalModel, step_survival
from mmsurv.omics.rna import RNAPreprocessor, rna_frame

__all__ = ["RNACoxnetModel"]

log = logging.getLogger(__name__)


class RNACoxnetModel(SurvivalModel):
    """Penalised Cox baseline on RNA (``rna_coxnet``).

    :class:`~mmsurv.omics.rna.RNAPreprocessor` (gene filter, scanpy highly-variable selection,
    z-scoring; fitted on the training patients) followed by scikit-survival's elastic-net Cox
    model at one penalty ``alpha`` (``alphas=[alpha]``; a grid of values is the training job's
    validation search) with a Breslow baseline for survival curves. ``X`` has ``patient_id``
    and ``rna:{gene}`` columns, one row per patient (rows sharing a patient are fitted once
    in the preprocessing statistics, but every row enters the Cox fit).

    Parameters (``params`` of an experiment; all defaults ours)
    -----------------------------------------------------------
    n_top_genes : int, default 500
    min_expression : float, default 1.0
    min_fraction : float, default 0.2
        Gene filter and selection.
    alpha : float, default 0.05
        Penalty strength (on z-scored genes).
    l1_ratio : float, default 0.5
        Elastic-net mix (1 lasso; must be > 0 for scikit-survival).
    """

    def __init__(
        self,
        *,
        n_top_genes: int = 500,
        min_expression: float = 1.0,
        min_fraction: float = 0.2,
        alpha: float = 0.05,
        l1_ratio: float = 0.5,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        if alpha <= 0 or not 0 < l1_ratio <= 1:
            raise ValueError(f"need alpha > 0 and 0 < l1_ratio <= 1, got {alpha}, {l1_ratio}")
        self.params = {
            "n_top_genes": n_top_genes,
            "min_expression": min_expression,
            "min_fraction": min_fraction,
            "alpha": alpha,
            "l1_ratio": l1_ratio,
        }
        self.rna_prep = RNAPreprocessor(
            n_top_genes=n_top_genes, min_expression=min_expression, min_fraction=min_fraction
        )
        self.coxnet = CoxnetSurvivalAnalysis(
            alphas=[float(alpha)], l1_ratio=float(l1_ratio), fit_baseline_model=True
        )

    def fit(
        self,
        X: pd.DataFrame,
        time: np.ndarray,
        event: np.ndarray,
        *,
        validation: tuple[pd.DataFrame, np.ndarray, np.ndarray] | None = None,
    ) -> Self:
        """Fit on the training patients; ``validation`` is accepted and not used.

        Parameters
        ----------
        X
            Training units, n rows, with ``rna:{gene}`` columns (logged expression).
        time
            Event or censoring time (days), shape (n,).
        event
            1 event, 0 censored, shape (n,).
        validation
            Ignored (the penalty is fixed; the job chooses among candidates).
        """
        frame = rna_frame(X)
        pids = X["patient_id"].astype(str).to_numpy() if "patient_id" in X else None
        design = self.rna_prep.fit_transform(frame, patient_ids=pids)
        y = Surv.from_arrays(event=np.asarray(event, bool), time=np.asarray(time, float))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.coxnet.fit(design, y)
        for w in caught:
            log.warning("scikit-survival Coxnet: %s", w.message)
        coef = self.coxnet.coef_[:, 0]
        self.n_nonzero_ = int(np.count_nonzero(coef))
        log.info("Coxnet: %d of %d genes with a non-zero coefficient", self.n_nonzero_, len(coef))
        return self

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        return self.rna_prep.transform(rna_frame(X))

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Linear predictor per unit, shape (n,); higher means worse prognosis."""
        return np.asarray(self.coxnet.predict(self._design(X)), dtype=float)

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival at ``times`` (days), shape (n, len(times)), from the Breslow baseline."""
        fns = self.coxnet.predict_survival_function(self._design(X))
        if len(fns) == 0:
            return np.empty((0, len(times)))
        surv = np.vstack([fn.a * fn.y + fn.b for fn in fns])
        return step_survival(fns[0].x, surv, np.asarray(times, dtype=float))

    def describe(self) -> dict[str, Any]:
        """Parameters, kept genes and their non-zero coefficients."""
        out: dict[str, Any] = {"params": self.params}
        if hasattr(self, "n_nonzero_"):
            coef = self.coxnet.coef_[:, 0]
            out |= {
                "n_genes": len(self.rna_prep.genes_),
                "n_nonzero": self.n_nonzero_,
                "coefficients": {
                    g: float(c) for g, c in zip(self.rna_prep.genes_, coef, strict=True) if c != 0
                },
            }
        return out
