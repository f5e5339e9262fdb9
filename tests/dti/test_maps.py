"""DTI maps: tensor fit of a synthetic DWI, choice of source, resampling onto the mask grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.dti.maps import MAPS, fit_tensor, load_maps, to_mask_grid
from mmsurv.mri.io import VolumeError, read_mask
from mmsurv.mri.preprocess import check_same_geometry

SIZE = (20, 16, 12)  # (x, y, z) voxels
ARRAY = SIZE[::-1]  # (z, y, x)
SPACING = (2.0, 2.5, 3.0)
ORIGIN = (10.0, -20.0, 5.0)
ANGLE = np.deg2rad(7.0)
DIRECTION = np.array(
    [[np.cos(ANGLE), -np.sin(ANGLE), 0.0], [np.sin(ANGLE), np.cos(ANGLE), 0.0], [0.0, 0.0, 1.0]]
)
BORDER = 3  # voxels of air around the tissue
CUBE = (slice(4, 8), slice(5, 10), slice(6, 13))  # (z, y, x) voxels of the anisotropic tissue
AD, RD, ISO = 1.7e-3, 0.3e-3, 0.8e-3  # mm^2/s
FIBRE = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)  # voxel (x, y, z) axes
MD_CUBE = (AD + 2 * RD) / 3
FA_CUBE = np.sqrt(1.5 * ((AD - MD_CUBE) ** 2 + 2 * (RD - MD_CUBE) ** 2) / (AD**2 + 2 * RD**2))


def _gradients(n: int = 20, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """b-values (2 b=0, n at 1000 s/mm^2) and (n + 2, 3) unit b-vectors."""
    g = np.random.default_rng(seed).standard_normal((n, 3))
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    return np.r_[0.0, 0.0, np.full(n, 1000.0)], np.r_[np.zeros((2, 3)), g]


def _signal(bvals: np.ndarray, bvecs: np.ndarray, noise: float = 10.0) -> np.ndarray:
    """(z, y, x, n) DWI: S0 = 1000 inside a border of air, known tensors."""
    tensor = np.broadcast_to(ISO * np.eye(3), (*ARRAY, 3, 3)).copy()
    tensor[CUBE] = RD * np.eye(3) + (AD - RD) * np.outer(FIBRE, FIBRE)
    s0 = np.where(_tissue(), 1000.0, 0.0)
    adc = np.einsum("ni,zyxij,nj->zyxn", bvecs, tensor, bvecs)
    signal = s0[..., None] * np.exp(-bvals * adc)
    rng = np.random.default_rng(0)
    return np.hypot(
        signal + noise * rng.standard_normal(signal.shape),
        noise * rng.standard_normal(signal.shape),
    )


def _tissue() -> np.ndarray:
    """(z, y, x) boolean: the voxels with signal (inside the air border)."""
    tissue = np.zeros(ARRAY, dtype=bool)
    tissue[BORDER:-BORDER, BORDER:-BORDER, BORDER:-BORDER] = True
    return tissue


def _reference() -> sitk.Image:
    image = sitk.Image(list(SIZE), sitk.sitkUInt8)
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    image.SetDirection(DIRECTION.ravel().tolist())
    return image


def _write_fsl(folder: Path, bvals: np.ndarray, bvecs: np.ndarray) -> tuple[Path, Path]:
    bval, bvec = folder / "dwi.bval", folder / "dwi.bvec"
    bval.write_text(" ".join(f"{b:g}" for b in bvals) + "\n")
    bvec.write_text("".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in bvecs.T))
    return bval, bvec


def _write_dwi_sitk(folder: Path, data: np.ndarray) -> Path:
    """(z, y, x, n) data as a 4-D NIfTI written by SimpleITK on the test grid."""
    image = sitk.GetImageFromArray(np.moveaxis(data, -1, 0).astype(np.float32), isVector=False)
    direction = np.eye(4)
    direction[:3, :3] = DIRECTION
    image.SetSpacing((*SPACING, 1.0))
    image.SetOrigin((*ORIGIN, 0.0))
    image.SetDirection(direction.ravel().tolist())
    path = folder / "dwi.nii.gz"
    sitk.WriteImage(image, str(path))
    return path


def _study(folder: Path, n: int = 20, **signal_kw) -> tuple[Path, Path, Path]:
    bvals, bvecs = _gradients(n)
    dwi = _write_dwi_sitk(folder, _signal(bvals, bvecs, **signal_kw))
    return (dwi, *_write_fsl(folder, bvals, bvecs))


def _arrays(maps: dict[str, sitk.Image]) -> dict[str, np.ndarray]:
    return {k: sitk.GetArrayFromImage(v) for k, v in maps.items()}


def test_tensor_fit_recovers_the_known_tensor(tmp_path: Path) -> None:
    maps, brain = fit_tensor(*_study(tmp_path), patient="P1")
    assert list(maps) == list(MAPS)
    a = _arrays(maps)
    assert all(v.dtype == np.float32 and v.shape == ARRAY for v in a.values())
    cube = np.zeros(ARRAY, dtype=bool)
    cube[CUBE] = True
    inside = sitk.GetArrayFromImage(brain) > 0  # median_otsu: the tissue, edges eroded
    tissue = _tissue()
    assert (inside & tissue).sum() > 0.7 * tissue.sum() and not (inside & ~tissue).any()
    assert inside[cube].all()
    iso = inside & ~cube
    for name, true, voxel, median in (
        ("fa", FA_CUBE, 0.06, 0.015),
        ("md", MD_CUBE, 0.06, 0.015),
        ("ad", AD, 0.08, 0.02),
        ("rd", RD, 0.25, 0.05),
    ):  # relative error of every voxel of the cube, and of the cube's median
        np.testing.assert_allclose(a[name][cube], true, rtol=voxel)
        np.testing.assert_allclose(np.median(a[name][cube]), true, rtol=median)
    assert np.median(a["fa"][iso]) < 0.05
    np.testing.assert_allclose(np.median(a["md"][iso]), ISO, rtol=0.02)
    assert all((v[~inside] == 0).all() for v in a.values())
    for image in (*maps.values(), brain):
        check_same_geometry(image, _reference(), 1e-4)


def test_fa_of_a_nibabel_dwi_lands_on_the_mask_voxels(tmp_path: Path) -> None:
    """A DWI and a mask written by nibabel with one affine: the FA cube is the mask's cube."""
    bvals, bvecs = _gradients()
    data = _signal(bvals, bvecs)
    affine = np.diag([-2.0, 2.5, 3.0, 1.0])
    affine[:3, 3] = (40.0, -30.0, 12.0)
    dwi = nib.Nifti1Image(np.transpose(data, (2, 1, 0, 3)).astype(np.float32), affine)
    nib.save(dwi, tmp_path / "dwi.nii.gz")
    cube = np.zeros(ARRAY, dtype=np.uint8)
    cube[CUBE] = 1
    nib.save(nib.Nifti1Image(cube.transpose(2, 1, 0), affine), tmp_path / "mask.nii.gz")
    maps, _ = fit_tensor(tmp_path / "dwi.nii.gz", *_write_fsl(tmp_path, bvals, bvecs))
    mask = read_mask(tmp_path / "mask.nii.gz")
    check_same_geometry(maps["fa"], mask, 1e-4)
    fa = sitk.GetArrayFromImage(maps["fa"])
    np.testing.assert_array_equal(fa > 0.5, sitk.GetArrayFromImage(mask) > 0)
    assert (fa[~_tissue()] == 0).all()
    written = tmp_path / "fa.nii.gz"
    sitk.WriteImage(maps["fa"], str(written))
    np.testing.assert_allclose(nib.load(written).affine, affine, atol=1e-4)


def test_a_given_brain_mask_limits_the_fit(tmp_path: Path) -> None:
    brain = _reference()
    values = np.zeros(ARRAY, dtype=np.uint8)
    values[5:7] = 1
    mask = sitk.GetImageFromArray(values)
    mask.CopyInformation(brain)
    maps, used = fit_tensor(*_study(tmp_path), brain_mask=mask, fit_method="OLS")
    md = sitk.GetArrayFromImage(maps["md"])
    assert (md[values == 0] == 0).all() and (md[values > 0] > 0).all()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(used), values)
    with pytest.raises(VolumeError, match="brain mask"):
        fit_tensor(*_study(tmp_path), brain_mask=sitk.Image([3, 3, 3], sitk.sitkUInt8))


def test_volume_and_gradient_mismatches_are_errors(tmp_path: Path) -> None:
    dwi, bval, bvec = _study(tmp_path)
    bvals, bvecs = _gradients()
    short = tmp_path / "short"
    short.mkdir()
    with pytest.raises(VolumeError, match=r"patient P7.*22 volumes.*21 b-values"):
        fit_tensor(dwi, *_write_fsl(short, bvals[:-1], bvecs[:-1]), patient="P7")
    no_b0 = tmp_path / "no_b0"
    no_b0.mkdir()
    bvals_no_b0 = np.where(bvals == 0, 1000.0, bvals)
    bvecs_no_b0 = np.where(bvals[:, None] == 0, [[1.0, 0.0, 0.0]], bvecs)
    with pytest.raises(VolumeError, match="no b=0"):
        fit_tensor(dwi, *_write_fsl(no_b0, bvals_no_b0, bvecs_no_b0), patient="P7")
    with pytest.raises(VolumeError, match="4-D"):
        fit_tensor(_flat(tmp_path), bval, bvec)
    with pytest.raises(VolumeError, match="not found"):
        fit_tensor(tmp_path / "missing.nii.gz", bval, bvec, patient="P7")
    with pytest.raises(ValueError, match="patient P7: DTI fit_method 'bogus'"):
        fit_tensor(dwi, bval, bvec, fit_method="bogus", patient="P7")


def _flat(folder: Path) -> Path:
    path = folder / "flat.nii.gz"
    sitk.WriteImage(sitk.Image(list(SIZE), sitk.sitkFloat32), str(path))
    return path


def test_too_few_or_coplanar_directions_are_errors(tmp_path: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    with pytest.raises(VolumeError, match="5 distinct diffusion direction"):
        fit_tensor(*_study(few, n=5))
    coplanar = tmp_path / "coplanar"
    coplanar.mkdir()
    angles = np.linspace(0.0, np.pi, 8, endpoint=False)
    flat = np.stack([np.cos(angles), np.sin(angles), np.zeros(8)], axis=1)
    bvals, bvecs = np.r_[0.0, np.full(8, 1000.0)], np.r_[np.zeros((1, 3)), flat]
    dwi = _write_dwi_sitk(coplanar, _signal(bvals, bvecs))
    with pytest.raises(VolumeError, match="non-coplanar"):
        fit_tensor(dwi, *_write_fsl(coplanar, bvals, bvecs))


GIVEN = {"fa": 0.5, "md": 0.8e-3, "ad": 1.4e-3, "rd": 0.5e-3}  # constant maps, FA and mm^2/s


def _write_maps(
    folder: Path, reference: sitk.Image, values: dict[str, float] = GIVEN
) -> dict[str, str]:
    files = {}
    for name in MAPS:
        shape = reference.GetSize()[::-1]
        image = sitk.GetImageFromArray(np.full(shape, values[name], np.float32))
        image.CopyInformation(reference)
        files[name] = str(folder / f"{name}.nii.gz")
        sitk.WriteImage(image, files[name])
    return files


def test_load_maps_chooses_its_source(tmp_path: Path) -> None:
    dwi, bval, bvec = _study(tmp_path)
    raw = {"dwi": str(dwi), "bval": str(bval), "bvec": str(bvec), "mask": "m.nii.gz"}
    given = _write_maps(tmp_path, _reference())
    maps, source = load_maps(given, "P2")
    assert source == "given" and list(maps) == list(MAPS)
    assert sitk.GetArrayFromImage(maps["ad"]).mean() == pytest.approx(1.4e-3)
    maps, source = load_maps({**raw, **given}, "P2")
    assert source == "given"
    maps, source = load_maps(raw, "P2", fit_method="OLS")
    assert source == "tensor_fit" and list(maps) == list(MAPS)
    partial = {k: v for k, v in {**raw, **given}.items() if k not in ("rd", "bvec")}
    with pytest.raises(VolumeError, match=r"patient P2.*missing rd.*missing bvec.*ad, bval"):
        load_maps(partial, "P2")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("md", 0.8, r"MD map must be in mm\^2/s.*median 0\.8"),  # 10^-3 mm^2/s
        ("rd", 5e-10, r"RD map must be in mm\^2/s"),  # m^2/s
        ("fa", 500.0, r"FA map must lie in \[0, 1\]"),  # FA x 1000
    ],
)
def test_given_maps_in_other_units_are_errors(
    tmp_path: Path, name: str, value: float, message: str
) -> None:
    files = _write_maps(tmp_path, _reference(), {**GIVEN, name: value})
    with pytest.raises(VolumeError, match=rf"patient P4.*{name}\.nii\.gz.*{message}"):
        load_maps(files, "P4")


def test_given_maps_must_share_one_grid(tmp_path: Path) -> None:
    files = _write_maps(tmp_path, _reference())
    moved = _reference()
    moved.SetOrigin((ORIGIN[0] + 5.0, ORIGIN[1], ORIGIN[2]))
    other = tmp_path / "other"
    other.mkdir()
    files["md"] = _write_maps(other, moved)["md"]
    with pytest.raises(VolumeError, match=r"patient P3.*md\.nii\.gz.*DTI map 'md'"):
        load_maps(files, "P3")


def _cube_map(reference: sitk.Image) -> sitk.Image:
    values = np.zeros(reference.GetSize()[::-1], dtype=np.float32)
    values[CUBE] = 1.0
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(reference)
    return image


def test_same_grid_is_left_alone() -> None:
    maps = {name: _cube_map(_reference()) for name in MAPS}
    out, resampled = to_mask_grid(maps, _reference())
    assert resampled is False and all(out[k] is maps[k] for k in MAPS)


def test_maps_are_resampled_onto_the_mask_grid() -> None:
    """A bright cube of the maps lands on the mask-grid voxels inside the same physical cube."""
    maps = {name: _cube_map(_reference()) for name in MAPS}
    mask = sitk.Image([28, 26, 24], sitk.sitkUInt8)
    mask.SetSpacing((1.5, 1.5, 1.5))
    mask.SetOrigin((ORIGIN[0] - 3.3, ORIGIN[1] + 1.7, ORIGIN[2] - 2.0))
    mask.SetDirection(np.eye(3).ravel().tolist())
    out, resampled = to_mask_grid(maps, mask)
    assert resampled
    for image in out.values():
        check_same_geometry(image, mask, 1e-6)
        assert image.GetPixelID() == sitk.sitkFloat32
    fa = sitk.GetArrayFromImage(out["fa"])
    source = maps["fa"]
    lo = np.array([c.start for c in CUBE[::-1]], dtype=float)  # (x, y, z) voxel range of the cube
    hi = np.array([c.stop - 1 for c in CUBE[::-1]], dtype=float)
    inner = outer = 0
    for index in np.ndindex(*mask.GetSize()):
        point = mask.TransformIndexToPhysicalPoint(index)
        continuous = np.array(source.TransformPhysicalPointToContinuousIndex(point))
        value = fa[index[::-1]]
        if ((continuous >= lo + 0.01) & (continuous <= hi - 0.01)).all():
            assert value == pytest.approx(1.0, abs=1e-5)
            inner += 1
        elif ((continuous < lo - 1.0) | (continuous > hi + 1.0)).any():
            assert value == 0.0
            outer += 1
    assert inner > 50 and outer > 500


def test_disjoint_geometry_is_an_error() -> None:
    maps = {name: _cube_map(_reference()) for name in MAPS}
    far = _reference()
    far.SetOrigin((ORIGIN[0] + 500.0, ORIGIN[1], ORIGIN[2]))
    with pytest.raises(VolumeError, match="do not overlap"):
        to_mask_grid(maps, far)
