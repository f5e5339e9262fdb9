"""Rule adapter: patch features of one slide (see mmsurv.stages.run_extract)."""

import json

from mmsurv._logging import log_to_file
from mmsurv.stages import run_extract

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    slide = json.loads(sm.params.slide)
    run_extract(
        sm.config,
        sm.wildcards.encoder,
        sm.wildcards.slide,
        slide["path"],
        slide["mpp"],
        sm.input.tiles,
        sm.output[0],
    )
