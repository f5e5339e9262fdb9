"""MRI preprocessing: geometry, N4, z-score, tumour box and crop, and one patient end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.mri.io import VolumeError, read_mask, read_volume, write_volume
from mmsurv.mri.preprocess import (
    PreprocessSettings,
    box_grid,
    check_same_geometry,
    crop_resize,
    head_mask,
    masked_stats,
    n4_correct,
    preprocess_patient,
    reference_grid,
    reorient,
    resample_to,
    subtraction,
    tumor_binary,
    tumor_box,
    zscore_in_mask,
)
from mmsurv.mri.qc import montage

PATIENT = "TCGA-AB-0042"
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
FLIP_XY = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
# index x -> physical y, index y -> physical -z, index z -> physical x (a permutation with a flip)
PERMUTED = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
_C, _S = math.cos(math.radians(25)), math.sin(math.radians(25))
ROTATED_Z = (_C, -_S, 0.0, _S, _C, 0.0, 0.0, 0.0, 1.0)


def _empty(size_xyz, spacing, origin=(0.0, 0.0, 0.0), direction=IDENTITY) -> sitk.Image:
    image = sitk.Image([int(n) for n in size_xyz], sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def _from_array(array_zyx: np.ndarray, like: sitk.Image) -> sitk.Image:
    image = sitk.GetImageFromArray(array_zyx)
    image.CopyInformation(like)
    return image


def _physical_points(image: sitk.Image) -> np.ndarray:
    """(z, y, x, 3) physical position (mm) of every voxel centre."""
    size = np.array(image.GetSize())
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")[::-1], -1)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    scaled = ijk * np.array(image.GetSpacing())
    return np.array(image.GetOrigin()) + scaled @ direction.T


def _blob(like: sitk.Image, centre_mm, sigma_mm=2.0) -> sitk.Image:
    """A Gaussian blob (peak 1000) centred at a physical point, sampled on ``like``'s grid."""
    d2 = ((_physical_points(like) - np.asarray(centre_mm)) ** 2).sum(-1)
    return _from_array((1000 * np.exp(-d2 / (2 * sigma_mm**2))).astype(np.float32), like)


# --- geometry -------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", [IDENTITY, FLIP_XY, PERMUTED, ROTATED_Z])
def test_reorient_to_lps_keeps_physical_positions(direction) -> None:
    image = _blob(_empty((20, 16, 12), (1.0, 1.5, 2.0), (5.0, -3.0, 7.0), direction), (8, -1, 15))
    out = reorient(image, "LPS")
    if direction != ROTATED_Z:  # an oblique image keeps its rotation
        np.testing.assert_allclose(out.GetDirection(), IDENTITY, atol=1e-9)
    peak = np.unravel_index(np.argmax(sitk.GetArrayViewFromImage(out)), out.GetSize()[::-1])
    peak_before = np.unravel_index(
        np.argmax(sitk.GetArrayViewFromImage(image)), image.GetSize()[::-1]
    )
    np.testing.assert_allclose(
        out.TransformIndexToPhysicalPoint([int(i) for i in peak[::-1]]),
        image.TransformIndexToPhysicalPoint([int(i) for i in peak_before[::-1]]),
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("spacing", "direction"),
    [
        ((1.3, 0.9, 2.0), IDENTITY),
        ((1.3, 0.9, 2.0), FLIP_XY),
        ((0.8, 1.7, 1.1), PERMUTED),
        ((1.2, 1.2, 1.6), ROTATED_Z),
    ],
    ids=["anisotropic", "flipped", "permuted", "rotated"],
)
def test_resampled_bright_point_keeps_its_physical_position(spacing, direction) -> None:
    """A blob centred at a known point, in an image of other spacing and orientation, lands
    within half a voxel of that point on the reference grid: its intensity centroid does, and
    its peak voxel lies within half a voxel of either grid (linear interpolation puts the
    peak on a sample of the moving image)."""
    point = np.array([3.7, -4.2, 5.9])
    size = np.round(44.0 / np.asarray(spacing)).astype(int)  # about 44 mm across
    centre_index = (size - 1) / 2
    direction_m = np.array(direction).reshape(3, 3)
    origin = -direction_m @ (centre_index * np.asarray(spacing))  # centred on (0, 0, 0)
    moving = reorient(_blob(_empty(size, spacing, tuple(origin), direction), point), "LPS")
    reference = _empty((36, 36, 36), (1.0, 1.0, 1.0), (-17.5, -17.5, -17.5))
    grid = reference_grid(reference, (1.25, 1.25, 1.25))
    out = resample_to(moving, grid, "linear")
    values = sitk.GetArrayFromImage(out).astype(np.float64)
    half = np.asarray(grid.GetSpacing()) / 2
    weights = np.where(values > 0.05 * values.max(), values, 0.0)
    centroid = (weights[..., None] * _physical_points(out)).sum((0, 1, 2)) / weights.sum()
    assert np.all(np.abs(centroid - point) <= half / 2), centroid - point
    peak = np.unravel_index(np.argmax(values), values.shape)
    peak_mm = np.array(out.TransformIndexToPhysicalPoint([int(i) for i in peak[::-1]]))
    assert np.linalg.norm(peak_mm - point) <= np.linalg.norm(half) + max(spacing) / 2 * np.sqrt(3)


def test_nearest_resampling_keeps_labels() -> None:
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[4:6, 4:6, 4:6] = 4
    labels[2, 2, 2] = 1
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing((2.0, 2.0, 2.0))
    out = resample_to(image, reference_grid(image, (1.0, 1.0, 1.0)), "nearest")
    assert out.GetPixelID() == sitk.sitkUInt8
    assert set(np.unique(sitk.GetArrayViewFromImage(out))) == {0, 1, 4}
    assert (sitk.GetArrayViewFromImage(out) == 4).sum() == 64  # 8 voxels of 2 mm -> 64 of 1 mm


@pytest.mark.parametrize("spacing", [None, (1.0, 1.0, 1.0), (2.0, 1.5, 3.0), (0.7, 0.7, 0.7)])
def test_reference_grid_covers_the_reference_extent(spacing) -> None:
    reference = _empty((30, 24, 18), (1.0, 1.25, 2.0), (4.0, 5.0, -6.0), FLIP_XY)
    grid = reference_grid(reference, spacing)
    expected = reference.GetSpacing() if spacing is None else spacing
    np.testing.assert_allclose(grid.GetSpacing(), expected)
    assert grid.GetDirection() == reference.GetDirection()
    extent = np.array(grid.GetSize()) * np.array(grid.GetSpacing())
    ref_extent = np.array(reference.GetSize()) * np.array(reference.GetSpacing())
    assert np.all(np.abs(extent - ref_extent) <= np.array(grid.GetSpacing()) / 2 + 1e-9)
    centre = grid.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in grid.GetSize()])
    ref_centre = reference.TransformContinuousIndexToPhysicalPoint(
        [(n - 1) / 2 for n in reference.GetSize()]
    )
    np.testing.assert_allclose(centre, ref_centre, atol=1e-9)
    if np.allclose(extent, ref_extent):  # then the outer voxel faces coincide
        first_face = grid.TransformContinuousIndexToPhysicalPoint((-0.5, -0.5, -0.5))
        ref_face = reference.TransformContinuousIndexToPhysicalPoint((-0.5, -0.5, -0.5))
        np.testing.assert_allclose(first_face, ref_face, atol=1e-9)
    if spacing is None:
        assert grid.GetSize() == reference.GetSize() and grid.GetOrigin() == reference.GetOrigin()


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        ({}, True),
        ({"origin": (0.5, 0.0, 0.0)}, True),
        ({"origin": (0.0, 0.0, 2.0)}, False),
        ({"spacing": (1.0, 1.0, 1.05)}, False),  # 31 voxels x 0.05 mm = 1.55 mm at the corner
        ({"direction": FLIP_XY}, False),
        ({"size": (32, 32, 31)}, False),
    ],
)
def test_check_same_geometry(change, ok) -> None:
    reference = _empty((32, 32, 32), (1.0, 1.0, 1.0), (10.0, 10.0, 10.0))
    mask = _empty(
        change.get("size", (32, 32, 32)),
        change.get("spacing", (1.0, 1.0, 1.0)),
        tuple(np.add((10.0, 10.0, 10.0), change.get("origin", (0.0, 0.0, 0.0)))),
        change.get("direction", IDENTITY),
    )
    if ok:
        check_same_geometry(mask, reference, 1.0, "tumour mask", patient_id=PATIENT)
        return
    with pytest.raises(VolumeError, match="tumour mask") as info:
        check_same_geometry(
            mask, reference, 1.0, "tumour mask", patient_id=PATIENT, path="/d/mask.nii.gz"
        )
    assert PATIENT in str(info.value) and "/d/mask.nii.gz" in str(info.value)


# --- phantoms -------------------------------------------------------------------------------


def _phantom(n=32, spacing=3.0, noise=0.02, seed=0, bias=True):
    """Two-class ellipsoid phantom times a smooth exp(quadratic) field, plus noise.

    Returns the image, the (z, y, x) class array (0 background, 1 outer, 2 inner) and the true
    log field.
    """
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1.0, 1.0, n)] * 3, indexing="ij")
    r = (x / 0.85) ** 2 + (y / 0.75) ** 2 + (z / 0.7) ** 2
    classes = np.zeros((n, n, n), np.uint8)
    classes[r < 1.0] = 1
    classes[r < 0.45] = 2
    log_b = 0.35 * x + 0.25 * y - 0.2 * z + 0.3 * (x * x - 1 / 3) - 0.25 * (y * y - 1 / 3)
    log_b = log_b + 0.2 * x * y if bias else np.zeros_like(x)
    true = np.array([0.0, 600.0, 1000.0])[classes]
    image = true * np.exp(log_b) * (1.0 + noise * rng.standard_normal(true.shape))
    out = sitk.GetImageFromArray(image.astype(np.float32))
    out.SetSpacing((spacing,) * 3)
    return out, classes, log_b


def _mask_of(array_zyx: np.ndarray, like: sitk.Image) -> sitk.Image:
    return _from_array(array_zyx.astype(np.uint8), like)


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_n4_removes_most_of_a_smooth_multiplicative_bias() -> None:
    """Measured on this phantom (32^3, 3 mm, shrink 2): the CV inside each tissue class falls
    from 0.21 / 0.12 to the 0.02 noise floor (6-10x); the test asks for at least 4x, and for
    the estimated log field to match the true one to 0.05 (RMS, after removing the mean)."""
    image, classes, true_log = _phantom()
    mask = _mask_of(classes > 0, image)
    corrected, log_field = n4_correct(image, mask, shrink_factor=2, iterations=[50, 50, 30, 20])
    assert corrected.GetPixelID() == log_field.GetPixelID() == sitk.sitkFloat32
    assert corrected.GetSize() == log_field.GetSize() == image.GetSize()
    before, after = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(corrected)
    for k in (1, 2):
        inside = classes == k
        assert _cv(after[inside]) <= _cv(before[inside]) / 4, f"class {k}"
    estimate = sitk.GetArrayFromImage(log_field)[classes > 0]
    residual = estimate - true_log[classes > 0]
    assert np.sqrt(np.mean((residual - residual.mean()) ** 2)) < 0.05
    np.testing.assert_allclose(after, before / np.exp(sitk.GetArrayFromImage(log_field)), rtol=1e-5)


def test_head_mask_keeps_the_largest_part_and_fills_holes() -> None:
    image, classes, _ = _phantom(n=32, bias=False)
    array = sitk.GetArrayFromImage(image)
    z, y, x = np.meshgrid(*[np.arange(32)] * 3, indexing="ij")
    hole = (z - 16) ** 2 + (y - 16) ** 2 + (x - 16) ** 2 <= 9
    array[hole] = 0.0  # a dark ventricle, enclosed
    array[1:3, 1:3, 1:3] = 900.0  # a small bright speck outside the head
    mask = sitk.GetArrayFromImage(head_mask(_from_array(array, image)))
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    head = classes > 0
    dice = 2 * (mask.astype(bool) & head).sum() / (mask.sum() + head.sum())
    assert dice > 0.95
    assert mask[hole].all()
    assert not mask[1:3, 1:3, 1:3].any()


def test_head_mask_of_an_empty_image_is_an_error() -> None:
    with pytest.raises(VolumeError, match="empty"):
        head_mask(_empty((8, 8, 8), (1.0, 1.0, 1.0)))


def test_zscore_in_mask_has_mean_0_sd_1_and_zeros_outside() -> None:
    image, classes, _ = _phantom(n=24)
    mask = _mask_of(classes > 0, image)
    out = zscore_in_mask(image, mask)
    assert out.GetPixelID() == sitk.sitkFloat32 and out.GetOrigin() == image.GetOrigin()
    values = sitk.GetArrayFromImage(out).astype(np.float64)
    inside = classes > 0
    assert abs(values[inside].mean()) < 1e-4
    assert abs(values[inside].std() - 1.0) < 1e-4
    assert np.all(values[~inside] == 0.0)
    mean, sd, cv = masked_stats(image, mask)
    assert cv == pytest.approx(sd / mean)


@pytest.mark.parametrize(
    ("image_value", "mask_value", "message"), [(5.0, 0, "empty"), (5.0, 1, "constant")]
)
def test_zscore_errors(image_value, mask_value, message) -> None:
    image = _from_array(np.full((6, 6, 6), image_value, np.float32), _empty((6, 6, 6), (1,) * 3))
    mask = _mask_of(np.full((6, 6, 6), mask_value), image)
    with pytest.raises(VolumeError, match=message):
        zscore_in_mask(image, mask)


# --- tumour box and crop ----------------------------------------------------------------------


def _tumour_image(lo_zyx, hi_zyx, size_xyz=(30, 26, 22), spacing=(1.0, 1.5, 2.0)) -> sitk.Image:
    labels = np.zeros(size_xyz[::-1], np.uint8)
    labels[lo_zyx[0] : hi_zyx[0], lo_zyx[1] : hi_zyx[1], lo_zyx[2] : hi_zyx[2]] = 2
    labels[lo_zyx[0], lo_zyx[1], lo_zyx[2]] = 4
    return _from_array(labels, _empty(size_xyz, spacing, (3.0, -2.0, 1.0), FLIP_XY))


@pytest.mark.parametrize(
    ("lo_zyx", "hi_zyx", "margin_mm"),
    [((8, 9, 10), (12, 14, 17), 0.0), ((8, 9, 10), (12, 14, 17), 5.0), ((0, 0, 25), (5, 6, 30), 4)],
    ids=["no-margin", "margin-5mm", "clipped-at-edge"],
)
def test_tumor_box_contains_every_tumour_voxel(lo_zyx, hi_zyx, margin_mm) -> None:
    mask = _tumour_image(lo_zyx, hi_zyx)
    box = tumor_box(mask, margin_mm)
    lo, size = np.array(box[0]), np.array(box[1])
    assert np.all(lo >= 0) and np.all(lo + size <= np.array(mask.GetSize()))
    grid = box_grid(mask, box, (16, 12, 8))
    tumour_zyx = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)
    for zyx in tumour_zyx:
        point = mask.TransformIndexToPhysicalPoint([int(i) for i in zyx[::-1]])
        index = np.array(grid.TransformPhysicalPointToContinuousIndex(point))
        assert np.all(index >= -0.5 - 1e-9) and np.all(index <= np.array((16, 12, 8)) - 0.5 + 1e-9)
    tumour_lo, tumour_hi = tumour_zyx.min(0)[::-1], tumour_zyx.max(0)[::-1]
    pad = np.ceil(margin_mm / np.array(mask.GetSpacing()))
    expected_lo = np.maximum(tumour_lo - pad, 0)
    expected_hi = np.minimum(tumour_hi + pad, np.array(mask.GetSize()) - 1)
    np.testing.assert_array_equal(lo, expected_lo)
    np.testing.assert_array_equal(lo + size - 1, expected_hi)


def test_tumor_box_of_an_empty_mask_is_an_error() -> None:
    with pytest.raises(VolumeError, match="empty"):
        tumor_box(_mask_of(np.zeros((5, 5, 5)), _empty((5, 5, 5), (1,) * 3)), 3.0)


@pytest.mark.parametrize("size_vox", [(16, 12, 8), (9, 9, 9)])
def test_crop_resize_has_the_configured_shape_and_holds_the_tumour(size_vox) -> None:
    mask = _tumour_image((8, 9, 10), (12, 14, 17))
    box = tumor_box(mask, 3.0)
    crop = crop_resize(mask, box, size_vox, "nearest")
    assert crop.shape == size_vox[::-1] and crop.dtype == np.uint8
    assert set(np.unique(crop)) >= {0, 2}
    intensity = crop_resize(sitk.Cast(mask, sitk.sitkFloat32), box, size_vox)
    assert intensity.shape == size_vox[::-1] and intensity.dtype == np.float32


def test_crop_without_resizing_is_the_box_of_the_array() -> None:
    rng = np.random.default_rng(3)
    like = _empty((20, 18, 16), (1.0, 1.5, 2.0), (1.0, 2.0, 3.0), FLIP_XY)
    image = _from_array(rng.random((16, 18, 20)).astype(np.float32), like)
    box = ((3, 4, 5), (10, 8, 6))  # (x, y, z)
    crop = crop_resize(image, box, box[1], "linear")
    expected = sitk.GetArrayViewFromImage(image)[5:11, 4:12, 3:13]
    np.testing.assert_allclose(crop, expected, atol=1e-5)


def test_subtraction_is_the_voxelwise_difference() -> None:
    like = _empty((6, 5, 4), (1.0, 1.0, 1.0))
    a = _from_array(np.arange(120, dtype=np.float32).reshape(4, 5, 6), like)
    b = _from_array(np.ones((4, 5, 6), np.float32), like)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(subtraction(a, b)), sitk.GetArrayFromImage(a) - 1.0
    )


def test_tumor_binary_rejects_unknown_labels() -> None:
    labels = _mask_of(np.array([[[0, 1, 3]]]), _empty((3, 1, 1), (1,) * 3))
    with pytest.raises(VolumeError, match=r"labels \[3\]"):
        tumor_binary(labels, (1, 2, 4), patient_id=PATIENT)
    binary = tumor_binary(labels, (1, 3))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(binary), [[[0, 1, 1]]])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"spacing_mm": (1.0, 0.0, 1.0)},
        {"crop_size": (64, 64)},
        {"n4_shrink": 0},
        {"reference": ("t2w",)},
        {"subtraction": True, "sequences": ("t1ce", "t2")},
        {"margin_mm": -1.0},
    ],
)
def test_invalid_settings_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError, match="invalid MRI preprocessing settings"):
        PreprocessSettings(**kwargs)


def test_settings_store_lists_as_tuples() -> None:
    settings = PreprocessSettings(crop_size=[8, 8, 8], spacing_mm=[2, 2, 2], sequences=["t1"])
    assert settings.crop_size == (8, 8, 8) and settings.spacing_mm == (2.0, 2.0, 2.0)


# --- one patient end to end ---------------------------------------------------------------


_CONTRAST = {"t1": (600, 900, 400), "t1ce": (620, 900, 1300), "t2": (900, 700, 1200)}
_CONTRAST["flair"] = (700, 650, 1100)


def _head(points_mm: np.ndarray) -> np.ndarray:
    """Tissue class at physical points: 0 air, 1 head, 2 inner, 3 tumour."""
    x, y, z = (points_mm[..., i] for i in range(3))
    r = (x / 21) ** 2 + (y / 19) ** 2 + (z / 18) ** 2
    tumour = (x - 6) ** 2 + (y + 4) ** 2 + (z - 3) ** 2 <= 5.5**2
    return np.select([tumour, r < 0.4, r < 1.0], [3, 2, 1], 0)


def _sequence(like: sitk.Image, name: str, seed: int) -> sitk.Image:
    points = _physical_points(like)
    classes = _head(points)
    signal = np.array([0.0, *_CONTRAST[name]])[classes]
    log_b = 0.004 * points[..., 0] - 0.003 * points[..., 1] + 3e-4 * points[..., 2] ** 2
    noise = np.random.default_rng(seed).standard_normal(classes.shape)
    return _from_array((signal * np.exp(log_b) * (1 + 0.02 * noise)).astype(np.float32), like)


def _write_study(root: Path, mask_origin_shift=0.0, empty_mask=False) -> tuple[dict, Path]:
    """Four sequences as NIfTI: t1 and t1ce on a 1.5 mm grid with x/y flipped, t2 and flair on
    a 2 mm identity grid; the mask on the t1ce grid. All about 48 mm across, 32^3 at most."""
    fine = _empty((32, 32, 32), (1.5, 1.5, 1.5), (23.25, 23.25, -23.25), FLIP_XY)
    coarse = _empty((24, 24, 24), (2.0, 2.0, 2.0), (-23.0, -23.0, -23.0))
    files = {}
    for seed, (name, like) in enumerate(
        [("t1", fine), ("t1ce", fine), ("t2", coarse), ("flair", coarse)]
    ):
        files[name] = root / f"{name}.nii.gz"
        write_volume(_sequence(like, name, seed), files[name])
    labels = np.where(_head(_physical_points(fine)) == 3, 4, 0).astype(np.uint8)
    labels[(labels == 4) & (np.arange(32)[None, None, :] % 2 == 0)] = 1
    if empty_mask:
        labels[:] = 0
    mask = _from_array(labels, fine)
    mask.SetOrigin(tuple(np.add(fine.GetOrigin(), (0.0, 0.0, mask_origin_shift))))
    write_volume(mask, root / "mask.nii.gz")
    return files, root / "mask.nii.gz"


SETTINGS = PreprocessSettings(
    spacing_mm=(2.0, 2.0, 2.0),
    n4_shrink=1,
    crop_size=(16, 12, 8),
    brain_size=(16, 16, 8),
    subtraction=True,
)


def test_preprocess_patient_end_to_end(tmp_path: Path) -> None:
    files, mask_path = _write_study(tmp_path / "in")
    out = tmp_path / "out" / PATIENT
    record, data = preprocess_patient(PATIENT, files, mask_path, SETTINGS, out)

    channels = ["t1", "t1ce", "t2", "flair", "t1ce_t1"]
    expected_files = {f"{c}.nii.gz" for c in channels} | {
        "mask.nii.gz",
        "head_mask.nii.gz",
        "crop.npz",
        "brain.npz",
    }
    assert {p.name for p in out.iterdir()} == expected_files
    with np.load(out / "crop.npz") as crop:
        assert set(crop.files) == {*channels, "mask"}
        for c in channels:
            assert crop[c].shape == (8, 12, 16) and crop[c].dtype == np.float32
        assert crop["mask"].dtype == np.uint8 and set(np.unique(crop["mask"])) >= {0, 1, 4}
    with np.load(out / "brain.npz") as brain:  # the head's box, whole tumour inside
        assert set(brain.files) == {*channels, "mask"}
        assert all(brain[c].shape == (8, 16, 16) for c in channels)
        assert brain["mask"].dtype == np.uint8 and set(np.unique(brain["mask"])) >= {0, 1, 4}
        assert np.abs(brain["t1"]).max() > 0 and brain["mask"].sum() < brain["mask"].size

    t1 = read_volume(out / "t1.nii.gz")
    assert t1.GetSize() == (24, 24, 24)
    np.testing.assert_allclose(t1.GetSpacing(), (2.0, 2.0, 2.0))
    np.testing.assert_allclose(t1.GetDirection(), IDENTITY)  # reoriented to LPS
    head = sitk.GetArrayFromImage(read_mask(out / "head_mask.nii.gz")) > 0
    for c in ("t1", "t2"):
        values = sitk.GetArrayFromImage(read_volume(out / f"{c}.nii.gz"))
        assert abs(values[head].mean()) < 1e-3 and abs(values[head].std() - 1) < 1e-3
        assert np.all(values[~head] == 0)
    labels = sitk.GetArrayFromImage(read_mask(out / "mask.nii.gz"))
    assert set(np.unique(labels)) == {0, 1, 4}

    assert record["patient_id"] == PATIENT and record["reference"] == "t1ce"
    assert record["orientation"] == "LPS" and record["size"] == [24, 24, 24]
    assert record["spacing_mm"] == [2.0, 2.0, 2.0] and record["crop_size"] == [16, 12, 8]
    assert record["channels"] == channels
    assert set(record["box"]) == {"lo", "size"} and len(record["box"]["lo"]) == 3
    assert record["brain_size"] == [16, 16, 8]
    head_lo, head_size = np.array(record["brain_box"]["lo"]), np.array(record["brain_box"]["size"])
    centre = np.array(record["box"]["lo"]) + np.array(record["box"]["size"]) / 2
    assert np.all(head_lo <= centre) and np.all(centre < head_lo + head_size)  # tumour in head
    for c in ("t1", "t1ce", "t2", "flair"):
        stats = record["stats"][c]
        assert set(stats) == {"cv_before", "cv_after", "mean", "sd"}
        assert 0 < stats["cv_after"] < stats["cv_before"] * 1.05
    assert {"read", "reorient", "resample", "head_mask", "n4_zscore", "crop", "write"} <= set(
        record["seconds"]
    )
    json.dumps(record, allow_nan=False)

    png = montage(data, tmp_path / "qc" / f"{PATIENT}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data.channels == ("t1", "t1ce", "t2", "flair")
    assert data.tumor.any() and data.before["t1"].shape == (24, 24)


def test_preprocess_without_n4_or_resampling(tmp_path: Path) -> None:
    files, mask_path = _write_study(tmp_path / "in")
    settings = PreprocessSettings(spacing_mm=None, n4=False, crop_size=(8, 8, 8))
    record, data = preprocess_patient(PATIENT, files, mask_path, settings, tmp_path / "out")
    assert record["size"] == [32, 32, 32] and record["spacing_mm"] == [1.5, 1.5, 1.5]
    assert record["stats"]["t1"]["cv_before"] == record["stats"]["t1"]["cv_after"]
    assert "t1ce_t1" not in record["channels"]
    np.testing.assert_allclose(data.bias["t2"], 1.0)


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("missing_file", "t2.nii.gz"),
        ("missing_sequence", "flair"),
        ("empty_mask", "mask.nii.gz"),
        ("mask_geometry", "mask.nii.gz"),
        ("dicom_folder_without_series", "flair_dicom"),
    ],
)
def test_bad_inputs_name_the_patient_and_the_file(tmp_path: Path, case: str, named: str) -> None:
    files, mask_path = _write_study(
        tmp_path,
        mask_origin_shift=3.0 if case == "mask_geometry" else 0.0,
        empty_mask=case == "empty_mask",
    )
    if case == "missing_file":
        files["t2"].unlink()
    elif case == "missing_sequence":
        del files["flair"]
    elif case == "dicom_folder_without_series":
        files["flair"] = tmp_path / "flair_dicom"
        files["flair"].mkdir()
    with pytest.raises(VolumeError) as info:
        preprocess_patient(PATIENT, files, mask_path, SETTINGS, tmp_path / "out")
    message = str(info.value)
    assert PATIENT in message and named in message, message
    assert not (tmp_path / "out").exists()


# --- scans without a ground-truth mask: weak labels ---------------------------------------


def test_weak_mask_from_a_file_is_binarised_and_crops_the_tumour(tmp_path: Path) -> None:
    """A user-supplied weak mask (any tumour labels) stands in for the missing mask: binary
    labels on the grid, ``weak_mask`` in the crops, the source in the record and montage."""
    files, mask_path = _write_study(tmp_path / "in")
    out = tmp_path / "out"
    record, data = preprocess_patient(PATIENT, files, None, SETTINGS, out, weak=mask_path)
    assert record["mask_source"] == "weak_file" and data.mask_source == "weak_file"
    labels = sitk.GetArrayFromImage(read_mask(out / "mask.nii.gz"))
    assert set(np.unique(labels)) == {0, 1}  # 1 and 4 merged: tumour vs background
    with np.load(out / "crop.npz") as crop, np.load(out / "brain.npz") as brain:
        assert "mask" not in crop.files and "mask" not in brain.files
        assert crop["weak_mask"].any() and brain["weak_mask"].any()
        assert set(np.unique(crop["weak_mask"])) == {0, 1}
    gt, _ = preprocess_patient(PATIENT, files, mask_path, SETTINGS, tmp_path / "gt")
    assert gt["mask_source"] == "ground_truth" and record["box"] == gt["box"]


def test_weak_mask_from_the_network_on_the_whole_brain_input(tmp_path: Path) -> None:
    """The predictor sees the whole-brain arrays of every channel at brain_size and its 0/1
    output (there) is put back on the grid, where it gives the tumour box."""
    files, mask_path = _write_study(tmp_path / "in")
    gt, _ = preprocess_patient(PATIENT, files, mask_path, SETTINGS, tmp_path / "gt")
    with np.load(tmp_path / "gt" / "brain.npz") as brain:
        truth = (brain["mask"] > 0).astype(np.uint8)
    seen = {}

    def predictor(arrays):
        seen.update({k: v.shape for k, v in arrays.items()})
        return truth

    record, data = preprocess_patient(PATIENT, files, None, SETTINGS, tmp_path / "w", predictor)
    assert record["mask_source"] == "weak_network" and data.mask_source == "weak_network"
    expected = tuple(SETTINGS.brain_size[::-1])
    assert seen == {c: expected for c in ("t1", "t1ce", "t2", "flair", "t1ce_t1")}
    with np.load(tmp_path / "w" / "brain.npz") as brain:
        np.testing.assert_array_equal(brain["weak_mask"], truth)
    weak = sitk.GetArrayFromImage(read_mask(tmp_path / "w" / "mask.nii.gz")) > 0
    true = sitk.GetArrayFromImage(read_mask(tmp_path / "gt" / "mask.nii.gz")) > 0
    dice = 2 * (weak & true).sum() / (weak.sum() + true.sum())
    assert dice > 0.6  # the brain grid is coarser than the patient grid
    assert np.all(np.abs(np.subtract(record["box"]["lo"], gt["box"]["lo"])) <= 2)


@pytest.mark.parametrize(
    ("weak", "message"),
    [
        (None, "no tumour mask, and weak labels are off"),
        (lambda arrays: np.zeros((8, 16, 16), np.uint8), "weak segmentation found no tumour"),
        (lambda arrays: np.ones((4, 4, 4), np.uint8), "weak mask of shape"),
    ],
)
def test_weak_label_errors_name_the_patient(tmp_path: Path, weak, message) -> None:
    files, _ = _write_study(tmp_path / "in")
    with pytest.raises(VolumeError, match=message) as info:
        preprocess_patient(PATIENT, files, None, SETTINGS, tmp_path / "out", weak)
    assert PATIENT in str(info.value)
