"""Rule adapter: the weak-label segmentation network (see mmsurv.stages.run_mri_segmenter)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_mri_segmenter

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_mri_segmenter(
        sm.config, list(sm.input.records), sm.output.model, sm.output.log, threads=sm.threads
    )
