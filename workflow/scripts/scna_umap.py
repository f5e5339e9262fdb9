"""Rule adapter: the UMAP of all SCNA samples by subtype (see mmsurv.stages.run_scna_umap)."""

from mmsurv._logging import log_to_file
from mmsurv.stages import run_scna_umap

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_scna_umap(sm.config, sm.input.scna, sm.output.png, sm.output.tsv)
