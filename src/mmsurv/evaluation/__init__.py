"""Evaluation: survival metrics (lifelines, scikit-survival), risk groups, Kaplan-Meier,
calibration and time-dependent ROC figures."""

from mmsurv.evaluation.calibration import calibration_table
from mmsurv.evaluation.evaluate import METRIC_COLUMNS, evaluate_experiment
from mmsurv.evaluation.plots import plot_calibration, plot_roc, write_diagnostics
from mmsurv.evaluation.risk_groups import assign_risk_groups, logrank_p, plot_km
from mmsurv.evaluation.roc import auc_over_time, roc_at
from mmsurv.evaluation.subgroups import SUBGROUP_COLUMNS, subgroup_metrics

__all__ = [
    "METRIC_COLUMNS",
    "evaluate_experiment",
    "assign_risk_groups",
    "logrank_p",
    "plot_km",
    "calibration_table",
    "roc_at",
    "auc_over_time",
    "plot_calibration",
    "plot_roc",
    "write_diagnostics",
    "SUBGROUP_COLUMNS",
    "subgroup_metrics",
]
