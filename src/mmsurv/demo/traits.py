"""Latent patient traits of the demo cohort and the phenotype each modality shows.

One row per patient. The traits are drawn in this order: WHO subtype, a shared tumour
aggressiveness ``z``, the clinical variables (age, sex, KPS, grade, resection, treatment), one
latent severity per imaging/expression modality, and from those the parameters that the
renderers draw (nuclei density, enhancing-ring thickness, tumour FA, module activity, copy
number events). :mod:`mmsurv.demo.hazard` turns the phenotype columns into risk components.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import rng_for, sigmoid

__all__ = ["SUBTYPES", "SUBTYPE_PROBS", "SUBTYPE_SCORE", "patient_ids", "draw_traits"]

#: WHO 2016 glioma subtypes, in the order of :data:`SUBTYPE_PROBS`.
SUBTYPES: tuple[str, str, str] = ("IDHwt", "IDHmut-non-codel", "IDHmut-codel")
#: Prior probability of each subtype.
SUBTYPE_PROBS: tuple[float, float, float] = (0.55, 0.25, 0.20)
#: Subtype score ``s`` that shifts every modality's latent severity (higher = worse).
SUBTYPE_SCORE: dict[str, float] = {"IDHwt": 1.0, "IDHmut-non-codel": 0.0, "IDHmut-codel": -0.7}

_TSS = "D0"  # tissue source site code of every synthetic barcode


def patient_ids(n: int, start: int = 1) -> list[str]:
    """TCGA-style patient barcodes ``TCGA-D0-0001``, ``TCGA-D0-0002``... (``n`` of them)."""
    return [f"TCGA-{_TSS}-{i:04d}" for i in range(start, start + n)]


def _clinical(subtype: np.ndarray, z: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Draw the complete (pre-missingness) clinical variables.

    Parameters
    ----------
    subtype
        (n,) subtype names.
    z
        (n,) shared aggressiveness, standard normal.
    rng
        Random generator.
    """
    n = subtype.size
    idhwt = subtype == "IDHwt"
    age = np.where(idhwt, rng.normal(60.0, 11.0, n), rng.normal(40.0, 11.0, n))
    age = np.clip(age, 18.0, 89.0)
    sex = np.where(rng.random(n) < 0.58, "M", "F")
    kps_cont = 90.0 - 0.3 * (age - 50.0) - 6.0 * z + rng.normal(0.0, 7.0, n)
    kps = np.clip(np.round(kps_cont / 10.0) * 10.0, 40, 100).astype(int)

    g = 0.9 * z + rng.normal(0.0, 0.8, n)
    grade = np.where(g < -0.2, "G2", np.where(g < 0.9, "G3", "G4"))
    wt_g4 = rng.random(n) < sigmoid(1.6 + 0.8 * z)
    grade = np.where(idhwt, np.where(wt_g4, "G4", np.where(rng.random(n) < 0.1, "G2", "G3")), grade)
    grade = np.where(subtype == "IDHmut-codel", np.where(g < 0.1, "G2", "G3"), grade)

    r = 0.6 * z + rng.normal(0.0, 1.0, n)
    resection = np.where(r < -0.15, "GTR", np.where(r < 0.98, "STR", "biopsy"))
    p_rt = np.where(grade == "G2", 0.6, sigmoid(2.0 + 0.04 * (kps - 70)))
    radiotherapy = np.where(rng.random(n) < p_rt, "yes", "no")
    chemotherapy = np.where(rng.random(n) < np.where(grade == "G4", 0.85, 0.55), "yes", "no")
    return pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "kps": kps,
            "grade": grade,
            "resection": resection,
            "radiotherapy": radiotherapy,
            "chemotherapy": chemotherapy,
        }
    )


def _phenotypes(
    subtype: np.ndarray, s: np.ndarray, z: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """Draw the latent modality severities and the parameters the renderers draw.

    Each modality ``m`` in (wsi, mri, dti, rna) has a latent severity
    ``x_m = 0.5 s + 0.35 z + 0.8 e_m`` with its own standard-normal ``e_m``; ``p_m = sigmoid(x_m)``
    in (0, 1) maps to the drawn parameters. SCNA events are Bernoulli draws whose
    probabilities depend on subtype and ``z``.
    """
    n = s.size
    x = {m: 0.5 * s + 0.35 * z + 0.8 * rng.standard_normal(n) for m in ("wsi", "mri", "dti", "rna")}
    p_wsi, p_mri, p_dti = sigmoid(x["wsi"]), sigmoid(x["mri"]), sigmoid(x["dti"])
    idhwt = subtype == "IDHwt"
    return pd.DataFrame(
        {
            "x_wsi": x["wsi"],
            "x_mri": x["mri"],
            "x_dti": x["dti"],
            "x_rna": x["rna"],
            # slides: nuclei per mm^2 of tissue, fraction of tissue area that is necrotic
            "wsi_nuclei_per_mm2": 1500.0 + 5500.0 * p_wsi,
            "wsi_necrosis_fraction": 0.30 * np.clip((p_wsi - 0.45) / 0.55, 0.0, 1.0),
            # MRI: radii and thicknesses in mm
            "mri_necrosis_radius_mm": 3.0 + 11.0 * p_mri,
            "mri_ring_mm": 3.0 + 5.0 * p_mri,
            "mri_edema_mm": 6.0 + 20.0 * p_mri,
            # DTI: tumour fractional anisotropy (unitless) and mean diffusivity (mm^2/s)
            "dti_tumour_fa": 0.12 + 0.30 * p_dti,
            "dti_tumour_md": 1.55e-3 - 0.65e-3 * p_dti,
            # RNA: log-scale activity of the planted module
            "rna_module_activity": x["rna"],
            # SCNA events (0/1)
            "scna_chr7_gain_chr10_loss": (rng.random(n) < np.where(idhwt, 0.85, 0.03)).astype(int),
            "scna_codel": (subtype == "IDHmut-codel").astype(int),
            "scna_cdkn2a_homdel": (rng.random(n) < sigmoid(-2.0 + 1.3 * z + 1.2 * s)).astype(int),
            "scna_egfr_amp": (idhwt & (rng.random(n) < sigmoid(-0.8 + 0.8 * z))).astype(int),
        }
    )


def draw_traits(n: int, seed: int, stream: str = "traits", first_id: int = 1) -> pd.DataFrame:
    """Draw ``n`` patients' latent traits.

    Parameters
    ----------
    n
        Number of patients.
    seed
        Cohort seed.
    stream
        Name of the random stream (``"traits"`` for the cohort, another name for the
        SCNA-only patients so that they do not change the cohort's draws).
    first_id
        Number of the first patient barcode.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``patient_id``, ``who_subtype``, ``idh_mutant`` (0/1),
        ``codel_1p19q`` (0/1), ``subtype_score`` ``s``, aggressiveness ``z``, the complete
        clinical variables (``age`` in years as float, ``sex``, ``kps``, ``grade``,
        ``resection``, ``radiotherapy``, ``chemotherapy``) and the phenotype columns of
        :func:`_phenotypes` (``wsi_*``, ``mri_*``, ``dti_*``, ``rna_*``, ``scna_*``, ``x_*``).
    """
    rng = rng_for(seed, stream)
    subtype = rng.choice(np.array(SUBTYPES), size=n, p=np.array(SUBTYPE_PROBS))
    s = np.array([SUBTYPE_SCORE[t] for t in subtype], dtype=np.float64)
    z = rng.standard_normal(n)
    head = pd.DataFrame(
        {
            "patient_id": patient_ids(n, first_id),
            "who_subtype": subtype,
            "idh_mutant": (subtype != "IDHwt").astype(int),
            "codel_1p19q": (subtype == "IDHmut-codel").astype(int),
            "subtype_score": s,
            "z": z,
        }
    )
    clinical = _clinical(subtype, z, rng)
    pheno = _phenotypes(subtype, s, z, rng)
    return pd.concat([head, clinical, pheno], axis=1)
