"""Rule adapter: preprocess one patient's MRI (see mmsurv.stages.run_mri_preprocess)."""

import json
from pathlib import Path

from mmsurv._logging import log_to_file
from mmsurv.stages import run_mri_preprocess

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_mri_preprocess(
        sm.config,
        sm.wildcards.patient,
        json.loads(sm.params.files),
        Path(sm.output.record).parent,
        sm.output.montage,
        segmenter=sm.input.get("segmenter"),
    )
