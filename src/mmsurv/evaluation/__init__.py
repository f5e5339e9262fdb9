"""Evaluation: survival metrics (lifelines, scikit-survival), risk groups, Kaplan-Meier plots."""

from mmsurv.evaluation.evaluate import METRIC_COLUMNS, evaluate_experiment
from mmsurv.evaluation.risk_groups import assign_risk_groups, logrank_p, plot_km

__all__ = ["METRIC_COLUMNS", "evaluate_experiment", "assign_risk_groups", "logrank_p", "plot_km"]
