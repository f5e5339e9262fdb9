"""Rule adapter: training curves of a network (see mmsurv.report.networks)."""

from mmsurv._logging import log_to_file
from mmsurv.report.networks import plot_training_curves

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    plot_training_curves(list(sm.input), sm.output[0])
