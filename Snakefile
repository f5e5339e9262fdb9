# mmsurv: multimodal cancer survival prediction, staged and reproducible.
# Table of contents; every stage lives in workflow/rules/<stage>.smk, helpers in common.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/wsi.smk"
include: "workflow/rules/mri.smk"
include: "workflow/rules/dti.smk"
include: "workflow/rules/omics.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/signature.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/record.smk"


rule all:
    default_target: True
    input:
        all_targets(),
