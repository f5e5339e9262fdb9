"""Cox model on principal components of copy number: the seed-2 SCNA-only baseline."""

from __future__ import annotations

import logging
from typing import Any, Self

import numpy as np
import pandas as pd

from mmsurv.models.base import SurvivalModel
from mmsurv.models.coxph import CoxPHModel
from mmsurv.omics.scna import ScnaPCA, scna_frame

__all__ = ["SCNACoxModel"]

log = logging.getLogger(__name__)


class SCNACoxModel(SurvivalModel):
    """Penalised Cox model on the first SCNA principal components (``scna_coxph``).

    Nuechterlein et al. (seed 2, Table II "SCNA (PCA = 5)") fit a linear Cox model on 5
    principal components of gene-level copy number. Here :class:`~mmsurv.omics.scna.ScnaPCA`
    is fitted on the training patients, plus, with ``pca_extra``, the SCNA samples of patients
    in no split (the paper's PCA used every non-validation sample, SCNA-only patients
    included; they carry no outcome and are never scored). Validation and test patients never
    reach :meth:`fit`. The components are z-scored on the training patients and fitted with
    :class:`~mmsurv.models.coxph.CoxPHModel` (lifelines). ``X`` has ``scna:{gene}`` columns,
    one row per patient (index ``patient_id``).

    Parameters (``params`` of an experiment)
    ----------------------------------------
    n_components : int, default 5
        Principal components used (seed 2: 5), capped by the PCA's samples and genes.
    penalizer : float, default 0.1
        lifelines' ridge penalty on the z-scored components.
    pca_extra : bool, default False
        Fit the PCA on the training patients and the SCNA-only ``extra`` samples (seed 2's
        choice) instead of on the training patients alone.
    """

    def __init__(
        self,
        *,
        n_components: int = 5,
        penalizer: float = 0.1,
        pca_extra: bool = False,
        seed: int = 0,
        threads: int = 1,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.params = {
            "n_components": int(n_components),
            "penalizer": float(penalizer),
            "pca_extra": bool(pca_extra),
        }
        self.n_components = int(n_components)
        self.penalizer = float(penalizer)
        self.pca_extra = bool(pca_extra)

    def fit(
        self,
        X: pd.DataFrame,
        time: np.ndarray,
        event: np.ndarray,
        extra: pd.DataFrame | None = None,
    ) -> Self:
        """Fit the PCA, then the Cox model on the training patients' components.

        Parameters
        ----------
        X
            Training patients, n rows (index ``patient_id``), with ``scna:{gene}`` columns.
        time
            Event or censoring time (days), shape (n,).
        event
            1 event, 0 censored, shape (n,).
        extra
            SCNA samples of patients in no split (same ``scna:`` columns, index patient id),
            used by the PCA only and only with ``pca_extra``; ignored otherwise.

        Raises
        ------
        ValueError
            When an ``extra`` patient is also a training patient, or inputs lack SCNA.
        """
        train = scna_frame(X)
        train.index = train.index.astype(str)
        pca_rows = train
        self.n_pca_extra_ = 0
        if self.pca_extra and extra is not None and len(extra):
            more = scna_frame(extra)
            more.index = more.index.astype(str)
            overlap = more.index.intersection(train.index)
            if len(overlap):
                raise ValueError(
                    f"{len(overlap)} extra SCNA patient(s) are training patients "
                    f"({', '.join(overlap[:5])}); extra must hold patients in no split"
                )
            pca_rows = pd.concat([train, more[train.columns]], axis=0)
            self.n_pca_extra_ = len(more)
        self.pca_ = ScnaPCA(n_components=self.n_components, seed=self.seed).fit(pca_rows)
        log.info(
            "SCNA Cox: PCA on %d sample(s) (%d training, %d in no split), %d component(s)",
            len(pca_rows),
            len(train),
            self.n_pca_extra_,
            self.pca_.n_components_,
        )
        names = self.pca_.component_names
        self.cox_ = CoxPHModel(
            numeric=names, categorical=[], penalizer=self.penalizer, seed=self.seed
        )
        self.cox_.fit(self._components(X), time, event)
        return self

    def _components(self, X: pd.DataFrame) -> pd.DataFrame:
        """The fitted PCA's components of ``X``, shape (n, n_components_), index of ``X``."""
        pcs = self.pca_.transform(scna_frame(X))
        return pd.DataFrame(pcs, index=X.index, columns=self.pca_.component_names)

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Log partial hazard per patient, shape (n,); higher means worse prognosis."""
        return self.cox_.predict_risk(self._components(X))

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival S(t | x) at ``times`` (days), shape (n, len(times))."""
        return self.cox_.predict_survival(self._components(X), times)

    def describe(self) -> dict[str, Any]:
        """Parameters, the PCA's samples and variance, and the Cox coefficients."""
        out: dict[str, Any] = {"params": self.params}
        if hasattr(self, "cox_"):
            out |= self.cox_.describe()
            out["params"] = self.params
            out |= {
                "n_pca_samples": len(self.pca_.fitted_ids_),
                "n_pca_extra": int(self.n_pca_extra_),
                "n_components": int(self.pca_.n_components_),
                "explained_variance_ratio": [
                    round(float(v), 4) for v in self.pca_.explained_variance_ratio_
                ],
            }
        return out
