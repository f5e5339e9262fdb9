"""Cohort stage: input sheets and matrices, validation, patient x modality table."""

from mmsurv.cohort.build import build_cohort, load_samples
from mmsurv.cohort.matrices import map_samples, patient_of, read_matrix
from mmsurv.cohort.problems import CohortError, Problem
from mmsurv.cohort.splits import make_splits

__all__ = [
    "build_cohort",
    "load_samples",
    "CohortError",
    "Problem",
    "patient_of",
    "map_samples",
    "read_matrix",
    "make_splits",
]
