"""Rule adapter: Grad-CAM maps of a DTI network (see mmsurv.stages.run_dti_cam)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_dti_cam

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_dti_cam(
        sm.config,
        sm.wildcards.experiment,
        model=sm.input.model,
        predictions=sm.input.predictions,
        records=list(sm.input.dti),
        out=sm.output[0],
    )
