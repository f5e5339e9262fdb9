"""Rule adapter: splits stage (see mmsurv.stages.run_splits)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_splits

with log_to_file(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    run_splits(snakemake.config, snakemake.wildcards.endpoint, snakemake.output[0])  # noqa: F821
