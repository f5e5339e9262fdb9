"""Synthetic MRI (T1, T1ce, T2, FLAIR, BraTS mask) and DTI (maps FA, MD, AD, RD or raw DWI).

Each patient's channels share one grid (:class:`mmsurv.demo.anatomy.Geometry`). MRI channels
map the tissue classes through per-sequence contrast tables, get partial-volume blur, a smooth
multiplicative bias field (different per channel), Rician noise, and are stored as int16. DTI
maps (float32, diffusivities in mm^2/s) use per-tissue FA and MD, with the tumour's FA rising
and MD falling with the patient's DTI severity; AD and RD follow from an axially symmetric
tensor, so that ``md == (ad + 2 rd) / 3`` and ``ad >= rd``.

A share of the DTI patients (:data:`RAW_DWI_FRACTION`, at least one when there are 5 or more)
ships the raw diffusion data instead of the maps, as a scanner would: ``dwi.nii.gz`` (4-D
int16, one b=0 volume and 12 non-collinear directions at b = 1000 s/mm^2, same spatial grid),
``dwi.bval`` and ``dwi.bvec`` (FSL text files), listed as channels ``dwi``, ``bval``, ``bvec``.
Their signal ``S = S0 exp(-b g^T D g)`` comes from the axially symmetric tensor of the same
maps (AD along a smoothly varying fibre direction, RD across it), with S0 a per-tissue
T2-weighted level and mild Rician noise, so that a tensor fit gives the maps back (the DTI
severity of the hazard model stays recoverable).
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
    "DWI_CHANNELS",
    "CHANNELS",
    "DWI_BVALS",
    "DWI_BVECS",
    "VolumeSpec",
    "plan_volumes",
    "render_mri",
    "render_dti",
    "render_dwi",
    "render_study",
    "study_channels",
    "write_study",
    "images_sheet",
]

MRI_CHANNELS: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
DTI_CHANNELS: tuple[str, ...] = ("fa", "md", "ad", "rd")
#: Raw diffusion data written instead of the maps for :data:`RAW_DWI_FRACTION` of the patients.
DWI_CHANNELS: tuple[str, ...] = ("dwi", "bval", "bvec")
#: Every channel name written to ``images.tsv``, in sheet order (a study has the DTI maps or
#: the raw DWI channels, never both).
CHANNELS: tuple[str, ...] = (*MRI_CHANNELS, "mask", *DTI_CHANNELS, *DWI_CHANNELS)

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
#: b-value (s/mm^2) of the diffusion-weighted volumes of a raw DWI.
DWI_B_VALUE = 1000.0
#: SD of each Gaussian channel of the Rician DWI noise (S0 is 60..1500: SNR about 40..250).
_DWI_NOISE_SD = 6.0


def _dwi_directions(n: int = 12) -> np.ndarray:
    """(n, 3) unit gradient directions on a Fibonacci spiral over the upper half sphere.

    No two are collinear (all have z > 0 and distinct azimuths) and they are spread evenly
    enough for a well-conditioned tensor fit.
    """
    k = np.arange(n) + 0.5
    z = 1.0 - k / n
    r = np.sqrt(1.0 - z**2)
    phi = np.pi * (3.0 - np.sqrt(5.0)) * np.arange(n)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


#: b-values (s/mm^2) and unit b-vectors (x, y, z voxel axes) of a raw DWI: b=0, then 12 at b.
DWI_BVALS = np.concatenate([[0.0], np.full(12, DWI_B_VALUE)])
DWI_BVECS = np.concatenate([np.zeros((1, 3)), _dwi_directions(12)])


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
        Whether the study has DTI (maps, or raw DWI with ``raw_dwi``).
    has_mask
        Whether the tumour mask is listed in ``images.tsv``. A withheld mask is still written
        (``images/{patient}/mask_withheld.nii.gz``, in no sheet) so that weak labels can be
        scored against it; the workflow never reads it.
    raw_dwi
        With ``has_dti``: the raw diffusion data (``dwi``, ``bval``, ``bvec``) are written in
        place of the four maps.
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
    raw_dwi: bool = False


#: Share of imaged patients whose tumour mask is withheld from the sheet (seed 2: scans without
#: segmentation labels get weak labels).
WITHHELD_MASK_FRACTION = 0.25
#: Share of DTI patients whose raw DWI is written instead of the maps (own random stream; at
#: least one patient once there are 5 DTI patients).
RAW_DWI_FRACTION = 0.10


def _raw_dwi_patients(dti_rows: list[int], seed: int) -> set[int]:
    """Rows of the DTI patients that get raw DWI data (:data:`RAW_DWI_FRACTION`)."""
    n = round(RAW_DWI_FRACTION * len(dti_rows))
    if len(dti_rows) >= 5:
        n = max(1, n)
    if n == 0:
        return set()
    return {int(i) for i in rng_for(seed, "dwi-raw").choice(dti_rows, n, replace=False)}


def plan_volumes(traits: pd.DataFrame, preset: DemoPreset, seed: int) -> list[VolumeSpec]:
    """Choose who has MRI (85 %) and, among them, who lacks DTI (about 8 %), whose mask is
    withheld (:data:`WITHHELD_MASK_FRACTION`) and who ships raw DWI instead of DTI maps
    (:data:`RAW_DWI_FRACTION`), each on its own random stream; draw geometries."""
    rng = rng_for(seed, "volume-plan")
    n = len(traits)
    order = rng.permutation(n)
    no_mri = set(order[: max(1, round(0.15 * n))].tolist())
    with_mri = [i for i in range(n) if i not in no_mri]
    no_dti = set(rng.choice(with_mri, size=max(1, round(0.08 * len(with_mri))), replace=False))
    n_withheld = max(1, round(WITHHELD_MASK_FRACTION * len(with_mri)))
    withheld = set(rng_for(seed, "mask-withheld").choice(with_mri, n_withheld, replace=False))
    raw = _raw_dwi_patients([i for i in with_mri if i not in no_dti], seed)
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
                raw_dwi=i in raw,
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


def render_dwi(
    labels: np.ndarray, maps: dict[str, np.ndarray], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Raw diffusion-weighted volumes whose diffusion tensor has the given maps.

    Each voxel's tensor is axially symmetric, ``D = rd I + (ad - rd) e e^T``, with ``e`` a
    smoothly varying unit fibre direction (x, y, z voxel axes); volume ``k`` is
    ``S0 exp(-b_k g_k^T D g_k)`` (:data:`DWI_BVALS`, :data:`DWI_BVECS`) with S0 the tissue's
    T2-weighted level (partial-volume blurred), plus Rician noise. Outside the brain the maps
    are zero, so the signal there does not decay with b.

    Parameters
    ----------
    labels
        (nz, ny, nx) tissue classes.
    maps
        ``ad`` and ``rd`` (mm^2/s), (nz, ny, nx), from :func:`render_dti`.
    rng
        Random generator (fibre directions, noise).

    Returns
    -------
    dict of str to numpy.ndarray
        ``dwi``: (n, nz, ny, nx) int16 signal (arbitrary units; n = 13); ``bval``: (n,)
        s/mm^2; ``bvec``: (n, 3) unit vectors (zero for b=0).
    """
    s0 = gaussian_filter(np.asarray(_CONTRAST["t2"], dtype=np.float32)[labels], 0.7)
    fibre = np.stack([smooth_noise(labels.shape, 3.0, rng) for _ in range(3)], axis=-1)
    norm = np.linalg.norm(fibre, axis=-1, keepdims=True)
    fibre = np.where(norm > 1e-6, fibre / np.maximum(norm, 1e-6), np.array([1.0, 0.0, 0.0]))
    ad, rd = (maps[k].astype(np.float64) for k in ("ad", "rd"))
    signal = np.empty((len(DWI_BVALS), *labels.shape), dtype=np.float32)
    for k, (b, g) in enumerate(zip(DWI_BVALS, DWI_BVECS, strict=True)):
        adc = rd + (ad - rd) * (fibre @ g) ** 2  # g^T D g, mm^2/s
        signal[k] = s0 * np.exp(-b * adc)
    sd = np.float32(_DWI_NOISE_SD)
    real = signal + sd * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sd * rng.standard_normal(signal.shape, dtype=np.float32)
    dwi = np.clip(np.round(np.hypot(real, imag)), 0, 32767).astype(np.int16)
    return {"dwi": dwi, "bval": DWI_BVALS.copy(), "bvec": DWI_BVECS.copy()}


def render_study(spec: VolumeSpec, seed: int) -> dict[str, np.ndarray]:
    """Every array of one patient's study, whether or not it goes to the sheet.

    Returns
    -------
    dict of str to numpy.ndarray
        The MRI channels, ``mask`` (BraTS labels), and with ``spec.has_dti`` the four maps;
        with ``spec.raw_dwi`` also ``dwi``, ``bval``, ``bvec`` (:func:`render_dwi`, from its
        own random stream, so the maps are the same as without raw data).
    """
    rng = rng_for(seed, "volume", spec.index)
    labels = ana.tissue_volume(spec.geometry, spec.tumour, rng)
    arrays: dict[str, np.ndarray] = dict(render_mri(labels, rng))
    arrays["mask"] = ana.BRATS_LABEL[labels]
    if spec.has_dti:
        arrays.update(render_dti(labels, spec.tumour_fa, spec.tumour_md, rng))
        if spec.raw_dwi:
            arrays.update(render_dwi(labels, arrays, rng_for(seed, "dwi", spec.index)))
    return arrays


def _image(array: np.ndarray, geom: ana.Geometry) -> sitk.Image:
    """A (nz, ny, nx) array, or an (n, nz, ny, nx) series, as an image on the grid ``geom``.

    A series becomes a 4-D image whose spatial axes carry the grid (4th axis spacing 1).
    """
    img = sitk.GetImageFromArray(array, isVector=False)
    if array.ndim == 3:
        img.SetSpacing(geom.spacing_mm)
        img.SetOrigin(geom.origin_mm)
        img.SetDirection(geom.direction)
        return img
    direction = np.eye(4)
    direction[:3, :3] = np.asarray(geom.direction).reshape(3, 3)
    img.SetSpacing((*geom.spacing_mm, 1.0))
    img.SetOrigin((*geom.origin_mm, 0.0))
    img.SetDirection(direction.ravel().tolist())
    return img


def _write_nifti(path: Path, array: np.ndarray, geom: ana.Geometry) -> None:
    """Write a (nz, ny, nx) array (or an (n, nz, ny, nx) series) as gzipped NIfTI on ``geom``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(_image(array, geom), str(path), True, 1)


def _write_fsl(path: Path, channel: str, values: np.ndarray) -> None:
    """FSL text: b-values on one row (``bval``); b-vectors as 3 rows x, y, z (``bvec``)."""
    if channel == "bval":
        text = " ".join(f"{v:g}" for v in values) + "\n"
    else:
        text = "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in values.T)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def study_channels(spec: VolumeSpec) -> tuple[str, ...]:
    """Channels of a study in the sheet: MRI always, the mask unless withheld, with
    ``spec.has_dti`` the DTI maps, or the raw DWI channels when ``spec.raw_dwi``."""
    dti = DWI_CHANNELS if spec.raw_dwi else DTI_CHANNELS
    return tuple(
        c
        for c in CHANNELS
        if (c != "mask" or spec.has_mask)
        and (c not in (*DTI_CHANNELS, *DWI_CHANNELS) or (spec.has_dti and c in dti))
    )


def write_study(spec: VolumeSpec, out: Path, seed: int) -> list[Path]:
    """Render one patient's study and write it under ``out/images/{patient}/``.

    Images are ``{channel}.nii.gz``; raw DWI data are ``dwi.nii.gz``, ``dwi.bval`` and
    ``dwi.bvec``.

    Returns
    -------
    list of pathlib.Path
        The files written, in :func:`study_channels` order, then a withheld mask.
    """
    arrays = render_study(spec, seed)
    paths = []
    for channel in study_channels(spec):
        paths.append(out / _relative_path(spec.patient_id, channel))
        if channel in ("bval", "bvec"):
            _write_fsl(paths[-1], channel, arrays[channel])
        else:
            _write_nifti(paths[-1], arrays[channel], spec.geometry)
    if not spec.has_mask:
        paths.append(out / _relative_path(spec.patient_id, "mask_withheld"))
        _write_nifti(paths[-1], arrays["mask"], spec.geometry)
    return paths


#: File names of the raw DWI channels (the others are ``{channel}.nii.gz``).
_FILE_NAMES = {"dwi": "dwi.nii.gz", "bval": "dwi.bval", "bvec": "dwi.bvec"}


def _relative_path(patient_id: str, channel: str) -> str:
    return f"images/{patient_id}/{_FILE_NAMES.get(channel, f'{channel}.nii.gz')}"


def images_sheet(specs: list[VolumeSpec]) -> pd.DataFrame:
    """The ``images.tsv`` sheet: ``patient_id``, ``channel``, ``path`` (relative)."""
    rows = [
        (s.patient_id, c, _relative_path(s.patient_id, c)) for s in specs for c in study_channels(s)
    ]
    return pd.DataFrame(rows, columns=["patient_id", "channel", "path"])
