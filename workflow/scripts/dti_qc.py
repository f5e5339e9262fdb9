"""Rule adapter: the DTI QC table (see mmsurv.stages.run_dti_qc)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_dti_qc

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_dti_qc(list(sm.input.records), sm.output[0])
