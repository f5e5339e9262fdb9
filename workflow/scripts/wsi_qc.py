"""Rule adapter: the WSI QC table (see mmsurv.stages.run_wsi_qc)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_wsi_qc

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_wsi_qc(sm.config, list(sm.input.tiles), sm.output[0])
