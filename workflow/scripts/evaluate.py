"""Rule adapter: metrics, Kaplan-Meier, calibration and ROC figures of one experiment (see
mmsurv.stages.run_evaluate)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_evaluate

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_evaluate(
        sm.config,
        sm.wildcards.experiment,
        sm.input.predictions,
        sm.input.survival,
        sm.output.metrics,
        sm.output.km,
        out_calibration=sm.output.calibration,
        out_roc=sm.output.roc,
        out_subgroups=sm.output.subgroups,
    )
