"""DTI signature network (dti_dls): inputs, training, checkpoint choice, Grad-CAM, pickling."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.dti_model import DLSNet, DTIDLSModel, read_slices, slice_channel_names
from mmsurv.models.registry import DTI_CAM_MODELS, NEURAL_MODELS, get_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H = 24  # pixels per side of the synthetic slices
N = 28  # patients: 20 train, 8 validation


def _write_cohort(root: Path, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Patients whose hazard rises with the FA of a central blob (channels 0-3)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    z = rng.normal(size=n)
    paths = {}
    for i in range(n):
        x = rng.normal(0.0, 0.3, size=(16, H, H)).astype(np.float32)
        x[:4, 8:16, 8:16] += 1.5 * z[i]
        path = root / f"P{i}.npy"
        np.save(path, x)
        paths[f"P{i}"] = str(path)
    X = pd.DataFrame({"dti": paths})
    t = rng.exponential(365.0 * np.exp(-1.5 * z))
    c = rng.exponential(4 * 365.0, size=n)
    time, event = np.minimum(t, c).round(1), (t <= c).astype(int)
    event[[0, 1, 20, 21]] = 1
    return X, time, event


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return _write_cohort(tmp_path_factory.mktemp("dti"), N, seed=3)


@pytest.fixture(scope="module")
def fitted(cohort):
    X, time, event = cohort
    tr, va = slice(0, 20), slice(20, N)
    model = DTIDLSModel(epochs=4, batch_size=10, lr=3e-3, threads=1, device="cpu")
    model.fit(X.iloc[tr], time[tr], event[tr], validation=(X.iloc[va], time[va], event[va]))
    return model


def test_registered_as_a_neural_cam_model():
    assert get_model("dti_dls") is DTIDLSModel
    assert "dti_dls" in NEURAL_MODELS and "dti_dls" in DTI_CAM_MODELS


def test_network_is_resnet34_on_16_channels():
    net = DLSNet(16)
    assert net.image.conv1.in_channels == 16
    # ResNet-34: 3, 4, 6, 3 basic blocks
    assert [len(getattr(net.image, f"layer{k}")) for k in range(1, 5)] == [3, 4, 6, 3]
    assert net(torch.zeros(2, 16, H, H)).shape == (2,)


def test_fit_keeps_the_best_validation_epoch(fitted):
    history = fitted.history_
    assert len(history) == 4
    losses = [row["val_loss"] for row in history]
    assert fitted.best_epoch_ == int(np.argmin(losses)) + 1


def test_risk_follows_the_planted_signal_on_training_patients(cohort):
    X, time, event = cohort
    model = DTIDLSModel(epochs=20, batch_size=10, lr=3e-3, augment=False, device="cpu")
    model.fit(X.iloc[:20], time[:20], event[:20])
    assert harrell_c(time[:20], event[:20], model.predict_risk(X.iloc[:20])) > 0.7


def test_predictions_and_survival_shapes(fitted, cohort):
    X, _, _ = cohort
    risk = fitted.predict_risk(X)
    assert risk.shape == (N,) and np.isfinite(risk).all()
    surv = fitted.predict_survival(X, np.array([0.0, 200.0, 2000.0]))
    assert surv.shape == (N, 3)
    assert (np.diff(surv, axis=1) <= 1e-12).all()


def test_grad_cam_gives_one_unit_range_map_per_patient(fitted, cohort):
    X, _, _ = cohort
    maps = fitted.grad_cam(X.iloc[:3])
    assert list(maps) == list(X.index[:3])
    for m in maps.values():
        assert m.shape == (H, H)
        assert m.min() >= 0.0 and m.max() <= 1.0


def test_pickle_round_trip_predicts_the_same(fitted, cohort):
    X, _, _ = cohort
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict_risk(X), fitted.predict_risk(X), rtol=1e-5)


def test_describe_names_the_16_channels(fitted):
    info = fitted.describe()
    assert info["channels"] == slice_channel_names(4)
    assert info["channels"][:2] == ["fa@1", "fa@2"] and info["channels"][-1] == "rd@4"
    assert info["init"].startswith("random")


def test_slices_of_another_shape_are_rejected(fitted, cohort, tmp_path):
    X, _, _ = cohort
    odd = tmp_path / "odd.npy"
    np.save(odd, np.zeros((16, H + 2, H), np.float32))
    with pytest.raises(ValueError, match="expected"):
        fitted.predict_risk(pd.DataFrame({"dti": {"Q": str(odd)}}))


def test_read_slices_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="P9"):
        read_slices(tmp_path / "none.npy", "P9")
    bad = tmp_path / "bad.npy"
    np.save(bad, np.full((16, 4, 4), np.nan, np.float32))
    with pytest.raises(ValueError, match="non-finite"):
        read_slices(bad)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="16, H, W"):
        read_slices(flat)
    with pytest.raises(ValueError, match="no 'dti' column"):
        DTIDLSModel(epochs=1).fit(pd.DataFrame({"x": [1, 2]}), np.ones(2), np.ones(2))
