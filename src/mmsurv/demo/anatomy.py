"""Brain-like anatomy and tumour of one synthetic MRI/DTI study, as a tissue-class volume.

Everything is drawn in voxel index space with physical distances in millimetres: an
ellipsoidal head (scalp, skull), a brain with a cortical grey-matter band, two ventricles and a
tumour made of a necrotic core, an enhancing ring and surrounding oedema, with irregular
borders from a smooth random field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._util import smooth_noise

__all__ = [
    "AIR",
    "SCALP",
    "SKULL",
    "CSF",
    "GM",
    "WM",
    "EDEMA",
    "ENHANCING",
    "NECROSIS",
    "N_TISSUES",
    "BRATS_LABEL",
    "Geometry",
    "TumourShape",
    "draw_geometry",
    "tissue_volume",
]

# tissue classes of the label volume
AIR, SCALP, SKULL, CSF, GM, WM, EDEMA, ENHANCING, NECROSIS = range(9)
N_TISSUES = 9
#: BraTS mask label of each tissue class (1 necrosis, 2 oedema, 4 enhancing, 0 otherwise).
BRATS_LABEL = np.array([0, 0, 0, 0, 0, 0, 2, 4, 1], dtype=np.uint8)


@dataclass(frozen=True)
class Geometry:
    """Image grid shared by every channel of a patient.

    Attributes
    ----------
    shape
        ``(nx, ny, nz)`` voxels.
    spacing_mm
        ``(sx, sy, sz)`` voxel size in mm.
    origin_mm
        Physical position of voxel (0, 0, 0) in mm.
    direction
        Row-major 3x3 direction cosines (9 floats), as SimpleITK expects.
    """

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: tuple[float, ...]


@dataclass(frozen=True)
class TumourShape:
    """Radii of the tumour compartments in mm (distances from the tumour centre).

    Attributes
    ----------
    necrosis_mm
        Radius of the necrotic core (BraTS label 1).
    ring_mm
        Thickness of the enhancing ring around it (label 4).
    edema_mm
        Thickness of the oedema shell around the ring (label 2).
    """

    necrosis_mm: float
    ring_mm: float
    edema_mm: float


def draw_geometry(
    shape: tuple[int, int, int], spacing_mm: tuple[float, float, float], rng: np.random.Generator
) -> Geometry:
    """Jitter the nominal spacing by +-5 %, offset the origin and pick an orientation.

    70 % of studies have identity direction cosines, 20 % are flipped in x and y (LPS-style),
    10 % are rotated 3-10 degrees about z.
    """
    spacing = tuple(round(float(s * rng.uniform(0.95, 1.05)), 3) for s in spacing_mm)
    origin = tuple(
        round(float(-0.5 * (n - 1) * s + rng.uniform(-10.0, 10.0)), 2)
        for n, s in zip(shape, spacing, strict=True)
    )
    u = rng.random()
    if u < 0.7:
        direction = np.eye(3)
    elif u < 0.9:
        direction = np.diag([-1.0, -1.0, 1.0])
    else:
        a = np.deg2rad(rng.uniform(3.0, 10.0) * rng.choice([-1.0, 1.0]))
        direction = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    return Geometry(
        shape=tuple(int(n) for n in shape),
        spacing_mm=spacing,
        origin_mm=origin,
        direction=tuple(float(v) for v in direction.ravel()),
    )


def _coords_mm(geom: Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical offsets from the grid centre in mm, each broadcastable to (nz, ny, nx)."""
    nx, ny, nz = geom.shape
    sx, sy, sz = geom.spacing_mm
    x = ((np.arange(nx) - 0.5 * (nx - 1)) * sx)[None, None, :]
    y = ((np.arange(ny) - 0.5 * (ny - 1)) * sy)[None, :, None]
    z = ((np.arange(nz) - 0.5 * (nz - 1)) * sz)[:, None, None]
    return x, y, z


def _ellipsoid_radius(x, y, z, centre, semi) -> np.ndarray:
    """Normalised ellipsoidal radius (1 on the surface), shape (nz, ny, nx)."""
    return np.sqrt(
        ((x - centre[0]) / semi[0]) ** 2
        + ((y - centre[1]) / semi[1]) ** 2
        + ((z - centre[2]) / semi[2]) ** 2
    )


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def tissue_volume(geom: Geometry, tumour: TumourShape, rng: np.random.Generator) -> np.ndarray:
    """Draw the tissue-class volume of one patient.

    Parameters
    ----------
    geom
        Image grid.
    tumour
        Radii of the tumour compartments in mm.
    rng
        Random generator (head size, tumour position, shape irregularity).

    Returns
    -------
    numpy.ndarray
        (nz, ny, nx) uint8 array of tissue classes :data:`AIR` ... :data:`NECROSIS`.
    """
    x, y, z = _coords_mm(geom)
    fov = np.array(geom.shape) * np.array(geom.spacing_mm)
    head = fov * np.array([0.40, 0.45, 0.42]) * rng.uniform(0.95, 1.05, 3)
    brain = head - 7.0
    r_head = _ellipsoid_radius(x, y, z, (0.0, 0.0, 0.0), head)
    r_scalp = _ellipsoid_radius(x, y, z, (0.0, 0.0, 0.0), head - 3.0)
    r_brain = _ellipsoid_radius(x, y, z, (0.0, 0.0, 0.0), brain)
    small = tuple(max(2, n // 4) for n in reversed(geom.shape))
    wobble = _upsample(smooth_noise(small, 1.0, rng), (z.size, y.size, x.size))

    labels = np.full(r_head.shape, AIR, dtype=np.uint8)
    labels[r_head <= 1.0] = SCALP
    labels[r_scalp <= 1.0] = SKULL
    in_brain = r_brain <= 1.0
    labels[in_brain] = WM
    cortex = 1.0 - (5.0 + 1.5 * wobble) / brain.mean()
    labels[in_brain & (r_brain > cortex)] = GM
    scale = brain / np.array([70.0, 85.0, 65.0])
    for side in (-1.0, 1.0):
        centre = (side * 9.0 * scale[0], 5.0 * scale[1], 6.0 * scale[2])
        semi = np.array([5.0, 17.0, 10.0]) * scale
        labels[_ellipsoid_radius(x, y, z, centre, semi) <= 1.0] = CSF

    side = rng.choice([-1.0, 1.0])
    centre = brain * np.array(
        [side * rng.uniform(0.25, 0.45), rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.35)]
    )
    rot = _random_rotation(rng)
    aniso = rng.uniform(0.8, 1.25, 3)
    aniso /= np.cbrt(aniso.prod())
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    # rotate into the tumour's frame without BLAS (no thread pool): u_j = sum_i d_i rot_ij
    local = [(dx * rot[0, j] + dy * rot[1, j] + dz * rot[2, j]) / aniso[j] for j in range(3)]
    dist = np.sqrt(local[0] ** 2 + local[1] ** 2 + local[2] ** 2) * (1.0 + 0.12 * wobble)
    r_core = tumour.necrosis_mm + tumour.ring_mm
    labels[in_brain & (dist <= r_core + tumour.edema_mm)] = EDEMA
    labels[in_brain & (dist <= r_core)] = ENHANCING
    labels[in_brain & (dist <= tumour.necrosis_mm)] = NECROSIS
    return labels


def _upsample(field: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Linear interpolation of a small 3-D field onto ``shape`` (corner-aligned)."""
    from scipy.ndimage import zoom

    factors = [t / s for t, s in zip(shape, field.shape, strict=True)]
    out = zoom(field, factors, order=1, mode="nearest", grid_mode=False)
    return out[: shape[0], : shape[1], : shape[2]]
