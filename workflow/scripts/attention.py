"""Rule adapter: attention heatmaps of one experiment (see mmsurv.stages.run_attention)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_attention

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_attention(
        sm.config,
        sm.wildcards.experiment,
        model=sm.input.model,
        predictions=sm.input.predictions,
        features=list(sm.input.features),
        rna=sm.input.get("rna"),
        out=sm.output[0],
    )
