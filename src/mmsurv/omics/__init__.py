"""Omics inputs: per-sample normalisation of expression matrices and training-fitted gene
selection and scaling."""

from mmsurv.omics.rna import RNA_PREFIX, RNAPreprocessor, log_normalise, rna_frame

__all__ = ["RNA_PREFIX", "RNAPreprocessor", "log_normalise", "rna_frame"]
