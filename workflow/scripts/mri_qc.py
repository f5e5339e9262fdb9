"""Rule adapter: the MRI QC table (see mmsurv.stages.run_mri_qc)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_mri_qc

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_mri_qc(list(sm.input.records), sm.output[0])
