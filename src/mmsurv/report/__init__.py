"""The study report: comparison tables, oracle columns and figures in one HTML page."""

from mmsurv.report.build import oracle_by_modality, render_report, summarise_split
from mmsurv.report.figures import plot_c_index_forest

__all__ = ["render_report", "summarise_split", "oracle_by_modality", "plot_c_index_forest"]
