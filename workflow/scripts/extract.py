"""Rule adapter: patch features of one slide (see mmsurv.stages.run_extract)."""

import json
import os

# OpenMP threads that sleep instead of spinning leave the cores to the tile-reading workers
# (measured +6% pipeline throughput on 2 CPU cores; docs/benchmarks.md). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mmsurv._logging import log_to_file  # noqa: E402
from mmsurv.stages import run_extract  # noqa: E402

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
        threads=sm.threads,
    )
