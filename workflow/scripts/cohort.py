"""Rule adapter: cohort stage (see mmsurv.stages.run_cohort)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_cohort

with log_to_file(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_cohort(snakemake.config, snakemake.output[0])  # noqa: F821
