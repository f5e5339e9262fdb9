"""Rule adapter: merge the patients' radiomics rows (see mmsurv.stages.run_radiomics)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_radiomics

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_radiomics(list(sm.input), sm.output[0])
