"""Raw DWI studies of the demo cohort: who gets them, the files, and the tensor fit's maps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.demo.presets import get_preset
from mmsurv.demo.traits import draw_traits
from mmsurv.demo.volumes import (
    DTI_CHANNELS,
    DWI_CHANNELS,
    images_sheet,
    plan_volumes,
    render_study,
    study_channels,
    write_study,
)
from mmsurv.dti.maps import fit_tensor


def _specs(preset: str, seed: int = 0):
    p = get_preset(preset)
    return plan_volumes(draw_traits(p.n_patients, seed), p, seed)


@pytest.mark.parametrize(("preset", "n_raw"), [("smoke", 3), ("demo", 16)])
def test_a_tenth_of_the_dti_patients_ship_raw_dwi(preset: str, n_raw: int) -> None:
    specs = _specs(preset)
    raw = [s for s in specs if s.raw_dwi]
    assert len(raw) == n_raw == round(0.1 * sum(s.has_dti for s in specs))
    assert all(s.has_dti for s in raw)
    sheet = images_sheet(specs)
    by_patient = sheet.groupby("patient_id")["channel"].apply(set)
    for spec in specs:
        channels = by_patient[spec.patient_id]
        if spec.raw_dwi:
            assert set(DWI_CHANNELS) <= channels and not channels & set(DTI_CHANNELS)
        else:
            assert not channels & set(DWI_CHANNELS)
    paths = sheet.loc[sheet["patient_id"] == raw[0].patient_id].set_index("channel")["path"]
    assert paths["dwi"].endswith("dwi.nii.gz") and paths["bval"].endswith("dwi.bval")
    assert [s.patient_id for s in raw] == [s.patient_id for s in _specs(preset) if s.raw_dwi]


def test_the_smoke_sheet_lists_the_raw_dwi_files(smoke_dir: Path, sheets) -> None:
    images = sheets["images"]
    raw = set(images.loc[images["channel"] == "dwi", "patient_id"])
    assert raw == {s.patient_id for s in _specs("smoke") if s.raw_dwi}
    for row in images[images["channel"].isin(DWI_CHANNELS)].itertuples():
        assert (smoke_dir / row.path).is_file()
    assert not images[images["patient_id"].isin(raw) & images["channel"].isin(DTI_CHANNELS)].size


def test_raw_patients_keep_the_maps_of_their_traits() -> None:
    spec = next(s for s in _specs("smoke") if s.raw_dwi)
    with_raw = render_study(spec, 0)
    without = render_study(dataclasses.replace(spec, raw_dwi=False), 0)
    for name in (*DTI_CHANNELS, "t1", "mask"):
        np.testing.assert_array_equal(with_raw[name], without[name])
    np.testing.assert_array_equal(with_raw["dwi"], render_study(spec, 0)["dwi"])
    assert "dwi" not in without
    assert study_channels(spec)[-3:] == DWI_CHANNELS


def test_tensor_fit_of_the_written_dwi_gives_the_maps_back(tmp_path: Path) -> None:
    spec = next(s for s in _specs("smoke") if s.raw_dwi)
    paths = write_study(spec, tmp_path, 0)
    folder = tmp_path / "images" / spec.patient_id
    assert {p.name for p in paths} >= {"dwi.nii.gz", "dwi.bval", "dwi.bvec", "t1.nii.gz"}
    bval = (folder / "dwi.bval").read_text().split("\n")
    bvec = np.loadtxt(folder / "dwi.bvec")
    assert bval[1:] == [""] and len(bval[0].split()) == 13 and bvec.shape == (3, 13)
    np.testing.assert_allclose(np.linalg.norm(bvec[:, 1:], axis=0), 1.0, atol=1e-5)
    dwi = sitk.ReadImage(str(folder / "dwi.nii.gz"))
    t1 = sitk.ReadImage(str(folder / "t1.nii.gz"))
    assert dwi.GetSize() == (*t1.GetSize(), 13)
    assert dwi.GetPixelID() == sitk.sitkInt16

    maps, _ = fit_tensor(folder / "dwi.nii.gz", folder / "dwi.bval", folder / "dwi.bvec")
    for image in maps.values():
        np.testing.assert_allclose(image.GetOrigin(), t1.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(image.GetSpacing(), t1.GetSpacing(), atol=1e-6)
        np.testing.assert_allclose(image.GetDirection(), t1.GetDirection(), atol=1e-6)
    truth = render_study(spec, 0)
    brain = truth["md"] > 0
    fa = sitk.GetArrayFromImage(maps["fa"])
    md = sitk.GetArrayFromImage(maps["md"])
    assert np.median(np.abs(fa[brain] - truth["fa"][brain])) < 0.05
    assert np.median(np.abs(md[brain] / truth["md"][brain] - 1.0)) < 0.10
    tumour = truth["mask"] == 4  # the DTI severity of the hazard model is recoverable
    assert fa[tumour].mean() == pytest.approx(truth["fa"][tumour].mean(), abs=0.02)
    assert md[tumour].mean() == pytest.approx(truth["md"][tumour].mean(), rel=0.03)
