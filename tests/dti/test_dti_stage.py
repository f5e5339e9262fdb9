"""The DTI stage of one patient: slices, record, montage, orientation, QC table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.demo.presets import get_preset
from mmsurv.demo.traits import draw_traits
from mmsurv.demo.volumes import plan_volumes, render_study, write_study
from mmsurv.dti.maps import MAPS
from mmsurv.dti.stage import (
    QC_COLUMNS,
    DTISettings,
    prepare_one_patient,
    prepare_patient,
    qc_table,
    skipped_record,
    write_record,
)
from mmsurv.mri.io import VolumeError
from mmsurv.mri.preprocess import resample_to

SHAPE = (16, 20, 24)  # (z, y, x)
SPACING = (1.5, 1.5, 2.0)  # (x, y, z) mm
#: map -> (value in the tumour, value elsewhere in the brain); diffusivities in mm^2/s
VALUES = {"fa": (0.2, 0.4), "md": (1.2e-3, 0.8e-3), "ad": (1.5e-3, 1.2e-3), "rd": (1.05e-3, 0.6e-3)}
SETTINGS = DTISettings(slice_size=(32, 32))


def _labels() -> np.ndarray:
    """(z, y, x) BraTS labels: necrosis 1 inside enhancing 4 inside oedema 2."""
    z, y, x = np.indices(SHAPE)
    r = np.sqrt(((z - 7) / 4.0) ** 2 + ((y - 9) / 6.0) ** 2 + ((x - 13) / 7.0) ** 2)
    return np.select([r < 0.4, r < 0.7, r < 1.0], [1, 4, 2], 0).astype(np.uint8)


def _image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    image.SetOrigin((-20.0, 15.0, 3.0))
    return image


def _images() -> tuple[dict[str, sitk.Image], sitk.Image]:
    tumor = _labels() > 0
    maps = {}
    for name, (inside, outside) in VALUES.items():
        values = np.where(tumor, inside, outside).astype(np.float32)
        values[:, :, :2] = 0.0  # outside the brain
        maps[name] = _image(values)
    return maps, _image(_labels())


def _write(folder: Path, maps: dict[str, sitk.Image], mask: sitk.Image) -> tuple[dict, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, image in maps.items():
        files[name] = str(folder / f"{name}.nii.gz")
        sitk.WriteImage(image, files[name])
    sitk.WriteImage(mask, str(folder / "mask.nii.gz"))
    return files, folder / "mask.nii.gz"


def _run(tmp_path: Path, files: dict, mask: Path, name: str = "P1", **kw) -> tuple[dict, Path]:
    out = tmp_path / "out"
    record = prepare_patient(
        name,
        files,
        mask,
        kw.pop("settings", SETTINGS),
        out_slices=out / "slices" / f"{name}.npy",
        out_record=out / "slices" / f"{name}.json",
        out_montage=out / "qc" / f"{name}.png",
        **kw,
    )
    return record, out


def test_prepare_patient_writes_slices_record_and_montage(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    record, out = _run(tmp_path, files, mask, mask_source="weak_network")
    stack = np.load(out / "slices" / "P1.npy")
    assert stack.shape == (16, 32, 32) and stack.dtype == np.float32
    assert json.loads((out / "slices" / "P1.json").read_text()) == record
    assert (out / "qc" / "P1.png").read_bytes()[:4] == b"\x89PNG"
    assert record["patient_id"] == "P1" and record["status"] == "ok"
    assert record["map_source"] == "given" and record["mask_source"] == "weak_network"
    assert record["resampled_to_mask"] is False and record["tumor_in_maps"] == 1.0
    assert record["shape"] == [16, 32, 32] and record["slice_size"] == [32, 32]
    z = np.nonzero((_labels() > 0).any(axis=(1, 2)))[0]
    assert record["box"]["z"] == [int(z.min()), int(z.max()) + 1]
    assert len(record["slices"]) == 4 and record["order"][0] == f"fa@z{record['slices'][0]}"
    expected = {n: VALUES[n][0] * (1.0 if n == "fa" else 1000.0) for n in MAPS}
    assert record["tumor_mean"] == pytest.approx(expected, rel=1e-5)
    assert record["units"] == {
        "fa": "1",
        "md": "1e-3 mm^2/s",
        "ad": "1e-3 mm^2/s",
        "rd": "1e-3 mm^2/s",
    }
    centre = stack[:, 16, 16]  # the middle of every crop lies in the tumour
    np.testing.assert_allclose(centre, np.repeat([expected[n] for n in MAPS], 4), rtol=1e-5)


def test_axes_order_and_flips_do_not_change_the_slices(tmp_path: Path) -> None:
    """The same physical study stored RAS-flipped or with permuted axes gives the same stack."""
    maps, mask = _images()
    files, mask_path = _write(tmp_path / "lps", maps, mask)
    _run(tmp_path / "a", files, mask_path)
    reference = np.load(tmp_path / "a" / "out" / "slices" / "P1.npy")
    for variant, change in (
        ("ras", lambda im: sitk.DICOMOrient(im, "RAS")),
        ("permuted", lambda im: sitk.PermuteAxes(im, [2, 0, 1])),
    ):
        moved = {k: change(v) for k, v in maps.items()}
        assert moved["fa"].GetDirection() != maps["fa"].GetDirection()
        files, mask_path = _write(tmp_path / variant, moved, change(mask))
        record, out = _run(tmp_path / f"run_{variant}", files, mask_path)
        np.testing.assert_allclose(np.load(out / "slices" / "P1.npy"), reference, atol=1e-6)
        assert record["orientation"] == "LPS"


def test_maps_on_another_grid_are_resampled_to_the_mask(tmp_path: Path) -> None:
    maps, mask = _images()
    grid = sitk.Image([30, 26, 22], sitk.sitkUInt8)
    grid.SetSpacing((1.2, 1.2, 1.5))
    grid.SetOrigin((-21.0, 14.0, 2.0))
    fine_mask = resample_to(mask, grid, "nearest")
    files, _ = _write(tmp_path / "maps", maps, mask)
    sitk.WriteImage(fine_mask, str(tmp_path / "fine_mask.nii.gz"))
    settings = DTISettings(slice_size=(32, 32), margin_mm=2.5)
    record, out = _run(tmp_path, files, tmp_path / "fine_mask.nii.gz", settings=settings)
    assert record["resampled_to_mask"] is True
    assert record["spacing_mm"] == pytest.approx([1.2, 1.2, 1.5])
    assert record["margin_vox"] == [3, 3]
    assert record["tumor_in_maps"] == 1.0
    assert np.load(out / "slices" / "P1.npy").shape == (16, 32, 32)
    assert record["tumor_mean"]["fa"] == pytest.approx(0.2, abs=0.03)
    assert record["tumor_mean"]["md"] == pytest.approx(1.2, rel=0.05)


def test_raw_dwi_of_the_demo_goes_through_the_tensor_fit(tmp_path: Path) -> None:
    preset = get_preset("smoke")
    spec = next(s for s in plan_volumes(draw_traits(preset.n_patients, 0), preset, 0) if s.raw_dwi)
    write_study(spec, tmp_path, 0)
    folder = tmp_path / "images" / spec.patient_id
    files = {"dwi": folder / "dwi.nii.gz", "bval": folder / "dwi.bval", "bvec": folder / "dwi.bvec"}
    record, out = _run(tmp_path, files, folder / "mask.nii.gz", name=spec.patient_id)
    assert record["map_source"] == "tensor_fit" and record["resampled_to_mask"] is False
    assert np.load(out / "slices" / f"{spec.patient_id}.npy").shape == (16, 32, 32)
    truth = render_study(spec, 0)
    tumor = np.isin(truth["mask"], (1, 2, 4))
    assert record["tumor_mean"]["fa"] == pytest.approx(truth["fa"][tumor].mean(), abs=0.02)
    assert record["tumor_mean"]["md"] == pytest.approx(1000 * truth["md"][tumor].mean(), rel=0.03)


def test_errors_name_the_patient_and_the_file(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    with pytest.raises(VolumeError, match="patient P9: no usable DTI"):
        _run(tmp_path, {"t1": "t1.nii.gz"}, mask, name="P9")
    labels = _labels()
    labels[labels == 2] = 3
    sitk.WriteImage(_image(labels), str(tmp_path / "bad_mask.nii.gz"))
    with pytest.raises(VolumeError, match=r"patient P9, file .*bad_mask.nii.gz: .*labels \[3\]"):
        _run(tmp_path, files, tmp_path / "bad_mask.nii.gz", name="P9")
    far = _images()[1]
    far.SetOrigin((500.0, 0.0, 0.0))
    sitk.WriteImage(far, str(tmp_path / "far_mask.nii.gz"))
    with pytest.raises(VolumeError, match=r"patient P9, file .*far_mask.nii.gz: .*overlap"):
        _run(tmp_path, files, tmp_path / "far_mask.nii.gz", name="P9")
    assert not (tmp_path / "out" / "slices" / "P9.npy").exists()


def test_qc_table_has_ok_and_skipped_rows(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    ok, _ = _run(tmp_path, files, mask)
    skipped = skipped_record("P2", "patient P2: no usable DTI")
    assert skipped == {
        "patient_id": "P2",
        "status": "skipped",
        "reason": "patient P2: no usable DTI",
    }
    write_record(skipped, tmp_path / "records" / "P2.json")
    table = qc_table([ok, tmp_path / "records" / "P2.json"])
    assert list(table.columns) == QC_COLUMNS and len(table) == 2
    first, second = table.iloc[0], table.iloc[1]
    assert (first["patient_id"], first["status"], first["map_source"]) == ("P1", "ok", "given")
    depth = ok["box"]["z"][1] - ok["box"]["z"][0]
    assert first["box_depth"] == depth and first["fa_mean"] == pytest.approx(0.2)
    assert not first["resampled_to_mask"]
    assert (second["patient_id"], second["status"]) == ("P2", "skipped")
    assert "no usable DTI" in second["reason"] and np.isnan(second["fa_mean"])


def test_settings_from_config() -> None:
    dti = {
        "n_slices": 3,
        "slice_size": [48, 40],
        "margin_mm": 2.0,
        "b0_threshold": 20,
        "fit_method": "OLS",
        "on_error": "skip",
    }
    mri = {"tumor_labels": [1, 4], "mask_tolerance_mm": 0.5}
    settings = DTISettings.from_config(dti, mri)
    assert settings == DTISettings(3, (48, 40), 2.0, (1, 4), 20.0, "OLS", 0.5)
    assert DTISettings.from_config({}, {}) == DTISettings()
    with pytest.raises(ValueError, match="n_slices"):
        DTISettings(n_slices=0)


DTI_CONFIG = {"slice_size": [32, 32], "on_error": "fail"}
MRI_CONFIG = {"tumor_labels": [1, 2, 4], "mask_tolerance_mm": 1.0}


def _one(tmp_path: Path, files: dict, **kw) -> tuple[bool, Path]:
    out = tmp_path / "job"
    ok = prepare_one_patient(
        kw.pop("dti", DTI_CONFIG),
        MRI_CONFIG,
        "P1",
        files,
        out_slices=out / "P1.npy",
        out_record=out / "P1.json",
        out_montage=out / "P1.png",
        **kw,
    )
    return ok, out


def test_one_patient_takes_the_sheet_mask_first(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    ok, out = _one(tmp_path, {**files, "mask": str(mask)})
    record = json.loads((out / "P1.json").read_text())
    assert ok and record["mask_source"] == "ground_truth"
    assert np.load(out / "P1.npy").shape == (16, 32, 32)


def test_one_patient_without_a_mask_row_takes_the_mri_stage_weak_mask(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    mri_record = tmp_path / "preprocess.json"
    mri_record.write_text(json.dumps({"status": "ok", "mask_source": "weak_network"}))
    ok, out = _one(tmp_path, files, mri_mask=str(mask), mri_record=str(mri_record))
    assert ok and json.loads((out / "P1.json").read_text())["mask_source"] == "weak_network"
    mri_record.write_text(json.dumps({"status": "skipped", "reason": "unreadable t1"}))
    with pytest.raises(VolumeError, match="MRI stage skipped the patient.*unreadable t1"):
        _one(tmp_path, files, mri_mask=str(mask), mri_record=str(mri_record))
    with pytest.raises(VolumeError, match="no tumor mask"):
        _one(tmp_path, files)


def test_one_patient_on_error_skip_writes_a_skipped_record(tmp_path: Path) -> None:
    files, mask = _write(tmp_path / "in", *_images())
    broken = {**files, "mask": str(mask), "md": str(tmp_path / "missing_md.nii.gz")}
    with pytest.raises(VolumeError, match="missing_md"):
        _one(tmp_path, broken)
    ok, out = _one(tmp_path, broken, dti={**DTI_CONFIG, "on_error": "skip"})
    record = json.loads((out / "P1.json").read_text())
    assert not ok and record["status"] == "skipped" and "missing_md" in record["reason"]
    assert np.load(out / "P1.npy").size == 0
    assert (out / "P1.png").read_bytes()[:4] == b"\x89PNG"
    assert qc_table([out / "P1.json"]).iloc[0]["status"] == "skipped"
