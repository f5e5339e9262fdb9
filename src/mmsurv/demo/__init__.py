"""Synthetic multimodal glioma cohort with a known hazard model (``mmsurv demo``).

>>> from mmsurv.demo import make_demo_cohort
>>> config_path = make_demo_cohort("resources/demo", preset="smoke", seed=0)  # doctest: +SKIP

writes the sheets (``samples.tsv``, ``slides.tsv``, ``images.tsv``), the omics matrices
(``rna.tsv``, ``scna.tsv``, ``gene_sets.gmt``), pyramidal TIFF slides, NIfTI MRI/DTI volumes,
the true risk of every patient (``truth.tsv``) and a ``config.yaml`` usable with
``snakemake --configfile``. See ``docs/demo_cohort.md`` for the hazard model and
:mod:`mmsurv.demo.oracle` (``python -m mmsurv.demo.oracle DIR``) for the oracle C-index.
"""

from .generate import ID_PATTERN, make_demo_cohort
from .presets import PRESETS, DemoPreset, get_preset

__all__ = [
    "make_demo_cohort",
    "PRESETS",
    "DemoPreset",
    "get_preset",
    "ID_PATTERN",
]
