"""Rule adapter: the run's reproducibility record (see mmsurv.provenance.write_record)."""

from mmsurv._logging import log_to_file
from mmsurv.provenance import invocation_from_env, write_record

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    write_record(
        sm.config,
        sm.scriptdir,  # inside the workflow's checkout: its git commit is recorded
        out_config=sm.output.config,
        out_json=sm.output.record,
        invocation=invocation_from_env(),
    )
