"""Synthetic MRI and DTI volumes: shared geometry, BraTS labels, contrasts and DTI algebra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mmsurv.demo import anatomy as ana
from mmsurv.demo._util import rng_for
from mmsurv.demo.volumes import DTI_CHANNELS, DWI_CHANNELS, MRI_CHANNELS, render_dti


def _studies(smoke_dir: Path, images) -> dict[str, dict[str, sitk.Image]]:
    """Every study's channels; a mask withheld from the sheet is read from its own file."""
    out: dict[str, dict[str, sitk.Image]] = {}
    for row in images.itertuples(index=False):
        if row.channel in DWI_CHANNELS:  # raw diffusion data: tests/demo/test_demo_dwi.py
            continue
        out.setdefault(row.patient_id, {})[row.channel] = sitk.ReadImage(str(smoke_dir / row.path))
    for patient, channels in out.items():
        if "mask" not in channels:
            withheld = smoke_dir / "images" / patient / "mask_withheld.nii.gz"
            channels["mask"] = sitk.ReadImage(str(withheld))
    return out


def test_some_masks_are_withheld_from_the_sheet(smoke_dir: Path, sheets) -> None:
    images = sheets["images"]
    imaged = set(images["patient_id"])
    listed = set(images.loc[images["channel"] == "mask", "patient_id"])
    withheld = imaged - listed
    assert 0.15 <= len(withheld) / len(imaged) <= 0.35
    assert all((smoke_dir / "images" / p / "mask_withheld.nii.gz").is_file() for p in withheld)
    assert not any((smoke_dir / "images" / p / "mask_withheld.nii.gz").exists() for p in listed)


@pytest.fixture(scope="module")
def studies(smoke_dir: Path, sheets) -> dict[str, dict[str, sitk.Image]]:
    return _studies(smoke_dir, sheets["images"])


def test_channels_share_geometry(studies) -> None:
    for channels in studies.values():
        ref = channels["t1"]
        for img in channels.values():
            assert img.GetSize() == ref.GetSize()
            assert np.allclose(img.GetSpacing(), ref.GetSpacing())
            assert np.allclose(img.GetOrigin(), ref.GetOrigin())
            assert np.allclose(img.GetDirection(), ref.GetDirection())


def test_mask_labels_and_tumour_present(studies) -> None:
    for channels in studies.values():
        mask = sitk.GetArrayFromImage(channels["mask"])
        labels = set(np.unique(mask).tolist())
        assert labels <= {0, 1, 2, 4}
        assert {2, 4} <= labels


def test_mri_contrasts(studies) -> None:
    ratios = []
    for channels in studies.values():
        mask = sitk.GetArrayFromImage(channels["mask"])
        arr = {c: sitk.GetArrayFromImage(channels[c]).astype(float) for c in MRI_CHANNELS}
        assert all(sitk.GetArrayFromImage(channels[c]).dtype == np.int16 for c in MRI_CHANNELS)
        if (mask == 4).sum() >= 5 and (mask == 2).sum() >= 5:
            enh, edema = mask == 4, mask == 2
            enhancing_t1ce = arr["t1ce"][enh].mean() / arr["t1ce"][edema].mean()
            edema_flair = arr["flair"][edema].mean() / arr["t1"][edema].mean()
            ratios.append((enhancing_t1ce, edema_flair))
    ratios = np.array(ratios)
    assert len(ratios) >= 5
    assert np.median(ratios[:, 0]) > 1.3  # enhancing ring bright on T1ce
    assert np.median(ratios[:, 1]) > 1.5  # oedema bright on FLAIR, dark on T1


def test_dti_maps_are_consistent(studies) -> None:
    with_dti = [c for c in studies.values() if "fa" in c]
    assert 0 < len(with_dti) < len(studies)
    for channels in with_dti:
        fa, md, ad, rd = (sitk.GetArrayFromImage(channels[c]) for c in DTI_CHANNELS)
        assert fa.dtype == np.float32 and fa.min() >= 0 and fa.max() <= 1
        assert np.allclose(md, (ad + 2 * rd) / 3, rtol=1e-5, atol=1e-9)
        assert (ad >= rd).all() and (rd >= 0).all()
        brain = md > 0
        assert 3e-4 < np.median(md[brain]) < 2e-3


@pytest.mark.parametrize(("fa_low", "fa_high"), [(0.15, 0.4), (0.2, 0.3)])
def test_tumour_fa_and_md_follow_parameters(fa_low: float, fa_high: float) -> None:
    rng = rng_for(0, "test-anatomy")
    geom = ana.draw_geometry((48, 48, 40), (4.0, 4.0, 4.5), rng)
    labels = ana.tissue_volume(geom, ana.TumourShape(8.0, 6.0, 12.0), rng)
    tumour = labels == ana.ENHANCING
    low = render_dti(labels, fa_low, 1.5e-3, rng_for(0, "a"))
    high = render_dti(labels, fa_high, 1.0e-3, rng_for(0, "b"))
    assert high["fa"][tumour].mean() > low["fa"][tumour].mean()
    assert high["md"][tumour].mean() < low["md"][tumour].mean()


def test_bigger_tumour_parameters_give_bigger_compartments() -> None:
    geom = ana.draw_geometry((48, 48, 40), (4.0, 4.0, 4.5), rng_for(0, "g"))
    small = ana.tissue_volume(geom, ana.TumourShape(3.0, 3.0, 6.0), rng_for(0, "t"))
    big = ana.tissue_volume(geom, ana.TumourShape(14.0, 8.0, 26.0), rng_for(0, "t"))
    for tissue in (ana.NECROSIS, ana.ENHANCING, ana.EDEMA):
        assert (big == tissue).sum() > 2 * (small == tissue).sum()
