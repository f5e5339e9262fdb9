"""Rule adapter: the radiogenomics of one signature (see mmsurv.stages.run_radiogenomics)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_radiogenomics

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_radiogenomics(
        sm.config,
        sm.wildcards.experiment,
        groups=sm.input.groups,
        rna=sm.input.rna,
        outputs=dict(sm.output.items()),
    )
