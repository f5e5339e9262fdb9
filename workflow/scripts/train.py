"""Rule adapter: one (experiment, fold) training job (see mmsurv.stages.run_train)."""

from pathlib import Path

from mmsurv._logging import log_to_file
from mmsurv.stages import run_train

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_train(
        sm.config,
        sm.wildcards.experiment,
        int(sm.wildcards.fold),
        cohort=sm.input.cohort,
        splits={k.removeprefix("split_"): v for k, v in sm.input.items() if k.startswith("split_")},
        out_dir=Path(sm.output.model).parent,
        threads=sm.threads,
        features=list(sm.input.get("features", [])),
        rna=sm.input.get("rna"),
        mri=list(sm.input.get("mri", [])),
        radiomics=sm.input.get("radiomics"),
        scna=sm.input.get("scna"),
        dti=list(sm.input.get("dti", [])),
    )
