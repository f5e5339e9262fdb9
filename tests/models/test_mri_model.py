"""MRI survival models: training loop, blending, checkpoint choice, pickling, Grad-CAM, weights."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.models.mri_model import (
    MRIClinicalMMNNModel,
    MRIDenseNetModel,
    _augmenter,
    read_crop,
)
from mmsurv.models.mri_nets import image_subnet

S = 32  # voxels per axis (DenseNet-121 needs >= 29)
N = 20  # patients: 12 train, 8 validation
CLINICAL = {"numeric": ["age"], "categorical": ["grade"]}
TIMES = np.array([0.0, 100.0, 300.0, 1000.0, 5000.0])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write_cohort(root: Path, n: int, seed: int, size: int = S) -> tuple[pd.DataFrame, ...]:
    """Patients whose hazard is the mean intensity of a blob in their crop (and age)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    z = rng.normal(size=n)
    rows = []
    for i in range(n):
        t1ce = rng.normal(size=(size,) * 3).astype(np.float32)
        t1ce[10:20, 8:22, 8:22] += 1.5 * z[i]
        mask = np.zeros((size,) * 3, dtype=np.uint8)
        mask[10:20, 8:22, 8:22] = 1
        path = root / f"P{i}" / "crop.npz"
        path.parent.mkdir()
        np.savez_compressed(path, t1ce=t1ce, t2=0.5 * t1ce + 0.1, mask=mask)
        rows.append({"pid": f"P{i}", "mri": str(path)})
    X = pd.DataFrame(rows).set_index("pid").rename_axis(None)
    X["age"] = rng.normal(60, 10, size=n).round()
    X.loc[X.index[3], "age"] = np.nan  # imputed inside the model
    X["grade"] = rng.choice(["G1", "G2", "G3"], size=n)
    t = rng.exponential(365.0 * np.exp(-z))
    c = rng.exponential(3 * 365.0, size=n)
    time, event = np.minimum(t, c).round(1), (t <= c).astype(int)
    event[[0, 1, 12, 13]] = 1  # events in both splits
    return X, time, event


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    X, time, event = _write_cohort(tmp_path_factory.mktemp("mri"), N, seed=0)
    tr, va = slice(0, 12), slice(12, N)
    return {
        "X": X,
        "train": (X.iloc[tr], time[tr], event[tr]),
        "val": (X.iloc[va], time[va], event[va]),
    }


def _fit(model, cohort):
    with torch.random.fork_rng():  # the fit seeds torch; keep other tests' state untouched
        return model.fit(*cohort["train"], validation=cohort["val"])


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("weights") / "densenet.pt"
    torch.save(image_subnet(2, 12).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def blended(cohort):
    model = MRIClinicalMMNNModel(**CLINICAL, epochs=3, blend_every=1, seed=1, device="cpu")
    return _fit(model, cohort)


@pytest.fixture(scope="module")
def unblended(cohort):
    model = MRIClinicalMMNNModel(
        **CLINICAL, gradient_blending=False, epochs=2, augment=False, seed=1, device="cpu"
    )
    return _fit(model, cohort)


@pytest.fixture(scope="module")
def densenet(cohort, weights_file):
    return _fit(MRIDenseNetModel(epochs=2, weights=str(weights_file), seed=2, device="cpu"), cohort)


def test_blended_history_has_head_losses_and_changing_weights(blended):
    hist = pd.DataFrame(blended.history_)
    assert len(hist) == 3
    for col in ["epoch", "train_loss", "val_loss", "lr"] + [
        f"{p}_{k}" for p in ("train_loss", "val_loss", "w") for k in ("mm", "image", "clinical")
    ]:
        assert col in hist and hist[col].notna().all(), col
    w = hist[["w_mm", "w_image", "w_clinical"]].to_numpy()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(w[0], 1 / 3)  # uniform in the first epoch
    weights = [tuple(h[k] for k in ("mm", "image", "clinical")) for h in blended.blending_history_]
    assert len(set(weights)) > 1, "blending weights never changed"
    # the epoch is chosen on the unweighted multimodal validation loss
    assert hist["val_loss"].tolist() == hist["val_loss_mm"].tolist()
    assert blended.best_epoch_ == int(np.argmin(hist["val_loss"])) + 1
    desc = blended.describe()
    assert desc["init"] == "random (seed 1)"
    assert desc["blending_weights"][0] == {
        "epoch": 0,
        "mm": 1 / 3,
        "image": 1 / 3,
        "clinical": 1 / 3,
    }
    assert desc["params"]["gradient_blending"] is True
    assert desc["params"]["channels"] == ["t1ce", "t2"]
    assert "numeric" not in desc["params"]
    assert desc["clinical_features"][0] == "age"


def test_unblended_weights_are_none(unblended):
    hist = pd.DataFrame(unblended.history_)
    assert hist[["w_mm", "w_image", "w_clinical"]].isna().all().all()
    assert unblended.blending_history_ is None
    assert unblended.best_epoch_ == int(np.argmin(hist["val_loss"])) + 1


@pytest.mark.parametrize("name", ["blended", "densenet"])
def test_predictions_and_survival_curves(name, cohort, request):
    model = request.getfixturevalue(name)
    X = cohort["X"]
    risk = model.predict_risk(X)
    assert risk.shape == (N,) and np.isfinite(risk).all()
    surv = model.predict_survival(X, TIMES)
    assert surv.shape == (N, len(TIMES))
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(surv[:, 0], 1.0)


def test_pickle_round_trip_predicts_the_same(blended, cohort, tmp_path):
    joblib.dump(blended, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    X = cohort["X"].iloc[:6]
    np.testing.assert_array_equal(loaded.predict_risk(X), blended.predict_risk(X))
    np.testing.assert_array_equal(
        loaded.predict_survival(X, TIMES), blended.predict_survival(X, TIMES)
    )


def test_fit_is_repeatable_on_cpu(densenet, cohort, weights_file):
    again = _fit(
        MRIDenseNetModel(epochs=2, weights=str(weights_file), seed=2, device="cpu"), cohort
    )
    assert again.history_ == densenet.history_
    X = cohort["X"]
    np.testing.assert_array_equal(again.predict_risk(X), densenet.predict_risk(X))


@pytest.mark.parametrize(
    ("name", "layer"), [("blended", None), ("densenet", "features.denseblock3")]
)
def test_grad_cam_maps(name, layer, cohort, request):
    model = request.getfixturevalue(name)
    X = cohort["X"]
    before = model.predict_risk(X.iloc[:3])
    cams = model.grad_cam(X, n=3, **({} if layer is None else {"layer": layer}))
    assert list(cams) == list(X.index[:3])
    for cam in cams.values():
        assert cam.shape == (S, S, S)
        assert np.isfinite(cam).all() and cam.min() >= 0 and cam.max() <= 1
    if layer is not None:  # a 2^3 map upsampled: not constant
        assert any(cam.max() == 1 for cam in cams.values())
    # the fitted network is left as it was (no hooks, same predictions, still picklable)
    np.testing.assert_array_equal(model.predict_risk(X.iloc[:3]), before)
    assert not any(m._forward_hooks or m._backward_hooks for m in model.net_.modules())
    with pytest.raises(ValueError, match="no layer"):
        model.grad_cam(X, n=1, layer="nope")


def test_initial_weights_are_loaded_strictly(weights_file, densenet):
    model = MRIDenseNetModel(weights=str(weights_file), seed=5)
    torch.manual_seed(5)
    fresh = image_subnet(2, 12)
    assert "sha256" in model._load_image_weights(fresh)
    state = torch.load(weights_file, weights_only=True)
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    assert densenet.describe()["init"].startswith(f"weights {weights_file} (sha256 ")


def test_wrong_weights_files_are_clear_errors(cohort, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "three_channels.pt"
    torch.save(image_subnet(3, 12).state_dict(), other)
    cases = [
        (tmp_path / "missing.pt", FileNotFoundError, "not found"),
        (garbage, ValueError, "not a torch state-dict"),
        (other, ValueError, "does not match the image subnetwork"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            _fit(MRIDenseNetModel(epochs=1, weights=str(path), device="cpu"), cohort)


def test_without_validation_the_last_epoch_is_kept(cohort):
    X, time, event = cohort["train"]
    model = MRIClinicalMMNNModel(**CLINICAL, epochs=1, augment=False, seed=3, device="cpu")
    with torch.random.fork_rng():
        model.fit(X.iloc[:8], time[:8], event[:8])
    assert model.best_epoch_ == 1
    row = model.history_[0]
    assert row["val_loss"] is None and row["w_mm"] == pytest.approx(1 / 3)


def test_augmentation_is_joint_and_seeded():
    x = torch.randn(1, S, S, S).repeat(2, 1, 1, 1)  # two identical channels
    outs = [_augmenter(7)(x) for _ in range(2)]
    for out in outs:
        assert out.shape == x.shape
        torch.testing.assert_close(out[0], out[1])  # one transform for both channels
    torch.testing.assert_close(outs[0], outs[1])  # same seed, same draw
    draws = _augmenter(7)
    assert any(not torch.equal(draws(x), x) for _ in range(4))


def test_input_errors(cohort, tmp_path):
    X, time, event = cohort["train"]
    with pytest.raises(ValueError, match="lacks channels"):
        MRIDenseNetModel(channels=["t1ce", "flair"], device="cpu").fit(X, time, event)
    small = tmp_path / "small.npz"
    zeros = np.zeros((16,) * 3, np.float32)
    np.savez_compressed(small, t1ce=zeros, t2=zeros)
    odd = tmp_path / "odd.npz"
    np.savez_compressed(odd, t1ce=np.zeros((S, S, S + 1), np.float32), t2=np.zeros((S, S, S + 1)))
    bad = X.copy()
    bad.loc[bad.index[1], "mri"] = str(odd)
    with pytest.raises(ValueError, match=r"P1: MRI crop of shape \(2, 32, 32, 33\), expected"):
        MRIDenseNetModel(device="cpu").fit(bad, time, event)
    tiny = X.iloc[:2].assign(mri=str(small))
    with pytest.raises(ValueError, match="at least 29"):
        MRIDenseNetModel(device="cpu").fit(tiny, time[:2], np.array([1, 1]))
    with pytest.raises(ValueError, match="clinical variable"):
        MRIClinicalMMNNModel(numeric=[], categorical=[])
    with pytest.raises(FileNotFoundError, match="P0"):
        read_crop(tmp_path / "nope.npz", ["t1ce"], "P0")
    assert read_crop(X["mri"].iloc[0], ["t2", "t1ce", "mask"]).shape == (3, S, S, S)


def test_gpu_trained_model_predicts_on_a_cpu_only_machine(blended, cohort, monkeypatch):
    loaded = pickle.loads(pickle.dumps(blended))
    loaded.device = "cuda"  # as configured for training on a GPU node
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X = cohort["X"].iloc[:4]
    np.testing.assert_array_equal(loaded.predict_risk(X), blended.predict_risk(X))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        loaded.fit(*cohort["train"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_pickles_to_the_cpu(cohort, tmp_path):
    model = MRIClinicalMMNNModel(**CLINICAL, epochs=2, blend_every=1, seed=1, device="cuda")
    _fit(model, cohort)
    assert model.device_.startswith("cuda")
    X = cohort["X"]
    on_gpu = model.predict_risk(X)
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert all(p.device.type == "cpu" for p in loaded.net_.parameters())
    loaded.device = "cpu"
    # bf16 autocast on the GPU, fp32 on the CPU
    np.testing.assert_allclose(loaded.predict_risk(X), on_gpu, atol=0.05)
    cams = loaded.grad_cam(X, n=2)
    assert all(c.shape == (S, S, S) for c in cams.values())
