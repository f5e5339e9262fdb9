"""Orchestration: draw the cohort, write every file and the config that points at them."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mmsurv.io import write_tsv

from . import omics
from ._util import progress, rng_for
from .clinical import make_samples
from .genome import make_genome
from .hazard import COMPONENTS, draw_survival, risk_components, total_risk
from .presets import DemoPreset, get_preset
from .slides import plan_slides, slides_sheet, write_slide
from .traits import draw_traits
from .volumes import images_sheet, plan_volumes, write_study

__all__ = ["make_demo_cohort", "ID_PATTERN"]

_log = logging.getLogger("mmsurv.demo")

#: Regular expression mapping a sample barcode or file id to its patient.
ID_PATTERN = "^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})"
_RNA_MISSING, _SCNA_MISSING = 0.15, 0.05


def _pick_present(n: int, missing: float, seed: int, stream: str) -> np.ndarray:
    """Boolean (n,) mask with exactly ``max(1, round(missing * n))`` False entries."""
    present = np.ones(n, dtype=bool)
    present[rng_for(seed, stream).permutation(n)[: max(1, round(missing * n))]] = False
    return present


def _write_omics(out: Path, traits: pd.DataFrame, preset: DemoPreset, seed: int) -> None:
    """Write ``rna.tsv``, ``scna.tsv`` (with SCNA-only extra patients) and ``gene_sets.gmt``."""
    n = len(traits)
    genome = make_genome(preset.n_genes)
    n_extra = max(1, round(preset.extra_scna_fraction * n))
    extras = draw_traits(n_extra, seed, stream="extra-traits", first_id=n + 1)
    cn_cohort = omics.copy_number(genome, traits, seed)
    cn_extra = omics.copy_number(genome, extras, seed)

    has_rna = _pick_present(n, _RNA_MISSING, seed, "rna-present")
    module = omics.pick_module(genome, preset.n_module_genes, seed)
    counts, gamma = omics.rna_counts(
        genome, traits[has_rna].reset_index(drop=True), cn_cohort[:, has_rna], module, seed
    )
    rna_cols = [omics.sample_barcode(p) for p in traits.loc[has_rna, "patient_id"]]
    rna = pd.DataFrame(counts, columns=rna_cols)
    rna.insert(0, "gene", genome["gene"].to_numpy())
    write_tsv(rna, out / "rna.tsv")

    has_scna = _pick_present(n, _SCNA_MISSING, seed, "scna-present")
    ids = [*traits.loc[has_scna, "patient_id"], *extras["patient_id"]]
    cn = np.concatenate([cn_cohort[:, has_scna], cn_extra], axis=1)
    scna = pd.DataFrame(cn.astype(int), columns=[omics.sample_barcode(p) for p in ids])
    scna.insert(0, "chrom_arm", genome["chrom_arm"].to_numpy())
    scna.insert(0, "gene", genome["gene"].to_numpy())
    write_tsv(scna, out / "scna.tsv")

    sets = omics.gene_sets(genome, module[0], gamma, seed)
    (out / "gene_sets.gmt").write_text(omics.write_gmt(sets))
    _log.info(
        "omics: %d genes, RNA for %d patients, SCNA for %d (+%d SCNA-only)",
        len(genome),
        int(has_rna.sum()),
        int(has_scna.sum()),
        n_extra,
    )


def _run_jobs(jobs: list[tuple[Callable[..., Any], tuple]], n_jobs: int) -> None:
    """Run ``func(*args)`` for each job, on ``n_jobs`` threads if > 1.

    Threads rather than processes: the heavy parts (numpy, JPEG and gzip encoding) release the
    GIL, and a process pool would re-import the caller's ``__main__`` under the spawn start
    method (scripts without a ``__main__`` guard, Snakemake ``script:`` files).
    """
    if n_jobs <= 1:
        for func, args in progress(jobs, desc="images", total=len(jobs)):
            func(*args)
        return
    with ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="mmsurv-demo") as pool:
        futures = [pool.submit(func, *args) for func, args in jobs]
        for future in progress(futures, desc="images", total=len(futures)):
            future.result()


def _default_jobs() -> int:
    """CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


#: The demo's endpoints, clinical variables and labels (columns of its samples sheet), as
#: config keys.
SHEET_KEYS: dict[str, Any] = {
    "endpoints": {
        "os": {"time": "os_days", "event": "os_event"},
        "pfs": {"time": "pfs_days", "event": "pfs_event"},
    },
    "clinical": {
        "numeric": ["age", "kps"],
        "categorical": ["sex", "grade", "resection", "radiotherapy", "chemotherapy", "idh_mutant"],
        "sets": {"small": ["age", "kps", "grade", "idh_mutant"]},
    },
    "labels": {"idh": "idh_mutant", "codel": "codel_1p19q", "subtype": "who_subtype"},
}


def _config(out: Path) -> dict:
    """The ``config.yaml`` content for a cohort written to ``out`` (absolute paths)."""
    return {
        "cohort": {
            "samples": str(out / "samples.tsv"),
            "slides": str(out / "slides.tsv"),
            "images": str(out / "images.tsv"),
            "rna": str(out / "rna.tsv"),
            "scna": str(out / "scna.tsv"),
            "id_pattern": ID_PATTERN,
            "truth": str(out / "truth.tsv"),
            "gene_sets": [str(out / "gene_sets.gmt")],
        },
        **SHEET_KEYS,
    }


def make_demo_cohort(
    out: str | os.PathLike[str],
    preset: str | DemoPreset = "demo",
    seed: int = 0,
    *,
    n_jobs: int | None = None,
) -> Path:
    """Write a synthetic multimodal glioma cohort to ``out`` and return its ``config.yaml``.

    The same ``(preset, seed)`` always gives the same tables and image arrays.

    Parameters
    ----------
    out
        Output folder (created if needed). Files: ``samples.tsv``, ``slides.tsv``,
        ``images.tsv``, ``rna.tsv``, ``scna.tsv``, ``gene_sets.gmt``, ``truth.tsv``,
        ``config.yaml``, ``slides/*.tiff`` and ``images/{patient}/{channel}.nii.gz``.
    preset
        ``"smoke"`` (about 40 patients, seconds) or ``"demo"`` (about 200 patients), see
        :data:`mmsurv.demo.PRESETS`; or a :class:`~mmsurv.demo.DemoPreset`.
    seed
        Non-negative integer seed.
    n_jobs
        Worker threads for slides and volumes; ``None`` uses the available CPUs (at most 8),
        1 runs them one after the other. Results do not depend on it.

    Returns
    -------
    pathlib.Path
        Absolute path of ``out/config.yaml``, written last.
    """
    started = time.perf_counter()
    p = get_preset(preset)
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _log.info("writing the %r demo cohort (seed %d) to %s", p.name, seed, out)

    traits = draw_traits(p.n_patients, seed)
    components = risk_components(traits)
    risk = total_risk(components)
    survival = draw_survival(risk, seed)
    truth = pd.concat([traits[["patient_id"]], pd.Series(risk, name="risk"), components], axis=1)
    write_tsv(truth[["patient_id", "risk", *COMPONENTS]], out / "truth.tsv")
    write_tsv(make_samples(traits, survival, seed), out / "samples.tsv")
    _write_omics(out, traits, p, seed)

    slides = plan_slides(traits, p, seed)
    studies = plan_volumes(traits, p, seed)
    (out / "slides").mkdir(exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    jobs: list[tuple[Callable[..., Any], tuple]] = [
        *((write_slide, (s, out, p, seed)) for s in slides),
        *((write_study, (s, out, seed)) for s in studies),
    ]
    workers = _default_jobs() if n_jobs is None else max(1, n_jobs)
    _log.info(
        "drawing %d slides and %d MRI studies on %d workers", len(slides), len(studies), workers
    )
    _run_jobs(jobs, workers)
    write_tsv(slides_sheet(slides), out / "slides.tsv")
    write_tsv(images_sheet(studies), out / "images.tsv")

    config = out / "config.yaml"
    tmp = config.with_name(".config.yaml.tmp")
    tmp.write_text(yaml.safe_dump(_config(out), sort_keys=False, default_flow_style=False))
    tmp.replace(config)
    _log.info(
        "done in %.1f s: %d patients, OS censoring %.0f %%",
        time.perf_counter() - started,
        len(traits),
        100.0 * (1.0 - survival["os_event"].mean()),
    )
    return config
