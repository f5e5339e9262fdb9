"""Rule adapter: the cleaned SCNA matrix (see mmsurv.stages.run_scna)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_scna

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_scna(sm.config, sm.output[0])
