"""Preprocessing of tabular (clinical) inputs, fitted on training patients only."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

__all__ = ["TabularPreprocessor"]

log = logging.getLogger(__name__)


class TabularPreprocessor:
    """Median imputation + z-scoring of numeric columns; mode imputation + one-hot of categorical.

    Parameters
    ----------
    numeric, categorical
        Column names of the input frame.
    drop_first
        Drop one level per categorical variable (needed for an unpenalised Cox model, whose
        design would otherwise be collinear; harmless with a penalty).
    """

    def __init__(self, numeric: list[str], categorical: list[str], drop_first: bool) -> None:
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.drop_first = drop_first
        parts = []
        if self.numeric:
            parts.append(
                (
                    "num",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    self.numeric,
                )
            )
        if self.categorical:
            encoder = OneHotEncoder(
                drop="first" if drop_first else None,
                handle_unknown="ignore",
                sparse_output=False,
            )
            parts.append(
                (
                    "cat",
                    make_pipeline(SimpleImputer(strategy="most_frequent"), encoder),
                    self.categorical,
                )
            )
        self._transformer = ColumnTransformer(parts, verbose_feature_names_out=False)

    def _prepare(self, X: pd.DataFrame) -> pd.DataFrame:
        X = X[self.numeric + self.categorical].copy()
        for col in self.numeric:
            X[col] = pd.to_numeric(X[col], errors="coerce").astype(float)
        for col in self.categorical:
            X[col] = (
                X[col]
                .astype(object)
                .where(X[col].notna(), np.nan)
                .map(lambda v: v if isinstance(v, float) and np.isnan(v) else str(v))
            )
        return X

    def fit_transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Fit on training patients and return the design matrix (patients x features)."""
        prepared = self._prepare(X)
        out = self._transformer.fit_transform(prepared)
        return pd.DataFrame(out, index=X.index, columns=self.feature_names)

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Apply the training-fitted preprocessing (a category unseen in training -> all zeros,
        logged)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = self._transformer.transform(self._prepare(X))
        for w in caught:
            log.warning("clinical preprocessing: %s", w.message)
        return pd.DataFrame(out, index=X.index, columns=self.feature_names)

    @property
    def feature_names(self) -> list[str]:
        """Names of the design-matrix columns (after fitting)."""
        return [str(n) for n in self._transformer.get_feature_names_out()]
