"""Rule adapter: Grad-CAM or integrated-gradients maps of one experiment (see
mmsurv.stages.run_gradcam)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_gradcam

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_gradcam(
        sm.config,
        sm.wildcards.experiment,
        model=sm.input.model,
        predictions=sm.input.predictions,
        records=list(sm.input.mri),
        out=sm.output[0],
        scna=sm.input.get("scna"),
    )
