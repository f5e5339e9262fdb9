"""Survival models, their registry and the per-fold training job."""

from mmsurv.models.base import SurvivalModel
from mmsurv.models.registry import MODALITIES, MODELS, get_model

__all__ = ["SurvivalModel", "MODELS", "MODALITIES", "get_model"]
