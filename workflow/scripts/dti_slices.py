"""Rule adapter: one patient's DTI slices (see mmsurv.stages.run_dti_slices)."""

import json

from mmsurv._logging import log_to_file
from mmsurv.stages import run_dti_slices

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_dti_slices(
        sm.config,
        sm.wildcards.patient,
        files=json.loads(sm.params.files),
        outputs=dict(sm.output.items()),
        mri_mask=sm.input.get("mri_mask"),
        mri_record=sm.input.get("mri_record"),
    )
