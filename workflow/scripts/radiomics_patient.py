"""Rule adapter: radiomics of one patient (see mmsurv.stages.run_radiomics_patient)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_radiomics_patient

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_radiomics_patient(sm.config, sm.wildcards.patient, sm.input.record, sm.output[0])
