"""Rule adapter: tile one slide (see mmsurv.stages.run_tile)."""

import json

from mmsurv._logging import log_to_file
from mmsurv.stages import run_tile

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    slide = json.loads(sm.params.slide)
    run_tile(
        sm.config,
        sm.wildcards.slide,
        slide["path"],
        slide["mpp"],
        sm.output.tiles,
        sm.output.thumbnail,
    )
