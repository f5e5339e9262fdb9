"""Rule adapter: provenance table of one encoder's feature files."""

from mmsurv._logging import log_to_file
from mmsurv.io import write_tsv
from mmsurv.report.networks import features_provenance

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    write_tsv(features_provenance(list(sm.input)), sm.output[0])
