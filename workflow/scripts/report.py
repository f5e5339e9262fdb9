"""Rule adapter: the study report (see mmsurv.stages.run_report)."""

from pathlib import Path

from mmsurv._logging import log_to_file
from mmsurv.stages import run_report

sm = snakemake  # noqa: F821 - injected by Snakemake
with log_to_file(sm.log[0]):
    run_report(
        sm.config,
        cohort=sm.input.cohort,
        metrics=list(sm.input.metrics),
        km=dict(zip(sm.params.experiments, sm.input.km, strict=True)),
        splits=dict(zip(sm.params.endpoints, sm.input.splits, strict=True)),
        excluded=sm.params.excluded,
        out_metrics=sm.output.metrics,
        out_html=sm.output.html,
        out_forest=sm.output.forest,
        curves=dict(zip(sm.params.neural, sm.input.curves, strict=True)),
        attention=dict(zip(sm.params.attention, sm.input.attention, strict=True)),
        features=dict(zip(sm.params.encoders, sm.input.features, strict=True)),
        wsi_qc=sm.input.wsi_qc[0] if sm.input.wsi_qc else None,
        calibration=dict(zip(sm.params.experiments, sm.input.calibration, strict=True)),
        roc=dict(zip(sm.params.experiments, sm.input.roc, strict=True)),
        gradcam=dict(zip(sm.params.gradcam, sm.input.gradcam, strict=True)),
        mri_qc=sm.input.mri_qc[0] if sm.input.mri_qc else None,
        subgroups=list(sm.input.subgroups),
        scna_umap=sm.input.scna_umap[0] if sm.input.scna_umap else None,
        attributions=dict(zip(sm.params.classifiers, sm.input.attributions, strict=True)),
        signatures={
            e: str(Path(t).parent)
            for e, t in zip(sm.params.signatures, sm.input.signatures, strict=True)
        },
        dti_cam=dict(zip(sm.params.dti_cam, sm.input.dti_cam, strict=True)),
        dti_qc=sm.input.dti_qc[0] if sm.input.dti_qc else None,
        record=sm.input.record,
    )
