"""Registry of survival models: name -> class, imported lazily.

Adding a model is one module defining a :class:`~mmsurv.models.base.SurvivalModel` subclass
plus one line in ``MODELS``. The module is only imported when an experiment uses it, so
``mmsurv`` stays cheap to import (the workflow reads this registry when it parses).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmsurv.models.base import SurvivalModel

__all__ = [
    "MODELS",
    "MODALITIES",
    "NEURAL_MODELS",
    "ATTENTION_MODELS",
    "GRADCAM_MODELS",
    "DTI_CAM_MODELS",
    "CLASSIFIER_MODELS",
    "DENSENET_MODELS",
    "get_model",
    "tunable_parameters",
]

#: Inputs an experiment can name: the modalities (columns of results/cohort/cohort.tsv) and
#: ``radiomics`` (features of the MRI; see ``mmsurv.plan.INPUT_MODALITY``).
MODALITIES = ("clinical", "wsi", "mri", "radiomics", "dti", "rna", "scna")

#: Model name -> "module:Class".
MODELS: dict[str, str] = {
    "coxph": "mmsurv.models.coxph:CoxPHModel",
    "rsf": "mmsurv.models.rsf:RandomSurvivalForestModel",
    "rna_coxnet": "mmsurv.models.rna_cox:RNACoxnetModel",
    "rna_mlp": "mmsurv.models.mil:RNAMLPModel",
    "wsi_abmil": "mmsurv.models.mil:ABMILModel",
    "wsi_rna_average": "mmsurv.models.mil:AverageFusionModel",
    "wsi_rna_xattn": "mmsurv.models.mil:CrossAttentionModel",
    "coxnet": "mmsurv.models.coxnet:CoxnetModel",
    "mri_densenet": "mmsurv.models.mri_model:MRIDenseNetModel",
    "mri_clinical_mmnn": "mmsurv.models.mri_model:MRIClinicalMMNNModel",
    "scna_coxph": "mmsurv.models.scna_cox:SCNACoxModel",
    "mri_cnn": "mmsurv.models.mtl_model:MRICNNModel",
    "mri_mtl": "mmsurv.models.mtl_model:MRIMTLModel",
    "mri_scna_mtl": "mmsurv.models.mtl_model:MRISCNAMTLModel",
    "dti_dls": "mmsurv.models.dti_model:DTIDLSModel",
}

#: Models that are neural networks trained with torch: their jobs request a GPU when
#: ``device: cuda`` and their training curves are plotted.
NEURAL_MODELS = frozenset(
    {
        "rna_mlp",
        "wsi_abmil",
        "wsi_rna_average",
        "wsi_rna_xattn",
        "mri_densenet",
        "mri_clinical_mmnn",
        "mri_cnn",
        "mri_mtl",
        "mri_scna_mtl",
        "dti_dls",
    }
)

#: Models with attention over patches (``predict_attention``): heatmaps in the report.
ATTENTION_MODELS = frozenset({"wsi_abmil", "wsi_rna_xattn"})

#: 3D image networks with ``grad_cam``: Grad-CAM maps of test patients in the report.
GRADCAM_MODELS = frozenset({"mri_densenet", "mri_clinical_mmnn"})

#: 2D DTI networks with ``grad_cam`` over the 16-slice input: class-activation maps of test
#: patients in the report (seed 4).
DTI_CAM_MODELS = frozenset({"dti_dls"})

#: 3D DenseNet-121 models (their input must have at least ``config.MIN_NETWORK_CROP`` voxels
#: per axis).
DENSENET_MODELS = frozenset({"mri_densenet", "mri_clinical_mmnn"})

#: Classification models (seed 2): an experiment names its binary ``label``; they predict a
#: ``score`` (probability of label 1, ``predict_score``) besides the survival risk of a Cox
#: model on their embeddings, and ``integrated_gradients`` maps are drawn in the report.
CLASSIFIER_MODELS = frozenset({"mri_cnn", "mri_mtl", "mri_scna_mtl"})


def get_model(name: str) -> type[SurvivalModel]:
    """The model class registered as ``name``."""
    try:
        module, cls = MODELS[name].split(":")
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(MODELS)}") from None
    return getattr(importlib.import_module(module), cls)


#: Constructor arguments the training job supplies itself (not experiment parameters).
_SUPPLIED = {"self", "numeric", "categorical", "channels", "seed", "threads", "device"}


@cache
def _declared_keywords(name: str) -> tuple[str, ...] | None:
    """The keyword names of model ``name``'s own ``__init__``, read from its source file
    without importing it (the modules import torch, MONAI, lifelines: seconds, paid by every
    Snakemake process that parses the workflow, SLURM jobs included). None when the class does
    not define ``__init__`` itself with plain arguments (then it must be imported)."""
    module, cls = MODELS[name].split(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    tree = ast.parse(Path(spec.origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    if args.vararg or args.kwarg:
                        return None
                    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                    return tuple(a.arg for a in every)
    return None


def tunable_parameters(name: str) -> list[str]:
    """The parameters an experiment may set for model ``name`` (its constructor's keywords).

    Read from the model's source when it defines ``__init__`` itself (no import); otherwise
    from the imported class's signature."""
    if name not in MODELS:
        get_model(name)  # the KeyError naming the known models
    keywords = _declared_keywords(name)
    if keywords is None:
        keywords = tuple(inspect.signature(get_model(name).__init__).parameters)
    return [p for p in keywords if p not in _SUPPLIED]
