"""Weak tumour labels: segmenter training, prediction, post-processing, grid round trip, QC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from mmsurv.mri import weak
from mmsurv.mri.io import VolumeError
from mmsurv.mri.preprocess import crop_resize
from mmsurv.mri.weak import (
    largest_component,
    load_segmenter,
    predict_weak_mask,
    train_segmenter,
    weak_to_grid,
)

S = 16  # voxels per axis of the synthetic brain grid
CHANNELS = ("t1ce", "flair")
EPOCHS = 30


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sphere(centre: np.ndarray, radius: float, shape: tuple[int, ...] = (S, S, S)) -> np.ndarray:
    grid = np.indices(shape, dtype=np.float64)
    distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
    return distance <= radius


def _brain(rng: np.random.Generator, size: int = S) -> dict[str, np.ndarray]:
    """Noisy channels with a bright sphere; BraTS-like mask: edema 2 around core 1 / rim 4."""
    shape = (size,) * 3
    centre = rng.uniform(0.35 * size, 0.65 * size, size=3)
    radius = rng.uniform(0.18, 0.25) * size
    outer = _sphere(centre, radius, shape)
    core = _sphere(centre, 0.6 * radius, shape)
    necrosis = _sphere(centre, 0.3 * radius, shape)
    mask = np.where(outer, 2, 0)
    mask[core] = 4
    mask[necrosis] = 1
    t1ce = rng.normal(0.0, 0.5, shape) + 2.5 * core
    flair = rng.normal(0.0, 0.5, shape) + 2.5 * outer
    return {
        "t1ce": t1ce.astype(np.float32),
        "flair": flair.astype(np.float32),
        "t2": flair.astype(np.float32),
        "mask": mask.astype(np.uint8),
    }


def _write(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def _cohort(root: Path, n: int = 8, seed: int = 0) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    return {f"P{i}": _write(root / f"P{i}" / "brain.npz", _brain(rng)) for i in range(n)}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a != 0, b != 0
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict, Path]:
    """A segmenter trained on 8 synthetic patients (module scope: trained once)."""
    root = tmp_path_factory.mktemp("weak")
    files = _cohort(root / "cohort")
    out = root / "segmenter.pt"
    meta = train_segmenter(files, CHANNELS, out, epochs=EPOCHS, seed=3, threads=1, device="cpu")
    return out, meta, root


# --- training -------------------------------------------------------------------------------


def test_training_writes_checkpoint_and_metadata(trained):
    out, meta, root = trained
    assert out.is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    json.dumps(meta)  # the log file's content
    assert meta["channels"] == list(CHANNELS)
    assert meta["input_shape"] == [2, S, S, S]
    assert meta["tumor_labels"] == [1, 2, 4]
    assert meta["init"] == "random (seed 3)" and meta["seed"] == 3
    assert [h["epoch"] for h in meta["history"]] == list(range(1, EPOCHS + 1))
    dice = [h["val_dice"] for h in meta["history"]]
    assert meta["best_epoch"] == int(np.argmax(dice)) + 1
    assert meta["best_val_dice"] == max(dice)
    assert len(meta["val_patients"]) == 2  # round(0.2 * 8)
    assert sorted(meta["val_patients"] + meta["train_patients"]) == [f"P{i}" for i in range(8)]
    assert meta["history"][-1]["train_loss"] < meta["history"][0]["train_loss"]
    checkpoint = torch.load(out, map_location="cpu", weights_only=True)
    assert {k for k in checkpoint if k != "state_dict"} == set(meta)
    model, loaded = load_segmenter(out)
    assert loaded == meta
    assert not model.training
    assert all(p.device.type == "cpu" for p in model.parameters())


def test_same_seed_same_weights(tmp_path):
    files = _cohort(tmp_path / "cohort", n=4)
    kwargs = {"epochs": 2, "seed": 5, "threads": 1, "device": "cpu"}
    a = train_segmenter(files, CHANNELS, tmp_path / "a.pt", **kwargs)
    b = train_segmenter(files, CHANNELS, tmp_path / "b.pt", **kwargs)
    c = train_segmenter(files, CHANNELS, tmp_path / "c.pt", **{**kwargs, "seed": 6})
    state = [torch.load(tmp_path / f"{n}.pt", weights_only=True)["state_dict"] for n in "abc"]
    assert state[0].keys() == state[1].keys()
    assert all(torch.equal(state[0][k], state[1][k]) for k in state[0])
    assert not all(torch.equal(state[0][k], state[2][k]) for k in state[0])
    assert a["history"] == b["history"] and a["val_patients"] == b["val_patients"]
    assert len(c["history"]) == 2
    assert torch.get_num_threads() == 1  # restored


def test_no_held_out_keeps_last_epoch(tmp_path):
    files = _cohort(tmp_path / "cohort", n=3)
    meta = train_segmenter(files, ("t1ce",), tmp_path / "s.pt", epochs=2, val_fraction=0.0)
    assert meta["best_epoch"] == 2 and meta["val_patients"] == []
    assert [h["val_dice"] for h in meta["history"]] == [None, None]


def test_binary_mask_and_tumor_labels(tmp_path):
    rng = np.random.default_rng(1)
    files = {}
    for i in range(2):
        arrays = _brain(rng)
        arrays["mask"] = (arrays["mask"] > 0).astype(np.uint8)
        files[f"B{i}"] = _write(tmp_path / f"B{i}.npz", arrays)
    meta = train_segmenter(files, ["t2"], tmp_path / "s.pt", epochs=1, tumor_labels=[1])
    assert meta["tumor_labels"] == [1] and meta["input_shape"] == [1, S, S, S]
    assert len(meta["val_patients"]) == 1


# --- training errors ------------------------------------------------------------------------


def test_one_masked_patient_is_an_error(tmp_path):
    files = _cohort(tmp_path, n=1)
    with pytest.raises(ValueError, match="at least 2 patients.*got 1"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=1)


def test_missing_mask_or_channel_is_an_error(tmp_path):
    files = _cohort(tmp_path, n=3)
    arrays = _brain(np.random.default_rng(9))
    del arrays["mask"]
    files["P1"] = _write(tmp_path / "nomask.npz", arrays)
    with pytest.raises(VolumeError, match=r"patient P1.*nomask\.npz.*lacks mask"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=1)
    files = _cohort(tmp_path, n=3)
    with pytest.raises(VolumeError, match="patient P0.*lacks t1"):
        train_segmenter(files, ["t1", "t1ce"], tmp_path / "s.pt", epochs=1)
    assert not (tmp_path / "s.pt").exists()


def test_mismatched_shapes_are_an_error(tmp_path):
    files = _cohort(tmp_path, n=3)
    files["P2"] = _write(tmp_path / "big.npz", _brain(np.random.default_rng(2), size=24))
    with pytest.raises(VolumeError, match=r"patient P2.*differs from \(16, 16, 16\) of patient P0"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=1)


def test_grid_not_divisible_by_8_is_an_error(tmp_path):
    rng = np.random.default_rng(0)
    files = {f"P{i}": _write(tmp_path / f"P{i}.npz", _brain(rng, size=12)) for i in range(2)}
    with pytest.raises(VolumeError, match="not divisible by 8"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=1)


def test_bad_settings(tmp_path):
    files = _cohort(tmp_path, n=2)
    with pytest.raises(ValueError, match="val_fraction"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=1, val_fraction=1.0)
    with pytest.raises(ValueError, match="epochs and batch_size"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", epochs=0)
    with pytest.raises(ValueError, match="device"):
        train_segmenter(files, CHANNELS, tmp_path / "s.pt", device="tpu")


# --- prediction -----------------------------------------------------------------------------


def test_prediction_overlaps_the_tumour(trained, tmp_path):
    out, meta, _ = trained
    arrays = _brain(np.random.default_rng(123))
    arrays_no_mask = {k: v for k, v in arrays.items() if k != "mask"}
    path = _write(tmp_path / "new" / "brain.npz", arrays_no_mask)
    pred = predict_weak_mask(out, path, device="cpu")
    assert pred.dtype == np.uint8 and pred.shape == (S, S, S)
    assert set(np.unique(pred)) <= {0, 1}
    assert _dice(pred, arrays["mask"] > 0) > 0.5
    assert torch.get_num_threads() == 1


def test_prediction_errors(trained, tmp_path):
    out, _, _ = trained
    arrays = _brain(np.random.default_rng(4))
    no_flair = _write(tmp_path / "a.npz", {k: v for k, v in arrays.items() if k != "flair"})
    with pytest.raises(VolumeError, match="lacks flair"):
        predict_weak_mask(out, no_flair)
    small = _write(tmp_path / "b.npz", _brain(np.random.default_rng(4), size=8))
    with pytest.raises(
        VolumeError, match=r"shape \(C, D, H, W\) \(2, 8, 8, 8\).*\(2, 16, 16, 16\)"
    ):
        predict_weak_mask(out, small)
    with pytest.raises(FileNotFoundError):
        predict_weak_mask(tmp_path / "none.pt", small)
    not_a_model = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, not_a_model)
    with pytest.raises(ValueError, match="not a weak-label segmenter"):
        predict_weak_mask(not_a_model, small)


def test_empty_prediction_is_a_volume_error(trained, tmp_path):
    out, _, _ = trained
    checkpoint = torch.load(out, weights_only=True)
    state = checkpoint["state_dict"]
    last = [k for k in state if k.endswith("conv.bias")][-1]  # the output convolution
    state[last.replace("bias", "weight")].zero_()
    state[last][:] = torch.tensor([1e4, -1e4])  # background everywhere
    background = tmp_path / "background.pt"
    torch.save(checkpoint, background)
    path = _write(tmp_path / "brain.npz", _brain(np.random.default_rng(5)))
    with pytest.raises(VolumeError, match="weak segmentation found no tumour") as err:
        predict_weak_mask(background, path)
    assert err.value.path == path


def test_prediction_keeps_the_largest_component(trained, tmp_path, monkeypatch):
    out, _, _ = trained
    two = np.zeros((1, S, S, S), dtype=np.uint8)
    two[0, 2:9, 2:9, 2:9] = 1  # 343 voxels
    two[0, 12:15, 12:15, 12:15] = 1  # 27 voxels
    monkeypatch.setattr(weak, "_labels", lambda net, images, device: two.copy())
    path = _write(tmp_path / "brain.npz", _brain(np.random.default_rng(6)))
    pred = predict_weak_mask(out, path)
    assert pred.sum() == 343 and pred[2:9, 2:9, 2:9].all()


def test_largest_component():
    mask = np.zeros((10, 10, 10), dtype=bool)
    mask[1:4, 1:4, 1:4] = True  # 27
    mask[6:9, 6:9, 6:8] = True  # 18
    mask[4, 4, 4] = True  # touches the first block at a corner only
    kept = largest_component(mask)
    assert kept.dtype == np.uint8 and kept.shape == mask.shape
    assert kept.sum() == 28 and kept[4, 4, 4] == 1
    assert largest_component(mask, connectivity=1).sum() == 27
    assert not largest_component(np.zeros((4, 4, 4))).any()


# --- back to the grid and QC ----------------------------------------------------------------


def _reference() -> sitk.Image:
    """A (40, 36, 30) voxel grid (x, y, z), anisotropic, shifted origin."""
    image = sitk.GetImageFromArray(
        np.random.default_rng(0).normal(size=(30, 36, 40)).astype(np.float32)
    )
    image.SetSpacing((1.0, 1.2, 1.5))
    image.SetOrigin((-20.0, 10.0, 5.0))
    return image


def _round_trip(radius: float, brain_size: tuple[int, int, int]) -> tuple[np.ndarray, ...]:
    """A sphere on the reference grid, through crop_resize (nearest) and weak_to_grid."""
    reference = _reference()
    truth = np.zeros((30, 36, 40), dtype=np.uint8)  # (z, y, x)
    truth[_sphere(np.array([14.0, 18.0, 21.0]), radius, truth.shape)] = 1
    mask = sitk.GetImageFromArray(truth)
    mask.CopyInformation(reference)
    box = ((5, 4, 3), (32, 28, 24))  # (x, y, z)
    record = {
        "size": [40, 36, 30],
        "spacing_mm": [1.0, 1.2, 1.5],
        "brain_box": {"lo": list(box[0]), "size": list(box[1])},
        "brain_size": list(brain_size),
    }
    back = weak_to_grid(crop_resize(mask, box, brain_size, "nearest"), record, reference)
    assert back.GetPixelID() == sitk.sitkUInt8
    assert back.GetSize() == reference.GetSize()
    assert back.GetSpacing() == reference.GetSpacing()
    assert back.GetOrigin() == reference.GetOrigin()
    assert back.GetDirection() == reference.GetDirection()
    return sitk.GetArrayFromImage(back), truth


def test_weak_to_grid_round_trip():
    values, truth = _round_trip(10.0, (16, 16, 16))  # 2 x 1.75 x 1.5 fewer voxels per axis
    assert _dice(values, truth) > 0.9
    outside = np.ones_like(values, dtype=bool)
    outside[3:27, 4:32, 5:37] = False  # the box, (z, y, x)
    assert not values[outside].any()
    values, truth = _round_trip(7.0, (32, 28, 24))  # brain grid = box: exact
    np.testing.assert_array_equal(values, truth)


def test_weak_to_grid_errors():
    reference = _reference()
    record = {"size": [40, 36, 30], "brain_box": {"lo": [0, 0, 0], "size": [40, 36, 30]}}
    record["brain_size"] = [16, 16, 8]
    with pytest.raises(ValueError, match=r"needs \(D, H, W\) = \(8, 16, 16\)"):
        weak_to_grid(np.zeros((16, 16, 16), np.uint8), record, reference)
    with pytest.raises(VolumeError, match="differs from the record's grid"):
        weak_to_grid(np.zeros((8, 16, 16), np.uint8), {**record, "size": [40, 36, 31]}, reference)
    too_big = {**record, "brain_box": {"lo": [1, 0, 0], "size": [40, 36, 30]}}
    with pytest.raises(VolumeError, match="does not fit"):
        weak_to_grid(np.zeros((8, 16, 16), np.uint8), too_big, reference)
    with pytest.raises(ValueError, match="brain_box"):
        weak_to_grid(np.zeros((8, 16, 16), np.uint8), {"size": [40, 36, 30]}, reference)
