"""Synthetic MRI (T1, T1ce, T2, FLAIR, BraTS mask) and DTI maps (FA, MD, AD, RD) as NIfTI.

Each patient's channels share one grid (:class:`mmsurv.demo.anatomy.Geometry`). MRI channels
map the tissue classes through per-sequence contrast tables, get partial-volume blur, a smooth
multiplicative bias field (different per channel), Rician noise, and are stored as int16. DTI
maps (float32, diffusivities in mm^2/s) use per-tissue FA and MD, with the tumour's FA rising
and MD falling with the patient's DTI severity; AD and RD follow from an axially symmetric
tensor, so that ``md == (ad + 2 rd) / 3`` and ``ad >= rd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy.ndimage import gaussian_filter

from . import anatomy as ana
from ._util import rng_for, smooth_noise
from .presets import DemoPreset

__all__ = [
    "MRI_CHANNELS",
    "DTI_CHANNELS",
    "CHANNELS",
    "VolumeSpec",
    "plan_volumes",
    "render_mri",
    "render_dti",
    "study_channels",
    "write_study",
    "images_sheet",
]

MRI_CHANNELS: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
DTI_CHANNELS: tuple[str, ...] = ("fa", "md", "ad", "rd")
#: Every channel name written to ``images.tsv``, in sheet order.
CHANNELS: tuple[str, ...] = (*MRI_CHANNELS, "mask", *DTI_CHANNELS)

# signal of each tissue class (AIR, SCALP, SKULL, CSF, GM, WM, EDEMA, ENHANCING, NECROSIS)
_CONTRAST: dict[str, tuple[float, ...]] = {
    "t1": (0, 650, 80, 250, 550, 700, 450, 520, 280),
    "t1ce": (0, 660, 80, 260, 570, 710, 470, 1150, 300),
    "t2": (0, 420, 60, 1500, 820, 620, 1250, 950, 1450),
    "flair": (0, 480, 60, 150, 720, 560, 1150, 880, 420),
}
# FA (unitless) and MD (mm^2/s) of each tissue class; tumour (ENHANCING) is per patient
_NOISE_SD = np.float32(18.0)  # SD of each Gaussian channel of the Rician MRI noise
_FA = np.array([0, 0, 0, 0.06, 0.18, 0.45, 0.15, 0.0, 0.07])
_MD = np.array([0, 0, 0, 3.0e-3, 0.85e-3, 0.72e-3, 1.35e-3, 0.0, 2.1e-3])


@dataclass(frozen=True)
class VolumeSpec:
    """One patient's imaging study.

    Attributes
    ----------
    patient_id
        Patient barcode.
    index
        Row number of the patient (seeds the study's random stream).
    has_dti
        Whether DTI maps are written.
    has_mask
        Whether the tumour mask is listed in ``images.tsv``. A withheld mask is still written
        (``images/{patient}/mask_withheld.nii.gz``, in no sheet) so that weak labels can be
        scored against it; the workflow never reads it.
    geometry
        Shared image grid.
    tumour
        Tumour compartment radii (mm).
    tumour_fa
        Fractional anisotropy of the enhancing tumour (0..1).
    tumour_md
        Mean diffusivity of the enhancing tumour (mm^2/s).
    """

    patient_id: str
    index: int
    has_dti: bool
    geometry: ana.Geometry
    tumour: ana.TumourShape
    tumour_fa: float
    tumour_md: float
    has_mask: bool = True


#: Share of imaged patients whose tumour mask is withheld from the sheet (seed 2: scans without
#: segmentation labels get weak labels).
WITHHELD_MASK_FRACTION = 0.25


def plan_volumes(traits: pd.DataFrame, preset: DemoPreset, seed: int) -> list[VolumeSpec]:
    """Choose who has MRI (85 %) and, among them, who lacks DTI (about 8 %) and whose mask is
    withheld (:data:`WITHHELD_MASK_FRACTION`, its own random stream); draw geometries."""
    rng = rng_for(seed, "volume-plan")
    n = len(traits)
    order = rng.permutation(n)
    no_mri = set(order[: max(1, round(0.15 * n))].tolist())
    with_mri = [i for i in range(n) if i not in no_mri]
    no_dti = set(rng.choice(with_mri, size=max(1, round(0.08 * len(with_mri))), replace=False))
    n_withheld = max(1, round(WITHHELD_MASK_FRACTION * len(with_mri)))
    withheld = set(rng_for(seed, "mask-withheld").choice(with_mri, n_withheld, replace=False))
    specs = []
    for i in with_mri:
        row = traits.iloc[i]
        specs.append(
            VolumeSpec(
                patient_id=str(row["patient_id"]),
                index=i,
                has_dti=i not in no_dti,
                geometry=ana.draw_geometry(preset.volume_shape, preset.volume_spacing_mm, rng),
                tumour=ana.TumourShape(
                    necrosis_mm=float(row["mri_necrosis_radius_mm"]),
                    ring_mm=float(row["mri_ring_mm"]),
                    edema_mm=float(row["mri_edema_mm"]),
                ),
                tumour_fa=float(row["dti_tumour_fa"]),
                tumour_md=float(row["dti_tumour_md"]),
                has_mask=i not in withheld,
            )
        )
    return specs


def _bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """Smooth multiplicative bias ``exp(sum_k c_k b_k)`` over linear and quadratic terms.

    Returns a (nz, ny, nx) float array; over the central half of the grid typically within
    0.75..1.35.
    """
    nz, ny, nx = shape
    z = np.linspace(-1.0, 1.0, nz)[:, None, None]
    y = np.linspace(-1.0, 1.0, ny)[None, :, None]
    x = np.linspace(-1.0, 1.0, nx)[None, None, :]
    terms = (x, y, z, x * x - 1 / 3, y * y - 1 / 3, z * z - 1 / 3, x * y, y * z)
    coef = np.concatenate([rng.normal(0.0, 0.12, 3), rng.normal(0.0, 0.10, 5)])
    log_b = sum(c * t for c, t in zip(coef, terms, strict=True))
    return np.exp(np.broadcast_to(log_b, shape))


def render_mri(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Turn a tissue-class volume into the four MRI sequences.

    Parameters
    ----------
    labels
        (nz, ny, nx) tissue classes.
    rng
        Random generator (gain, bias field, noise).

    Returns
    -------
    dict of str to numpy.ndarray
        ``t1``, ``t1ce``, ``t2``, ``flair``: (nz, ny, nx) int16 arbitrary-unit intensities.
    """
    texture = (1.0 + 0.03 * smooth_noise(labels.shape, 1.0, rng)).astype(np.float32)
    out = {}
    for name in MRI_CHANNELS:
        img = np.asarray(_CONTRAST[name], dtype=np.float32)[labels] * texture
        img = gaussian_filter(img, 0.7) * np.float32(rng.uniform(0.8, 1.25))
        img *= _bias_field(labels.shape, rng).astype(np.float32)
        real = img + _NOISE_SD * rng.standard_normal(img.shape, dtype=np.float32)
        imag = _NOISE_SD * rng.standard_normal(img.shape, dtype=np.float32)
        out[name] = np.clip(np.round(np.hypot(real, imag)), 0, 32767).astype(np.int16)
    return out


def render_dti(
    labels: np.ndarray, tumour_fa: float, tumour_md: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """DTI scalar maps of a tissue-class volume.

    Parameters
    ----------
    labels
        (nz, ny, nx) tissue classes.
    tumour_fa, tumour_md
        FA (0..1) and MD (mm^2/s) of the enhancing tumour.
    rng
        Random generator.

    Returns
    -------
    dict of str to numpy.ndarray
        ``fa`` (0..1), ``md``, ``ad``, ``rd`` (mm^2/s): (nz, ny, nx) float32, zero outside the
        brain, with ``md = (ad + 2 rd) / 3`` and ``ad >= rd``.
    """
    fa_lut, md_lut = _FA.copy(), _MD.copy()
    fa_lut[ana.ENHANCING], md_lut[ana.ENHANCING] = tumour_fa, tumour_md
    brain = labels >= ana.CSF
    wm_texture = 1.0 + 0.2 * smooth_noise(labels.shape, 1.0, rng)
    fa = gaussian_filter(fa_lut[labels] * np.where(labels == ana.WM, wm_texture, 1.0), 0.6)
    md = gaussian_filter(md_lut[labels], 0.6)
    fa = np.clip(fa + rng.normal(0.0, 0.02, fa.shape), 0.0, 0.95)
    md = np.clip(md * (1.0 + rng.normal(0.0, 0.04, md.shape)), 1e-5, None)
    fa, md = np.where(brain, fa, 0.0), np.where(brain, md, 0.0)
    # axially symmetric tensor with eigenvalues (md + 2d, md - d, md - d) has this FA
    delta = md * fa * np.sqrt(3.0 / (9.0 - 6.0 * fa**2))
    ad, rd = md + 2.0 * delta, md - delta
    maps = {"fa": fa, "md": (ad + 2.0 * rd) / 3.0, "ad": ad, "rd": rd}
    return {k: v.astype(np.float32) for k, v in maps.items()}


def _write_nifti(path: Path, array: np.ndarray, geom: ana.Geometry) -> None:
    """Write a (nz, ny, nx) array as gzipped NIfTI with the given grid."""
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(geom.spacing_mm)
    img.SetOrigin(geom.origin_mm)
    img.SetDirection(geom.direction)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), True, 1)


def study_channels(spec: VolumeSpec) -> tuple[str, ...]:
    """Channels of a study in the sheet: MRI always, the mask unless withheld, DTI maps when
    ``spec.has_dti``."""
    return tuple(
        c
        for c in CHANNELS
        if (c != "mask" or spec.has_mask) and (c not in DTI_CHANNELS or spec.has_dti)
    )


def write_study(spec: VolumeSpec, out: Path, seed: int) -> list[Path]:
    """Render one patient's study and write ``out/images/{patient}/{channel}.nii.gz``.

    Returns
    -------
    list of pathlib.Path
        The files written, in :func:`study_channels` order, then a withheld mask.
    """
    rng = rng_for(seed, "volume", spec.index)
    labels = ana.tissue_volume(spec.geometry, spec.tumour, rng)
    arrays: dict[str, np.ndarray] = dict(render_mri(labels, rng))
    arrays["mask"] = ana.BRATS_LABEL[labels]
    if spec.has_dti:
        arrays.update(render_dti(labels, spec.tumour_fa, spec.tumour_md, rng))
    paths = []
    for channel in study_channels(spec):
        paths.append(out / _relative_path(spec.patient_id, channel))
        _write_nifti(paths[-1], arrays[channel], spec.geometry)
    if not spec.has_mask:
        paths.append(out / _relative_path(spec.patient_id, "mask_withheld"))
        _write_nifti(paths[-1], arrays["mask"], spec.geometry)
    return paths


def _relative_path(patient_id: str, channel: str) -> str:
    return f"images/{patient_id}/{channel}.nii.gz"


def images_sheet(specs: list[VolumeSpec]) -> pd.DataFrame:
    """The ``images.tsv`` sheet: ``patient_id``, ``channel``, ``path`` (relative)."""
    rows = [
        (s.patient_id, c, _relative_path(s.patient_id, c)) for s in specs for c in study_channels(s)
    ]
    return pd.DataFrame(rows, columns=["patient_id", "channel", "path"])
