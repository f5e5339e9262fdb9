"""Rule adapter: the seed-4 analysis of one signature (see mmsurv.stages.run_signature)."""

import json

from mmsurv._logging import log_to_file
from mmsurv.stages import run_signature

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_signature(
        sm.config,
        sm.wildcards.experiment,
        predictions=sm.input.predictions,
        variables=json.loads(sm.params.variables),
        outputs=dict(sm.output.items()),
    )
