"""Rule adapter: the cleaned RNA matrix (see mmsurv.stages.run_rna)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_rna

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_rna(sm.config, sm.output[0])
