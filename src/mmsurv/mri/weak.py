"""Weak tumour masks for scans without a ground-truth segmentation (seed paper 002, II-A/B).

Patients whose study has a tumour mask train a small 3-D U-Net (MONAI) on the whole-brain
input written by :func:`mmsurv.mri.preprocess.preprocess_patient` (``brain.npz``); the network
then labels the scans of the other patients. As in the seed paper, the labels are binary:
tumour (any label in ``tumor_labels``) versus background. Masks are image annotations, not
outcomes, so every masked scan may train the segmenter without touching the survival splits.

Conventions: numpy volumes are (D, H, W) = (z, y, x) voxels of the brain grid (the head mask's
bounding box resized to ``record["brain_size"]`` = (x, y, z)); SimpleITK sizes and indices are
(x, y, z); physical lengths are in mm.

Functions:

- :func:`train_segmenter`: fit the U-Net on the masked patients, choose the epoch by the Dice on
  a seeded held-out part, save the weights and metadata atomically;
- :func:`load_segmenter`, :func:`predict_weak_arrays` (:func:`predict_weak_mask` for a
  ``brain.npz``): the weak 0/1 mask of one whole-brain input (argmax, largest connected
  component, :func:`largest_component`);
- :func:`weak_to_grid`: the weak mask back on the patient's preprocessed grid (the patient's
  QC montage then draws it, dashed, see :mod:`mmsurv.mri.qc`).

Reproducibility: ``torch.manual_seed(seed)`` before the network is built and a numpy
``Generator(seed)`` for the held-out part, the shuffling and the flips; on CPU a fit is bitwise
repeatable for a given seed and thread count. On CUDA (forward passes under bf16 autocast, the
loss in fp32) some kernels may change the last bits between runs.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from mmsurv._torch import autocast_for, device_for, torch_threads
from mmsurv.io import atomic_path

from .io import VolumeError
from .preprocess import box_grid, resample_to

__all__ = [
    "NETWORK",
    "build_segmenter",
    "train_segmenter",
    "load_segmenter",
    "largest_component",
    "predict_weak_arrays",
    "predict_weak_mask",
    "weak_to_grid",
]

_log = logging.getLogger(__name__)

#: Architecture of the segmenter (``monai.networks.nets.UNet`` keyword arguments, less the
#: input channels); the network's input shape must be divisible by 2 ** len(strides) = 8.
NETWORK: dict[str, Any] = {
    "spatial_dims": 3,
    "out_channels": 2,
    "channels": (8, 16, 32, 64),
    "strides": (2, 2, 2),
    "num_res_units": 1,
}
_DIVISOR = 2 ** len(NETWORK["strides"])
#: Keys every checkpoint written by :func:`train_segmenter` holds.
_CHECKPOINT_KEYS = ("state_dict", "channels", "input_shape", "tumor_labels")


# --- network --------------------------------------------------------------------------------


def build_segmenter(in_channels: int) -> torch.nn.Module:
    """The 2-class 3-D U-Net of :data:`NETWORK` for ``in_channels`` input sequences.

    Parameters
    ----------
    in_channels
        Number of input channels C; the network maps (B, C, D, H, W) to (B, 2, D, H, W) logits
        (class 0 background, class 1 tumour), D, H and W divisible by 8.

    Returns
    -------
    torch.nn.Module
        A freshly initialised ``monai.networks.nets.UNet`` (seed it with ``torch.manual_seed``).
    """
    from monai.networks.nets import UNet

    return UNet(in_channels=int(in_channels), **NETWORK)


_device = device_for
_autocast = autocast_for
_torch_threads = torch_threads


# --- reading brain.npz ----------------------------------------------------------------------


def _read_brain(
    path: str | os.PathLike, channels: Sequence[str], patient_id: str | None, *, mask: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The (C, D, H, W) float32 channels of one ``brain.npz`` and its uint8 (D, H, W) mask.

    Raises
    ------
    VolumeError
        Missing file, a missing channel (or ``mask`` when ``mask`` is True), channels of
        different shapes, a non-3-D array, non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise VolumeError("brain.npz not found", path, patient_id)
    with np.load(path) as data:
        keys = set(data.files)
        wanted = [*channels, "mask"] if mask else list(channels)
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise VolumeError(
                f"brain.npz lacks {', '.join(missing)} (it holds: {', '.join(sorted(keys))})",
                path,
                patient_id,
            )
        arrays = [np.asarray(data[c], dtype=np.float32) for c in channels]
        labels = np.asarray(data["mask"]) if mask else None
    shapes = {c: a.shape for c, a in zip(channels, arrays, strict=True)}
    if labels is not None:
        shapes["mask"] = labels.shape
    if len(set(shapes.values())) != 1 or len(arrays[0].shape) != 3:
        raise VolumeError(
            f"brain.npz arrays must share one 3-D shape, got {shapes}", path, patient_id
        )
    image = np.stack(arrays)
    if not np.isfinite(image).all():
        raise VolumeError("brain.npz channels hold NaN or infinite values", path, patient_id)
    return image, labels


def _check_divisible(shape: Sequence[int], path: str | os.PathLike, patient_id: str) -> None:
    if any(n % _DIVISOR for n in shape):
        raise VolumeError(
            f"brain grid (D, H, W) = {tuple(shape)} is not divisible by {_DIVISOR} "
            f"(the U-Net halves it {len(NETWORK['strides'])} times): choose a brain_size "
            "whose entries are multiples of 8",
            path,
            patient_id,
        )


def _load_cohort(
    brain_files: Mapping[str, str | Path], channels: Sequence[str], tumor_labels: Sequence[int]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Patient ids (sorted), images (N, C, D, H, W) float32 and targets (N, 1, D, H, W) uint8."""
    ids = sorted(str(p) for p in brain_files)
    if len(ids) < 2:
        raise ValueError(
            f"the weak-label segmenter needs at least 2 patients with a tumour mask, got {len(ids)}"
        )
    if not channels:
        raise ValueError("no input channels given for the weak-label segmenter")
    files = {str(p): f for p, f in brain_files.items()}
    images, targets, first = [], [], None
    for pid in ids:
        image, labels = _read_brain(files[pid], channels, pid, mask=True)
        assert labels is not None
        if first is None:
            first = (pid, image.shape[1:])
            _check_divisible(image.shape[1:], files[pid], pid)
        elif image.shape[1:] != first[1]:
            raise VolumeError(
                f"brain grid (D, H, W) {image.shape[1:]} differs from {first[1]} of patient "
                f"{first[0]}: all patients must share one brain_size",
                files[pid],
                pid,
            )
        tumour = np.isin(labels, [int(t) for t in tumor_labels])
        if not tumour.any():
            _log.warning("%s: mask has no voxel in tumor_labels %s", pid, tuple(tumor_labels))
        images.append(image)
        targets.append(tumour.astype(np.uint8)[None])
    return ids, np.stack(images), np.stack(targets)


# --- training -------------------------------------------------------------------------------


def _check_settings(epochs: int, batch_size: int, lr: float, val_fraction: float) -> None:
    problems = []
    if int(epochs) < 1 or int(batch_size) < 1:
        problems.append(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    if not float(lr) > 0:
        problems.append(f"lr must be positive, got {lr}")
    if not 0.0 <= float(val_fraction) < 1.0:
        problems.append(f"val_fraction must be in [0, 1), got {val_fraction}")
    if problems:
        raise ValueError("invalid weak-label segmenter settings: " + "; ".join(problems))


def _split(ids: Sequence[str], val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean (N,) held-out flags: ``round(val_fraction * N)`` patients, 1 to N - 1 of them.

    ``val_fraction`` 0 holds out nobody; the patients are drawn with ``rng.permutation``.
    """
    n = len(ids)
    n_val = 0 if val_fraction == 0 else min(n - 1, max(1, round(val_fraction * n)))
    held = np.zeros(n, dtype=bool)
    held[rng.permutation(n)[:n_val]] = True
    return held


def _flip(
    images: np.ndarray, targets: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Flip each sample of (B, C, D, H, W) images and targets jointly along H and W (p = 0.5)."""
    images, targets = images.copy(), targets.copy()
    for b in range(len(images)):
        axes = tuple(int(a) for a in (2, 3) if rng.random() < 0.5)  # (C, D, H, W): H=2, W=3
        if axes:
            images[b] = np.flip(images[b], axes)
            targets[b] = np.flip(targets[b], axes)
    return images, targets


def _train_epoch(
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: torch.nn.Module,
    data: tuple[np.ndarray, np.ndarray],
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
) -> float:
    """One pass over the training patients in seeded order; mean batch loss."""
    images, targets = data
    net.train()
    order = rng.permutation(len(images))
    n_batches = math.ceil(len(order) / batch_size)
    losses = []
    for idx in np.array_split(order, n_batches):
        x, y = _flip(images[idx], targets[idx], rng)
        x_t = torch.from_numpy(x).to(device)
        y_t = torch.from_numpy(y.astype(np.int64)).to(device)
        with _autocast(device):
            logits = net(x_t)
        loss = loss_fn(logits.float(), y_t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def _labels(net: torch.nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Argmax labels (B, D, H, W) uint8 of (B, C, D, H, W) images, eval mode, no gradients."""
    net.eval()
    with torch.no_grad(), _autocast(device):
        logits = net(torch.from_numpy(np.ascontiguousarray(images)).to(device))
    return logits.float().argmax(dim=1).to(torch.uint8).cpu().numpy()


def _val_dice(
    net: torch.nn.Module, data: tuple[np.ndarray, np.ndarray], batch_size: int, device: torch.device
) -> float | None:
    """Mean tumour Dice (``monai.metrics.DiceMetric``) on the held-out patients; None if undefined.

    A patient whose mask has no tumour voxel has no Dice (NaN) and is left out of the mean.
    """
    from monai.metrics import DiceMetric

    images, targets = data
    metric = DiceMetric(include_background=False, reduction="mean")
    for start in range(0, len(images), batch_size):
        pred = torch.from_numpy(
            _labels(net, images[start : start + batch_size], device).astype(np.int64)
        )
        true = torch.from_numpy(targets[start : start + batch_size, 0].astype(np.int64))
        metric(
            y_pred=torch.nn.functional.one_hot(pred, 2).movedim(-1, 1),
            y=torch.nn.functional.one_hot(true, 2).movedim(-1, 1),
        )
    value = float(metric.aggregate().item())
    return value if math.isfinite(value) else None


def _cpu_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def _fit(
    images: np.ndarray,
    targets: np.ndarray,
    held: np.ndarray,
    settings: Mapping[str, Any],
    rng: np.random.Generator,
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]], int]:
    """Train, returning the chosen weights (CPU), the per-epoch history and the chosen epoch."""
    from monai.losses import DiceCELoss

    device = _device(settings["device"])
    torch.manual_seed(int(settings["seed"]))
    net = build_segmenter(images.shape[1]).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=float(settings["lr"]))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    train, val = (images[~held], targets[~held]), (images[held], targets[held])
    batch_size = max(1, min(int(settings["batch_size"]), len(train[0])))
    history: list[dict[str, Any]] = []
    best_state, best_epoch, best_dice = None, 0, -math.inf
    for epoch in range(1, int(settings["epochs"]) + 1):
        loss = _train_epoch(net, opt, loss_fn, train, batch_size, rng, device)
        dice = _val_dice(net, val, batch_size, device) if held.any() else None
        history.append({"epoch": epoch, "train_loss": loss, "val_dice": dice})
        _log.info("segmenter epoch %d: train loss %.4f, held-out Dice %s", epoch, loss, dice)
        score = -math.inf if dice is None else dice
        if best_state is None or score > best_dice or not held.any():
            best_state, best_epoch, best_dice = _cpu_state(net), epoch, score
    assert best_state is not None
    return best_state, history, best_epoch


def train_segmenter(
    brain_files: Mapping[str, str | Path],
    channels: Sequence[str],
    out: str | Path,
    *,
    tumor_labels: Sequence[int] = (1, 2, 4),
    epochs: int = 30,
    batch_size: int = 2,
    lr: float = 1e-3,
    val_fraction: float = 0.2,
    seed: int = 0,
    threads: int = 1,
    device: str = "auto",
) -> dict:
    """Train the weak-label segmenter on the patients that have a tumour mask and save it.

    Network :func:`build_segmenter` (MONAI 3-D U-Net, 2 classes: background / tumour = any
    label in ``tumor_labels``), loss ``DiceCELoss(to_onehot_y=True, softmax=True)``, Adam.
    Each epoch visits the training patients in a seeded random order, in mini-batches, each
    sample flipped jointly (image and mask) along the in-plane axes H and W with probability
    0.5 each. A seeded ``val_fraction`` of the patients (at least 1, at most N - 1; none when
    ``val_fraction`` is 0) is held out: after every epoch their mean Dice
    (``monai.metrics.DiceMetric(include_background=False)`` on argmax predictions) is computed
    and the weights of the best epoch are kept (the first one on ties); with nobody held out
    the last epoch's weights are kept.

    Parameters
    ----------
    brain_files
        Patient id -> ``brain.npz`` of a patient WITH a ``mask`` array (uint8 (D, H, W), BraTS
        labels or binary) and the ``channels`` (float32 (D, H, W), z-scored).
    channels
        Input channels, in network input order (e.g. ``("t1", "t1ce", "t2", "flair")``).
    out
        Checkpoint file written (``torch.save``, atomically; parent folders are created).
    tumor_labels
        Mask labels counted as tumour; other labels count as background.
    epochs, batch_size, lr
        Passes over the training patients, patients per mini-batch (capped at their number),
        Adam learning rate.
    val_fraction
        Fraction of the patients held out to choose the epoch, in [0, 1).
    seed
        Seed of the initialisation, the held-out part, the order and the flips.
    threads
        Torch CPU threads during training (the previous number is restored).
    device
        "auto" (CUDA when visible), "cuda" or "cpu".

    Returns
    -------
    dict
        JSON-able metadata, also stored in the checkpoint beside ``state_dict``: ``channels``,
        ``input_shape`` (C, D, H, W), ``tumor_labels``, ``network`` (U-Net arguments),
        ``history`` (per epoch ``epoch``, ``train_loss``, ``val_dice`` (None without a
        held-out part)), ``best_epoch``, ``best_val_dice``, ``val_patients``,
        ``train_patients``, ``seed``, ``init`` ("random (seed N)"), ``epochs``,
        ``batch_size``, ``lr``, ``device`` and ``seconds``.

    Raises
    ------
    ValueError
        Fewer than 2 patients, no channel, ``val_fraction`` outside [0, 1), ``epochs`` or
        ``batch_size`` below 1, ``lr`` not positive, an unknown ``device``.
    RuntimeError
        ``device="cuda"`` without a visible CUDA GPU.
    VolumeError
        A file without ``mask`` or a channel, a patient whose brain grid differs from the
        others', a grid not divisible by 8 (all name the patient and file).
    """
    start = time.perf_counter()
    _check_settings(epochs, batch_size, lr, val_fraction)
    _device(device)  # a bad device setting fails before the data are read
    channels = [str(c) for c in channels]
    ids, images, targets = _load_cohort(brain_files, channels, tumor_labels)
    rng = np.random.default_rng(seed)
    held = _split(ids, float(val_fraction), rng)
    settings = {
        "device": device,
        "seed": seed,
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
    }
    _log.info(
        "training weak-label segmenter on %d patients (%d held out), channels %s, grid %s",
        len(ids),
        int(held.sum()),
        channels,
        images.shape[2:],
    )
    with _torch_threads(threads):
        state, history, best_epoch = _fit(images, targets, held, settings, rng)
    meta = {
        "channels": channels,
        "input_shape": [int(n) for n in images.shape[1:]],
        "tumor_labels": [int(t) for t in tumor_labels],
        "network": {k: list(v) if isinstance(v, tuple) else v for k, v in NETWORK.items()},
        "history": history,
        "best_epoch": best_epoch,
        "best_val_dice": history[best_epoch - 1]["val_dice"] if history else None,
        "val_patients": [p for p, h in zip(ids, held, strict=True) if h],
        "train_patients": [p for p, h in zip(ids, held, strict=True) if not h],
        "seed": int(seed),
        "init": f"random (seed {int(seed)})",
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "device": str(_device(device)),
        "seconds": round(time.perf_counter() - start, 3),
    }
    _save(out, {"state_dict": state, **copy.deepcopy(meta)})
    _log.info(
        "weak-label segmenter: best epoch %d, held-out Dice %s", best_epoch, meta["best_val_dice"]
    )
    return meta


def _save(out: str | Path, checkpoint: Mapping[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``out``, then rename onto ``out``."""
    with atomic_path(out) as tmp:
        torch.save(dict(checkpoint), tmp)
    _log.info("wrote weak-label segmenter %s", out)


# --- prediction -----------------------------------------------------------------------------


def load_segmenter(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint written by :func:`train_segmenter`.

    Parameters
    ----------
    path
        The checkpoint file (read with ``torch.load(..., weights_only=True)``: tensors and
        plain Python values only, no pickled code).

    Returns
    -------
    model : torch.nn.Module
        The U-Net with the saved weights, in eval mode, on the CPU.
    meta : dict
        The checkpoint's metadata (everything but ``state_dict``).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file that is not a segmenter checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weak-label segmenter {path} not found")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    missing = [
        k for k in _CHECKPOINT_KEYS if not isinstance(checkpoint, dict) or k not in checkpoint
    ]
    if missing:
        raise ValueError(f"{path} is not a weak-label segmenter checkpoint (lacks {missing})")
    meta = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    model = build_segmenter(int(meta["input_shape"][0]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), meta


def largest_component(mask: np.ndarray, connectivity: int = 3) -> np.ndarray:
    """Keep the largest connected component of a binary volume.

    Parameters
    ----------
    mask
        (D, H, W) array; nonzero = foreground.
    connectivity
        Neighbourhood of ``scipy.ndimage.generate_binary_structure(3, connectivity)``: 1 = faces
        (6 neighbours), 2 = faces and edges (18), 3 = also corners (26).

    Returns
    -------
    numpy.ndarray
        uint8 (D, H, W) 0/1 array of the largest component (the first in scan order on ties);
        all zeros for an empty ``mask``.
    """
    structure = ndimage.generate_binary_structure(mask.ndim, connectivity)
    parts, n = ndimage.label(np.asarray(mask) != 0, structure=structure)
    if n == 0:
        return np.zeros(mask.shape, dtype=np.uint8)
    sizes = np.bincount(parts.ravel())[1:]
    return (parts == int(np.argmax(sizes)) + 1).astype(np.uint8)


def predict_weak_arrays(
    model_path: str | Path,
    arrays: Mapping[str, np.ndarray],
    *,
    threads: int = 1,
    device: str = "auto",
    source: str | os.PathLike | None = None,
) -> np.ndarray:
    """The weak tumour mask of one whole-brain input: network argmax, largest component.

    Parameters
    ----------
    model_path
        Checkpoint from :func:`train_segmenter`.
    arrays
        Channel name -> float32 (D, H, W) whole-brain array (the grid the segmenter was
        trained on, as in ``brain.npz``); other keys are ignored.
    threads
        Torch CPU threads (the previous number is restored).
    device
        "auto" (CUDA when visible), "cuda" or "cpu".
    source
        File the arrays came from, for error messages.

    Returns
    -------
    numpy.ndarray
        uint8 (D, H, W) array: 1 tumour, 0 background, one connected component
        (:func:`largest_component`, 26-connectivity).

    Raises
    ------
    VolumeError
        A channel missing, a grid other than the segmenter's input shape, non-finite values,
        or an empty prediction ("weak segmentation found no tumour").
    """
    model, meta = load_segmenter(model_path)
    missing = [c for c in meta["channels"] if c not in arrays]
    if missing:
        raise VolumeError(f"whole-brain input lacks channels {missing}", source)
    image = np.stack([np.asarray(arrays[c], dtype=np.float32) for c in meta["channels"]])
    expected = tuple(int(n) for n in meta["input_shape"])
    if image.shape != expected:
        raise VolumeError(
            f"whole-brain channels {meta['channels']} have shape (C, D, H, W) {image.shape} "
            f"but the segmenter {model_path} was trained on {expected}",
            source,
        )
    if not np.isfinite(image).all():
        raise VolumeError("whole-brain channels hold NaN or infinite values", source)
    with _torch_threads(threads):
        dev = _device(device)
        labels = _labels(model.to(dev), image[None], dev)[0]
    weak = largest_component(labels)
    if not weak.any():
        raise VolumeError("weak segmentation found no tumour", source)
    _log.info(
        "weak mask of %s: %d voxels kept of %d predicted",
        source or "whole-brain input",
        int(weak.sum()),
        int(labels.sum()),
    )
    return weak


def predict_weak_mask(
    model_path: str | Path, brain_npz: str | Path, *, threads: int = 1, device: str = "auto"
) -> np.ndarray:
    """:func:`predict_weak_arrays` of the channels stored in a patient's ``brain.npz``."""
    model_meta = load_segmenter(model_path)[1]
    image, _ = _read_brain(brain_npz, model_meta["channels"], None, mask=False)
    arrays = dict(zip(model_meta["channels"], image, strict=True))
    return predict_weak_arrays(model_path, arrays, threads=threads, device=device, source=brain_npz)


# --- back to the preprocessed grid ----------------------------------------------------------


def _record_box(
    record: Mapping[str, Any],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(lo, size, brain_size), each (x, y, z) voxels, from a preprocessing record."""
    try:
        box = record["brain_box"]
        lo = tuple(int(v) for v in box["lo"])
        size = tuple(int(v) for v in box["size"])
        brain_size = tuple(int(v) for v in record["brain_size"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"record lacks brain_box (lo, size) or brain_size: {err}") from err
    if not len(lo) == len(size) == len(brain_size) == 3:
        raise ValueError(
            f"brain_box and brain_size must be (x, y, z), got {lo}, {size}, {brain_size}"
        )
    return lo, size, brain_size


def _check_reference(reference: sitk.Image, record: Mapping[str, Any], lo, size) -> None:
    """The reference must be the record's grid and hold the box."""
    patient = record.get("patient_id")
    if "size" in record and tuple(int(n) for n in record["size"]) != reference.GetSize():
        raise VolumeError(
            f"reference size {reference.GetSize()} differs from the record's grid "
            f"{tuple(record['size'])} (x, y, z voxels)",
            None,
            patient,
        )
    if "spacing_mm" in record and not np.allclose(
        reference.GetSpacing(), record["spacing_mm"], rtol=1e-4, atol=1e-6
    ):
        raise VolumeError(
            f"reference spacing {reference.GetSpacing()} mm differs from the record's "
            f"{tuple(record['spacing_mm'])} mm",
            None,
            patient,
        )
    hi = np.asarray(lo) + np.asarray(size)
    if min(lo) < 0 or min(size) < 1 or (hi > np.asarray(reference.GetSize())).any():
        raise VolumeError(
            f"brain_box lo {lo} size {size} does not fit the grid {reference.GetSize()}",
            None,
            patient,
        )


def weak_to_grid(weak_brain: np.ndarray, record: Mapping, reference: sitk.Image) -> sitk.Image:
    """Put a brain-grid weak mask back onto the patient's preprocessed grid.

    The inverse of ``crop_resize(image, brain_box, brain_size, "nearest")`` in
    :func:`mmsurv.mri.preprocess.preprocess_patient`: the mask, placed on the brain grid
    (``box_grid``: same physical box, ``brain_size`` voxels), is resampled nearest-neighbour
    onto the voxels of ``record["brain_box"]``; every voxel outside the box is 0.

    Parameters
    ----------
    weak_brain
        (D, H, W) = (brain_size z, y, x) 0/1 mask, e.g. from :func:`predict_weak_mask`.
    record
        The patient's preprocessing record: ``brain_box`` (``lo``, ``size``: x, y, z voxels of
        the grid) and ``brain_size`` (x, y, z); ``size`` and ``spacing_mm`` are checked
        against ``reference`` when present.
    reference
        An image on the patient's preprocessed grid (e.g. the preprocessed ``t1ce.nii.gz``).

    Returns
    -------
    SimpleITK.Image
        UInt8 0/1 mask with the geometry (size, spacing, origin, direction) of ``reference``.

    Raises
    ------
    ValueError
        Record without the box; ``weak_brain`` of a shape other than ``brain_size`` reversed.
    VolumeError
        ``reference`` not on the record's grid, or a box outside it.
    """
    lo, size, brain_size = _record_box(record)
    weak_brain = np.asarray(weak_brain)
    if weak_brain.shape != brain_size[::-1]:
        raise ValueError(
            f"weak mask has shape {weak_brain.shape} but brain_size {brain_size} (x, y, z) "
            f"needs (D, H, W) = {brain_size[::-1]}"
        )
    _check_reference(reference, record, lo, size)
    brain = sitk.GetImageFromArray((weak_brain != 0).astype(np.uint8))
    brain.CopyInformation(box_grid(reference, (lo, size), brain_size))
    roi = sitk.RegionOfInterest(reference, list(size), list(lo))
    box_values = sitk.GetArrayFromImage(resample_to(brain, roi, "nearest"))
    full = np.zeros(reference.GetSize()[::-1], dtype=np.uint8)
    full[lo[2] : lo[2] + size[2], lo[1] : lo[1] + size[1], lo[0] : lo[0] + size[0]] = box_values
    out = sitk.GetImageFromArray(full)
    out.CopyInformation(reference)
    return out
