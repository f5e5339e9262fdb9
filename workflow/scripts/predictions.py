"""Rule adapter: gather an experiment's folds (see mmsurv.stages.run_collect)."""

from pathlib import Path

from mmsurv._logging import log_to_file
from mmsurv.stages import run_collect

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_collect([Path(p).parent for p in sm.input], sm.output.predictions, sm.output.survival)
