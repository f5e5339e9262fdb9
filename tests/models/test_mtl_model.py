"""Multi-task MRI models: scan selection, checkpoint, SCNA PCA, Cox on embeddings, IG, weights."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from mmsurv.evaluation.metrics import binary_auc
from mmsurv.models.mtl_inputs import augmenter, read_masks
from mmsurv.models.mtl_model import MRICNNModel, MRIMTLModel, MRISCNAMTLModel
from mmsurv.models.mtl_nets import MTLNet

SHAPE = (16, 16, 8)  # (D, H, W)
WIDTHS = (4, 8, 16)
CH = ["t1ce", "flair"]  # -> the 4-class target
N_GENES = 20
TIMES = np.array([0.0, 100.0, 300.0, 1000.0, 5000.0])
TRAIN = [f"P{i}" for i in range(14)]
VAL = [f"P{i}" for i in range(14, 22)]
TEST = ["P22", "P23"]
GT = {"P0", "P1", "P2", "P3", "P10"}  # P1 also has a weak mask: the ground truth wins
WEAK = {"P1", "P4", "P5", "P11"}
UNLABELED = {"P10", "P11", "P12", "P13"}  # P12, P13: no mask either


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _brats_mask(binary: bool = False) -> np.ndarray:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[4:12, 4:12, 2:6] = 1 if binary else 2
    if not binary:
        mask[6:10, 6:10, 3:5] = 4
        mask[7:9, 7:9, 3:5] = 1
    return mask


def _write_cohort(root: Path, *, binary: bool = False) -> dict:
    """24 patients; the label (i % 2) raises a blob's intensity, the hazard and 5 SCNA genes."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    ids = TRAIN + VAL + TEST
    y = np.array([i % 2 for i in range(len(ids))], dtype=float)
    rows = []
    for pid, yi in zip(ids, y, strict=True):
        t1ce = rng.normal(size=SHAPE).astype(np.float32)
        t1ce[4:12, 4:12, 2:6] += 1.0 if yi else -1.0
        arrays = {"t1ce": t1ce, "flair": (0.5 * t1ce + 0.1).astype(np.float32)}
        if pid in GT:
            arrays["mask"] = _brats_mask(binary)
        if pid in WEAK:
            arrays["weak_mask"] = (_brats_mask() > 0).astype(np.uint8)
        path = root / f"{pid}.npz"
        np.savez_compressed(path, **arrays)
        scna = rng.normal(size=N_GENES) + np.r_[np.full(5, 1.5 * yi), np.zeros(N_GENES - 5)]
        rows.append({"pid": pid, "mri": str(path), **{f"scna:G{g}": scna[g] for g in range(20)}})
    X = pd.DataFrame(rows).set_index("pid").rename_axis(None)
    t = rng.exponential(365.0 * np.exp(-1.0 * y)).round(1) + 1
    event = (rng.uniform(size=len(ids)) < 0.8).astype(int)
    event[[0, 1, 14, 15, 16]] = 1
    labels = pd.Series(y, index=ids).drop(TEST)  # never the test patients' labels
    labels[list(UNLABELED)] = np.nan
    extra = pd.DataFrame(
        rng.normal(size=(6, N_GENES)),
        index=[f"E{i}" for i in range(6)],
        columns=[f"scna:G{g}" for g in range(N_GENES)],
    )
    tr, va = slice(0, 14), slice(14, 22)
    return {
        "X": X,
        "y": y,
        "train": (X.iloc[tr], t[tr], event[tr]),
        "val": (X.iloc[va], t[va], event[va]),
        "labels": labels,
        "extra": extra,
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return _write_cohort(tmp_path_factory.mktemp("mtl"))


def _fit(model, cohort, *, validation=True, **kw):
    kw.setdefault("labels", cohort["labels"])
    with torch.random.fork_rng():  # the fit seeds torch; keep other tests' state untouched
        return model.fit(*cohort["train"], validation=cohort["val"] if validation else None, **kw)


def _small(cls, **kw):
    return cls(**({"widths": WIDTHS, "channels": CH, "device": "cpu", "epochs": 2} | kw))


@pytest.fixture(scope="module")
def cnn(cohort):
    return _fit(_small(MRICNNModel, seed=1), cohort)


@pytest.fixture(scope="module")
def mtl(cohort):
    return _fit(_small(MRIMTLModel, epochs=3, seed=1), cohort)


@pytest.fixture(scope="module")
def scna_mtl(cohort):
    model = _small(MRISCNAMTLModel, scna_components=5, pca_extra=True, seed=1)
    return _fit(model, cohort, extra=cohort["extra"])


@pytest.mark.parametrize("name", ["cnn", "mtl", "scna_mtl"])
def test_predictions_shapes_and_ranges(name, cohort, request):
    model = request.getfixturevalue(name)
    X = cohort["X"]  # test patients included: their labels were never given
    n = len(X)
    score = model.predict_score(X)
    assert score.shape == (n,) and ((score > 0) & (score < 1)).all()
    risk = model.predict_risk(X)
    assert risk.shape == (n,) and np.isfinite(risk).all()
    surv = model.predict_survival(X, TIMES)
    assert surv.shape == (n, len(TIMES)) and ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()
    emb = model.embed(X)
    extra = 16 if name == "scna_mtl" else 0
    assert emb.shape == (n, WIDTHS[-1] + extra) and np.isfinite(emb).all()
    desc = model.describe()
    json.dumps(desc)  # the training log is JSON
    assert desc["init"] == "random (seed 1)"
    assert desc["input_shape"] == [2, *SHAPE] and desc["embedding_dim"] == emb.shape[1]
    assert desc["params"]["channels"] == CH and desc["params"]["widths"] == list(WIDTHS)


@pytest.mark.parametrize("name", ["cnn", "mtl", "scna_mtl"])
def test_checkpoint_is_the_best_validation_auc(name, cohort, request):
    model = request.getfixturevalue(name)
    hist = pd.DataFrame(model.history_)
    seg = ["train_seg_gt", "train_seg_weak"]
    cols = ["epoch", "train_loss", "train_cls", "val_loss", "val_auc", "lr"]
    for col in [*cols, *([] if name == "cnn" else seg)]:
        assert col in hist and hist[col].notna().all(), col
    assert len(hist) == model.epochs
    best = hist.sort_values(["val_auc", "val_loss"], ascending=[False, True]).iloc[0]
    assert model.best_epoch_ == int(best["epoch"])
    # the kept network is that epoch's: its validation AUC is the logged one
    vX = cohort["val"][0]
    auc = binary_auc(cohort["labels"][vX.index].to_numpy(), model.predict_score(vX))
    assert auc == pytest.approx(best["val_auc"])
    # each term is logged as its mean over the samples it applies to (the label's BCE is then
    # on the validation BCE's scale); the loss averages the sum of terms over the batch
    assert (hist["train_cls"] > 0).all() and (hist["train_cls"] < 2).all()
    if name == "cnn":
        assert hist[seg].isna().all().all()  # no segmentation term at all
    else:
        assert (hist[seg] > 0).all().all()


def test_cnn_trains_on_labeled_scans_only(cnn):
    assert cnn.n_train_ == cnn.n_labeled_ == 10
    assert set(cnn.excluded_) == UNLABELED
    assert cnn.n_gt_ == cnn.n_weak_ == 0 and cnn.seg_mode_ is None
    assert cnn.net_.decoder is None


def test_mtl_uses_unlabeled_scans_with_a_mask(mtl):
    assert mtl.n_train_ == 12 and mtl.n_labeled_ == 10
    assert mtl.excluded_ == ["P12", "P13"]  # neither a label nor a mask
    assert mtl.n_gt_ == len(GT) and mtl.n_weak_ == len(WEAK - GT)
    assert mtl.seg_mode_ == "4class" and mtl.net_.n_seg_classes == 4
    desc = mtl.describe()
    assert desc["n_gt_masks"] == 5 and desc["excluded_patients"] == ["P12", "P13"]
    assert desc["pos_weight"] == pytest.approx(1.0)  # 5 positive, 5 negative
    w = np.array(desc["seg_class_weights"])
    assert w.mean() == pytest.approx(1.0) and w[0] < w[1:].min()  # background most frequent


def test_scna_pca_is_fitted_on_training_and_extra_patients_only(scna_mtl, cohort):
    assert scna_mtl.pca_.fitted_ids_ == TRAIN + list(cohort["extra"].index)
    assert not set(scna_mtl.pca_.fitted_ids_) & set(VAL + TEST)
    assert scna_mtl.pca_.n_components_ == 5 and scna_mtl.net_.scna_dim == 5
    desc = scna_mtl.describe()
    assert desc["scna_pca_patients"] == 20 and desc["scna_pca_extra_patients"] == 6
    # without pca_extra the SCNA-only patients are not used
    model = _small(MRISCNAMTLModel, scna_components=5, epochs=1, augment=False)
    _fit(model, cohort, extra=cohort["extra"])
    assert model.pca_.fitted_ids_ == TRAIN
    # fitted PCs are standardised on the fitted rows
    pcs = model.pca_.transform(
        cohort["train"][0].filter(like="scna:").rename(columns=lambda c: c[5:])
    )
    z = (pcs - model.scna_mean_) / model.scna_sd_
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-9)
    leaky = pd.concat([cohort["extra"], cohort["val"][0].filter(like="scna:").iloc[:1]])
    with pytest.raises(ValueError, match="validation patients"):
        _fit(_small(MRISCNAMTLModel, pca_extra=True, epochs=1), cohort, extra=leaky)


@pytest.mark.parametrize("name", ["cnn", "scna_mtl"])
def test_cox_penalizer_is_chosen_on_validation(name, request):
    model = request.getfixturevalue(name)
    scores = model.cox_scores_
    assert list(scores) == ["0.1", "1.0", "10.0"]
    finite = {float(k): v for k, v in scores.items() if v is not None}
    best = max(finite.values())
    assert model.cox_penalizer_ == next(p for p, v in finite.items() if v == best)
    assert model.describe()["cox_penalizer"] == model.cox_penalizer_


def test_without_validation_last_epoch_and_middle_penalizer(cohort):
    model = _fit(_small(MRIMTLModel, epochs=2, augment=False), cohort, validation=False)
    assert model.best_epoch_ == 2 and model.history_[0]["val_auc"] is None
    assert model.cox_penalizer_ == 1.0
    # unlabeled validation patients: no AUC, the last epoch; the Cox penalty still chosen
    vlabels = cohort["labels"].copy()
    vlabels[VAL] = np.nan
    model = _fit(_small(MRICNNModel, epochs=2, augment=False), cohort, labels=vlabels)
    assert model.best_epoch_ == 2 and model.history_[1]["val_loss"] is None
    assert any(v is not None for v in model.cox_scores_.values())


@pytest.mark.parametrize("name", ["mtl", "scna_mtl"])
def test_pickle_round_trip_predicts_the_same(name, cohort, tmp_path, request):
    model = request.getfixturevalue(name)
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    X = cohort["X"].iloc[-6:]
    np.testing.assert_array_equal(loaded.predict_score(X), model.predict_score(X))
    np.testing.assert_array_equal(loaded.predict_risk(X), model.predict_risk(X))
    np.testing.assert_array_equal(
        loaded.predict_survival(X, TIMES), model.predict_survival(X, TIMES)
    )
    assert not any(isinstance(v, torch.Tensor) and v.numel() > 1000 for v in vars(model).values())


@pytest.mark.parametrize("name", ["cnn", "scna_mtl"])
def test_integrated_gradients(name, cohort, request):
    model = request.getfixturevalue(name)
    X = cohort["X"].iloc[:2]
    before = model.predict_score(X)
    ig = model.integrated_gradients(X, n_steps=16)
    assert ig.shape == (2, 2, *SHAPE) and ig.dtype == np.float32
    assert np.isfinite(ig).all() and np.abs(ig).sum() > 0
    # completeness: the attributions add up to about logit(x) - logit(baseline)
    logit = np.log(before / (1 - before))
    with torch.no_grad():
        scna = None
        if name == "scna_mtl":
            scna = model._encode(X, "test").scna
        base = model.net_.eval()(torch.zeros(2, 2, *SHAPE), scna, decode=False)["logit"].numpy()
    np.testing.assert_allclose(ig.reshape(2, -1).sum(axis=1), logit - base, atol=0.05, rtol=0.1)
    np.testing.assert_array_equal(model.predict_score(X), before)  # network left as it was


def test_same_seed_same_predictions(mtl, cohort):
    again = _fit(_small(MRIMTLModel, epochs=3, seed=1), cohort)
    assert again.history_ == mtl.history_
    X = cohort["X"]
    np.testing.assert_array_equal(again.predict_score(X), mtl.predict_score(X))
    np.testing.assert_array_equal(again.predict_risk(X), mtl.predict_risk(X))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("weights") / "mtl.pt"
    torch.save(MTLNet(2, 4, WIDTHS).state_dict(), path)
    return path


def test_weights_are_loaded_strictly(weights_file, cohort):
    model = _small(MRIMTLModel, weights=str(weights_file), seed=5)
    fresh = MTLNet(2, 4, WIDTHS)
    assert "sha256" in model._load_weights(fresh)
    state = torch.load(weights_file, weights_only=True)
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    _fit(_small(MRIMTLModel, weights=str(weights_file), epochs=1), cohort)


def test_wrong_weights_files_are_clear_errors(cohort, tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    other = tmp_path / "other.pt"
    torch.save(MTLNet(2, 4, (4, 8)).state_dict(), other)
    cases = [
        (tmp_path / "missing.pt", FileNotFoundError, "not found"),
        (garbage, ValueError, "not a torch state-dict"),
        (other, ValueError, "does not match the network"),
    ]
    for path, error, message in cases:
        with pytest.raises(error, match=message):
            _fit(_small(MRIMTLModel, weights=str(path), epochs=1), cohort)


def test_planted_signal_is_learned(cohort):
    model = _fit(_small(MRICNNModel, epochs=3, lr=1e-2, augment=False), cohort)
    assert max(h["val_auc"] for h in model.history_) > 0.7


def test_seg_mode_follows_the_channels(cohort):
    model = _fit(_small(MRIMTLModel, channels=["t1ce"], epochs=1, augment=False), cohort)
    assert model.seg_mode_ == "core" and model.net_.n_seg_classes == 2
    assert model.n_gt_ == len(GT)


@pytest.mark.parametrize(
    ("channels", "mode", "as_gt"), [(CH, "4class", 0), (["flair"], "whole", 5)]
)
def test_binary_ground_truth_masks(channels, mode, as_gt, tmp_path):
    binary = _write_cohort(tmp_path / "binary", binary=True)
    model = _fit(_small(MRIMTLModel, channels=channels, epochs=1, augment=False), binary)
    assert model.seg_mode_ == mode
    assert model.n_gt_ == as_gt
    assert model.n_binary_gt_ == (len(GT) if as_gt == 0 else 0)
    assert model.n_weak_ == len(WEAK - GT) + model.n_binary_gt_


def test_augmentation_flips_image_and_mask_together():
    torch.manual_seed(0)
    image = torch.randn(2, *SHAPE)
    seg = (image[:1] > 0.5).to(torch.uint8)
    aug = augmenter(3)
    flipped = 0
    for _ in range(8):
        out = aug({"image": image, "seg": seg})
        torch.testing.assert_close((out["image"][:1] > 0.5).to(torch.uint8), out["seg"].as_tensor())
        flipped += not torch.equal(out["image"].as_tensor(), image)
    assert flipped > 0
    first = [augmenter(3)({"image": image})["image"] for _ in range(2)]
    torch.testing.assert_close(first[0], first[1])


def test_input_errors(cohort, tmp_path):
    X, time, event = cohort["train"]
    labels = cohort["labels"]

    def fit(model, X, **kw):
        return model.fit(X, time[: len(X)], event[: len(X)], **({"labels": labels} | kw))

    with pytest.raises(ValueError, match="needs labels"):
        fit(_small(MRIMTLModel), X, labels=None)
    with pytest.raises(ValueError, match="both classes"):
        fit(_small(MRIMTLModel), X, labels=labels.where(labels != 1))
    with pytest.raises(ValueError, match="0, 1 or missing"):
        fit(_small(MRIMTLModel), X, labels=labels.replace(1.0, 2.0))
    with pytest.raises(ValueError, match="no 'mri' column"):
        fit(_small(MRIMTLModel), X.drop(columns="mri"))
    odd = tmp_path / "odd.npz"
    np.savez_compressed(odd, t1ce=np.zeros((16, 16, 10), np.float32), flair=np.zeros((16, 16, 10)))
    with pytest.raises(ValueError, match=r"P3: MRI crop of shape \(2, 16, 16, 10\), expected"):
        fit(_small(MRIMTLModel), X.assign(mri=X["mri"].where(X.index != "P3", str(odd))))
    with pytest.raises(ValueError, match=r"P0: MRI crop of spatial size \(16, 16, 10\)"):
        fit(_small(MRIMTLModel), X.assign(mri=str(odd)))
    with pytest.raises(ValueError, match="no MRI crop file"):
        fit(_small(MRIMTLModel), X.assign(mri=X["mri"].where(X.index != "P2", None)))
    bad = tmp_path / "bad.npz"
    v = np.zeros(SHAPE, np.float32)
    np.savez_compressed(bad, t1ce=v, flair=v, weak_mask=np.full(SHAPE, 2, np.uint8))
    with pytest.raises(ValueError, match="P1: .*weak_mask must be 0/1"):
        fit(_small(MRIMTLModel), X.assign(mri=X["mri"].where(X.index != "P1", str(bad))))
    np.savez_compressed(bad, t1ce=v, flair=v, mask=np.zeros((16, 16, 4), np.uint8))
    with pytest.raises(ValueError, match=r"mask of shape \(16, 16, 4\)"):
        read_masks(bad, SHAPE, "P1")
    np.savez_compressed(bad, t1ce=v, flair=v, mask=np.full(SHAPE, 3, np.uint8))
    with pytest.raises(ValueError, match="P1: .*not BraTS labels"):
        fit(_small(MRIMTLModel), X.assign(mri=X["mri"].where(X.index != "P1", str(bad))))
    scna = _small(MRISCNAMTLModel, scna_components=3)
    with pytest.raises(ValueError, match="no 'scna:"):
        fit(scna, X.drop(columns=[c for c in X if c.startswith("scna:")]))
    holes = X.copy()
    holes.loc["P4", "scna:G3"] = np.nan
    with pytest.raises(ValueError, match="P4 lack SCNA values"):
        fit(scna, holes)
    vX, vt, ve = cohort["val"]
    with pytest.raises(ValueError, match="validation: .*P14 lack SCNA"):
        vholes = vX.copy()
        vholes.loc["P14", "scna:G0"] = np.nan
        fit(scna, X, validation=(vholes, vt, ve))
    with pytest.raises(RuntimeError, match="not fitted"):
        _small(MRICNNModel).predict_score(X)


def test_gpu_trained_model_predicts_on_a_cpu_only_machine(cnn, cohort, monkeypatch):
    loaded = pickle.loads(pickle.dumps(cnn))
    loaded.device = "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X = cohort["X"].iloc[:4]
    np.testing.assert_array_equal(loaded.predict_risk(X), cnn.predict_risk(X))
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        _fit(loaded, cohort)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_pickles_to_the_cpu(cohort, tmp_path):
    model = _fit(_small(MRISCNAMTLModel, scna_components=5, device="cuda", seed=1), cohort)
    assert model.device_.startswith("cuda")
    X = cohort["X"]
    on_gpu = model.predict_score(X)
    joblib.dump(model, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert all(p.device.type == "cpu" for p in loaded.net_.parameters())
    loaded.device = "cpu"
    np.testing.assert_allclose(loaded.predict_score(X), on_gpu, atol=0.05)  # bf16 vs fp32
    ig = loaded.integrated_gradients(X.iloc[:1], n_steps=8)
    assert ig.shape == (1, 2, *SHAPE) and np.isfinite(ig).all()


def test_input_size_resizes_volumes_and_masks(cohort):
    """A coarser training grid (config order x, y, z): the network sees it, masks follow."""
    model = _fit(_small(MRIMTLModel, epochs=1, seed=2, input_size=[4, 8, 8]), cohort)
    assert tuple(model.input_shape_) == (2, 8, 8, 4)  # (C, D, H, W)
    assert model.n_gt_ + model.n_weak_ > 0 and model.params["input_size"] == [4, 8, 8]
    score = model.predict_score(cohort["X"].loc[TEST])
    assert score.shape == (2,) and np.all((score > 0) & (score < 1))
    with pytest.raises(ValueError, match="input_size must be 3 positive"):
        _small(MRIMTLModel, input_size=[8, 8])


def test_scans_without_an_outcome_train_the_network_not_the_cox_model(cohort):
    """Scans of patients in no split (no survival) join the network's training through their
    label or mask; the Cox model is fitted on the patients with an outcome only."""
    extra = cohort["X"].loc[TEST]  # stand-ins for scans without survival
    labels = pd.concat([cohort["labels"], pd.Series([1.0, 0.0], index=TEST)])
    plain = _fit(_small(MRIMTLModel, epochs=1, seed=3), cohort)
    model = _fit(_small(MRIMTLModel, epochs=1, seed=3), cohort, labels=labels, extra_scans=extra)
    assert model.n_extra_scans_ == 2 and model.n_train_ == plain.n_train_ + 2
    assert model.n_labeled_ == plain.n_labeled_ + 2
    assert model.describe()["n_extra_scans"] == 2
    assert len(model.cox_.fitter.durations) == len(TRAIN)  # outcomes of training patients only
    risk = model.predict_risk(cohort["X"].loc[VAL])
    assert risk.shape == (len(VAL),) and np.isfinite(risk).all()
