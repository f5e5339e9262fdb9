"""Survival models on MRI volumes: the unimodal DenseNet-121 and the MMNN (MRI + clinical).

Both follow the sarcoma MMNN paper (a multimodal neural network with gradient blending):

=======================  ==================================  ===================================
model                    class                               network (:mod:`.mri_nets`)
=======================  ==================================  ===================================
``mri_densenet``         :class:`MRIDenseNetModel`           3D DenseNet-121 + linear risk head
``mri_clinical_mmnn``    :class:`MRIClinicalMMNNModel`       DenseNet-121 + clinical MLP, fused
=======================  ==================================  ===================================

Input table ``X``: one row per patient, indexed by patient id (unique); column ``mri`` is the
path of the patient's ``crop.npz`` (``numpy.savez_compressed``: one float32 (D, H, W) array per
channel name, e.g. ``t1``, ``t1ce``, ``t2``, ``flair``, ``mask``, all of one shape, already
z-scored; D is the slice axis). The arrays named by ``channels`` are stacked in that order into
the (C, D, H, W) input; every patient's crop must have the same shape, each axis at least 29
voxels (DenseNet-121 halves the resolution five times). The MMNN also reads the clinical columns
``numeric`` and ``categorical`` (imputed, z-scored and one-hot encoded by a
:class:`~mmsurv.models.tabular.TabularPreprocessor` fitted on the training patients only).

Training (the paper's recipe; the defaults are CPU-friendly where noted): SGD with Nesterov
momentum and weight decay under a OneCycle learning-rate schedule (``lr`` is its peak, the
momentum is held at ``momentum``); batches of ``batch_size`` patients shuffled with a seeded
generator; the negative Cox partial log-likelihood (torchsurv, Efron ties) of each batch, a
batch without an event (or of one patient) being skipped as it carries no Cox information;
training-time augmentation applied jointly to all channels of a sample (MONAI array transforms,
each with probability 0.5: flips of the two in-plane axes, an in-plane rotation of up to 15
degrees, a zoom of 0.9-1.1), none to clinical inputs. The MMNN minimises
``sum_k w_k L_k`` over its heads (multimodal, image, clinical) with weights from
:class:`~mmsurv.models.blending.GradientBlender`: uniform at first, re-estimated after every
``blend_every`` epochs from each head's unweighted loss on the whole training set and the
whole validation split (eval mode, no augmentation), the first reference being the untrained
network; without blending it minimises the multimodal head's loss alone. After every epoch the
unweighted multimodal-head (DenseNet: risk-head) Cox loss on the validation split selects the
checkpoint: all epochs are run (optionally stopped after ``patience`` epochs without
improvement) and the best one is kept. Without a usable validation split (none, or no event)
the last epoch is kept and the blending weights stay uniform.

The image subnetwork starts from ``weights`` (a local state-dict file, loaded strictly; nothing
is downloaded; the paper used a self-supervised DenseNet-121 pre-trained on BHB-10k brain MRI)
or from a seeded random initialisation, which :meth:`describe` states. Prediction uses eval
mode; survival curves come from a Breslow baseline fitted on the training patients' risks,
``S(t | x) = exp(-H0(t) exp(risk(x)))``.

Volumes are read into memory once per ``fit``/``predict`` call and not kept on the model.
Reproducibility: ``torch.manual_seed(seed)`` before the network is built, a numpy generator for
the shuffling and MONAI's ``set_random_state`` for the augmentation: on the CPU a fit is
repeatable for a given seed and thread count. On CUDA (bf16 autocast for the forward passes)
non-deterministic kernels can change the last bits.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from sksurv.linear_model.coxph import BreslowEstimator
from torch import nn

from mmsurv._torch import load_weights
from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.base import SurvivalModel
from mmsurv.models.blending import GradientBlender
from mmsurv.models.mri_nets import (
    CAM_LAYER,
    HEADS,
    MIN_INPUT_SIZE,
    MMNN,
    DenseNetSurv,
    ImageRisk,
)
from mmsurv.models.tabular import TabularPreprocessor
from mmsurv.models.torch_model import (
    Validation,
    _autocast,
    _check_outcomes,
    _device,
    breslow_survival,
    cox_loss,
    portable_state,
)

__all__ = ["MRIDenseNetModel", "MRIClinicalMMNNModel", "read_crop", "unit_range"]

log = logging.getLogger(__name__)

#: Image features per modality (the paper: 12).
N_FEATURES = 12
#: Largest in-plane rotation of the augmentation (radians; 15 degrees).
MAX_ROTATION = math.radians(15.0)


def read_crop(
    path: str | os.PathLike[str], channels: Sequence[str], patient: str = ""
) -> np.ndarray:
    """The stacked channels of one patient's ``crop.npz``.

    Parameters
    ----------
    path
        ``crop.npz`` with one (D, H, W) array per channel name.
    channels
        Names of the arrays to stack, in order.
    patient
        Patient id, for error messages.

    Returns
    -------
    numpy.ndarray
        Shape (C, D, H, W) float32.
    """
    who = f"patient {patient}: " if patient else ""
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"{who}no MRI crop file in column 'mri' ({path!r})")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{who}MRI crop file {path} not found")
    with np.load(path, allow_pickle=False) as npz:
        missing = [c for c in channels if c not in npz.files]
        if missing:
            raise ValueError(f"{who}{path} lacks channels {missing} (it has {sorted(npz.files)})")
        arrays = [np.asarray(npz[c], dtype=np.float32) for c in channels]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 3:
        raise ValueError(f"{who}{path}: channels {list(channels)} need one 3D shape, got {shapes}")
    out = np.stack(arrays)
    if not np.isfinite(out).all():
        raise ValueError(f"{who}{path} holds non-finite values")
    return out


def unit_range(maps: np.ndarray) -> np.ndarray:
    """Each map of (B, ...) scaled to 0..1 (min to 0, max to 1); a constant map is all 0."""
    flat = maps.reshape(len(maps), -1)
    lo = flat.min(axis=1, keepdims=True)
    span = flat.max(axis=1, keepdims=True) - lo
    scaled = np.divide(flat - lo, span, out=np.zeros_like(flat), where=span > 0)
    return scaled.reshape(maps.shape)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _augmenter(seed: int, spatial_dims: int = 3) -> Any:
    """Joint augmentation of one (C, D, H, W) sample, or (C, H, W) with ``spatial_dims=2``:
    flips of the two in-plane axes, an in-plane rotation, a zoom (MONAI array transforms,
    seeded)."""
    from monai.transforms import Compose, RandFlip, RandRotate, RandZoom

    first = spatial_dims - 2  # the first in-plane axis: H of (D, H, W), H of (H, W)
    return Compose(
        [
            RandFlip(prob=0.5, spatial_axis=first),
            RandFlip(prob=0.5, spatial_axis=first + 1),
            RandRotate(range_x=MAX_ROTATION, prob=0.5, keep_size=True, padding_mode="zeros"),
            RandZoom(
                prob=0.5,
                min_zoom=0.9,
                max_zoom=1.1,
                mode="trilinear" if spatial_dims == 3 else "bilinear",
                padding_mode="constant",
                keep_size=True,
            ),
        ]
    ).set_random_state(seed=seed)


@dataclass
class _Patients:
    """Inputs of n patients as CPU tensors."""

    ids: np.ndarray  # (n,) str
    images: torch.Tensor  # (n, C, D, H, W) float32
    clinical: torch.Tensor | None  # (n, F) float32

    def __len__(self) -> int:
        return len(self.ids)


class _MRISurvivalModel(SurvivalModel):
    """Shared base: inputs, the training loop, checkpoint selection, prediction, Grad-CAM."""

    #: Whether the model reads clinical columns.
    uses_clinical: ClassVar[bool] = False
    #: The head whose risk is the prediction (and whose validation loss selects the epoch).
    main_head: ClassVar[str] = "image"
    #: Patients per forward pass in evaluation.
    eval_batch_size: ClassVar[int] = 8
    #: Default Grad-CAM target layer inside the image subnetwork.
    cam_layer: ClassVar[str] = CAM_LAYER

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        momentum: float,
        weight_decay: float,
        dropout: float,
        channels: Sequence[str],
        augment: bool,
        weights: str | None,
        patience: int | None,
        seed: int,
        threads: int,
        device: str,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
        if epochs < 1 or batch_size < 2:
            raise ValueError(f"need epochs >= 1 and batch_size >= 2, got {epochs}, {batch_size}")
        if lr <= 0 or weight_decay < 0 or not 0 < momentum < 1 or not 0 <= dropout < 1:
            raise ValueError(
                "need lr > 0, weight_decay >= 0, 0 < momentum < 1 (Nesterov) and "
                f"0 <= dropout < 1; got {lr}, {weight_decay}, {momentum}, {dropout}"
            )
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be None or at least 1, got {patience}")
        if isinstance(channels, str) or not channels:
            raise ValueError(f"channels must be a non-empty list of names, got {channels!r}")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.channels = [str(c) for c in channels]
        self.augment = bool(augment)
        self.weights = None if weights is None else os.fspath(weights)
        self.patience = None if patience is None else int(patience)
        self.device = device

    # ----------------------------------------------------------------- subclass hooks

    @abstractmethod
    def _build_net(self, in_channels: int, clinical_dim: int) -> nn.Module:
        """The untrained network (image subnetwork as ``net.image``)."""

    @abstractmethod
    def _outputs(
        self, net: nn.Module, image: torch.Tensor, clinical: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Head -> risk (B,) of a batch."""

    def _blender(self, has_validation: bool) -> GradientBlender | None:
        """The loss-weight estimator (None: fixed weights)."""
        return None

    def _loss_weights(self, blender: GradientBlender | None) -> dict[str, float]:
        return {self.main_head: 1.0} if blender is None else dict(blender.weights)

    def _make_augmenter(self) -> Any:
        """The training-time augmentation of one (C, D, H, W) sample."""
        return _augmenter(self.seed)

    # ----------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        """State with the network on the CPU (portable pickles)."""
        return portable_state(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ----------------------------------------------------------------- inputs

    @contextlib.contextmanager
    def _session(self, *, training: bool = False) -> Iterator[torch.device]:
        """Torch's thread count for one call, and its device.

        Training on ``device: cuda`` without a visible GPU is an error; prediction with a
        model trained on a GPU falls back to the CPU (logged), so that a report job without a
        GPU can use it.
        """
        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.threads)))
        requested = self.device
        if not training and requested == "cuda" and not torch.cuda.is_available():
            log.warning("no CUDA GPU visible: predicting on the CPU")
            requested = "cpu"
        try:
            yield _device(requested)
        finally:
            torch.set_num_threads(previous)

    #: Input table column holding each patient's network input file, and its description.
    input_column: ClassVar[str] = "mri"
    input_what: ClassVar[str] = "MRI crop"

    def _read_input(self, path: Any, patient: str) -> np.ndarray:
        """One patient's network input, (C, D, H, W), checked for DenseNet-121's size."""
        v = read_crop(path, self.channels, patient)
        if min(v.shape[1:]) < MIN_INPUT_SIZE:
            raise ValueError(
                f"patient {patient}: MRI crop of spatial size {tuple(v.shape[1:])}; "
                f"DenseNet-121 needs at least {MIN_INPUT_SIZE} voxels per axis"
            )
        return v

    def _encode(self, X: pd.DataFrame) -> _Patients:
        """Inputs (and clinical vectors) of the patients of ``X``, checked to share one shape."""
        if not X.index.is_unique:
            dup = X.index[X.index.duplicated()].unique()
            raise ValueError(f"duplicate patient ids {list(dup[:5])}")
        column = self.input_column
        if column not in X:
            raise ValueError(f"X has no {column!r} column ({self.input_what} file per patient)")
        ids = X.index.astype(str).to_numpy()
        expected = getattr(self, "input_shape_", None)
        images = None
        for i, (u, path) in enumerate(zip(ids, X[column], strict=True)):
            v = self._read_input(path, u)
            shape = tuple(int(s) for s in v.shape)
            if expected is None:
                expected = shape
            if shape != expected:
                raise ValueError(
                    f"patient {u}: {self.input_what} of shape {shape}, expected {expected} "
                    "(all patients' inputs must share one size)"
                )
            if images is None:  # filled in place: no second copy of the cohort's volumes
                images = np.empty((len(ids), *shape), dtype=np.float32)
            images[i] = v
        clinical = None
        if self.uses_clinical:
            self._check_clinical(X)
            clinical = torch.from_numpy(self.prep_.transform(X).to_numpy(np.float32))
        return _Patients(
            ids=ids,
            images=torch.empty(0) if images is None else torch.from_numpy(images),
            clinical=clinical,
        )

    def _check_clinical(self, X: pd.DataFrame) -> None:
        missing = [c for c in self.prep_.numeric + self.prep_.categorical if c not in X]
        if missing:
            raise ValueError(f"X lacks the clinical columns {missing}")

    def _load_image_weights(self, image: nn.Module) -> str:
        """Load ``weights`` into the image subnetwork; the init description for the log."""
        what = (
            f"image subnetwork (mmsurv.models.mri_nets.image_subnet: MONAI 3D DenseNet-121, "
            f"{len(self.channels)} input channels, {N_FEATURES} outputs)"
        )
        return load_weights(image, self.weights, what, self.seed)

    # ----------------------------------------------------------------- training

    def fit(
        self,
        X: pd.DataFrame,
        time: np.ndarray,
        event: np.ndarray,
        *,
        validation: Validation | None = None,
    ) -> Self:
        """Train on the training patients; ``validation`` selects the checkpoint (and blends).

        Parameters
        ----------
        X
            Training patients (see the module docstring), n rows.
        time
            Event or censoring time (days), shape (n,).
        event
            1 for an event, 0 for censoring, shape (n,).
        validation
            The validation split's ``(X, time, event)``, or None (the last epoch is kept).

        Returns
        -------
        Self
            ``self``, fitted.
        """
        time, event = _check_outcomes(X, time, event, "training")
        if len(X) < 2 or not event.any():
            raise ValueError(
                f"cannot fit a Cox loss on {len(X)} patient(s) with {int(event.sum())} event(s)"
            )
        with self._session(training=True) as device:
            self.device_ = str(device)
            self.__dict__.pop("input_shape_", None)  # a refit learns its own shape
            if self.uses_clinical:
                self._check_clinical(X)
                self.prep_.fit_transform(X)  # on the training patients only
            train = self._encode(X)
            self.input_shape_ = tuple(int(s) for s in train.images.shape[1:])
            val = self._validation(validation)
            torch.manual_seed(self.seed)
            clinical_dim = 0 if train.clinical is None else int(train.clinical.shape[1])
            net = self._build_net(len(self.channels), clinical_dim)
            self.init_ = self._load_image_weights(net.image)
            net.to(device)
            self._train(net, train, time, event, val, device)
            self.net_ = net
            self.n_train_ = len(train)
            risk = self._predict_heads(net, train, device)[self.main_head]
            self.baseline_ = BreslowEstimator().fit(risk, event, time)
        return self

    def _validation(
        self, validation: Validation | None
    ) -> tuple[_Patients, np.ndarray, np.ndarray] | None:
        if validation is None:
            return None
        vX, vtime, vevent = validation
        vtime, vevent = _check_outcomes(vX, vtime, vevent, "validation")
        if not vevent.any():
            log.warning(
                "validation split has no event (%d patients): its Cox loss is undefined, so the "
                "last epoch is kept and no gradient blending is done",
                len(vX),
            )
            return None
        return self._encode(vX), vtime, vevent

    def _head_losses(
        self,
        net: nn.Module,
        data: _Patients,
        time: np.ndarray,
        event: np.ndarray,
        device: torch.device,
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Unweighted Cox loss of every head on the whole set (eval mode), and the risks."""
        risks = self._predict_heads(net, data, device)
        losses = {k: float(cox_loss(torch.from_numpy(r), event, time)) for k, r in risks.items()}
        return losses, risks

    def _train(
        self,
        net: nn.Module,
        train: _Patients,
        time: np.ndarray,
        event: np.ndarray,
        val: tuple[_Patients, np.ndarray, np.ndarray] | None,
        device: torch.device,
    ) -> None:
        """The epoch loop; sets ``history_``, ``best_epoch_``, ``stopped_early_``, blending."""
        rng = np.random.default_rng(self.seed)
        augment = self._make_augmenter() if self.augment else None
        n = len(train)
        n_batches = math.ceil(n / min(self.batch_size, n))
        opt = torch.optim.SGD(
            net.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            nesterov=True,
            weight_decay=self.weight_decay,
        )
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.lr, total_steps=self.epochs * n_batches, cycle_momentum=False
        )
        blender = self._blender(val is not None)
        if blender is not None and val is not None:  # reference losses: the untrained network
            blender.update(
                self._head_losses(net, train, time, event, device)[0],
                self._head_losses(net, *val, device)[0],
                epoch=0,
            )
        self.history_: list[dict[str, Any]] = []
        self.stopped_early_ = False
        best_loss, best_state, self.best_epoch_, waited = math.inf, None, 0, 0
        for epoch in range(1, self.epochs + 1):
            weights = self._loss_weights(blender)
            net.train()
            sums: dict[str, float] = {}
            n_steps = 0
            lr = opt.param_groups[0]["lr"]
            for idx in np.array_split(rng.permutation(n), n_batches):
                if len(idx) < 2 or not event[idx].any():
                    continue  # no Cox term (one patient, or no event): no gradient
                image = train.images[idx].to(device)
                if augment is not None:
                    image = torch.stack([_as_tensor(augment(x)) for x in image])
                clinical = None if train.clinical is None else train.clinical[idx].to(device)
                with _autocast(device):
                    out = self._outputs(net, image, clinical)
                per_head = {k: cox_loss(r, event[idx], time[idx]) for k, r in out.items()}
                loss = sum(w * per_head[k] for k, w in weights.items() if w > 0)
                assert isinstance(loss, torch.Tensor)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"epoch {epoch}: training loss is not finite")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                lr = opt.param_groups[0]["lr"]
                opt.step()
                sched.step()
                n_steps += 1
                for k, v in (("_total", loss), *per_head.items()):
                    sums[k] = sums.get(k, 0.0) + float(v.detach())
            row = self._history_row(epoch, sums, n_steps, lr, weights, blender)
            if val is not None:
                vlosses, vrisks = self._head_losses(net, *val, device)
                vloss = vlosses[self.main_head]
                row["val_loss"] = vloss
                row["val_c_index"] = harrell_c(val[1], val[2], vrisks[self.main_head])
                if len(vlosses) > 1:
                    row |= {f"val_loss_{k}": v for k, v in vlosses.items()}
                if vloss < best_loss:
                    best_loss, self.best_epoch_, waited = vloss, epoch, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
                if blender is not None and epoch % blender.every == 0:  # Wang et al.'s update
                    tlosses = self._head_losses(net, train, time, event, device)[0]
                    if not all(map(math.isfinite, [*tlosses.values(), *vlosses.values()])):
                        raise FloatingPointError(
                            f"epoch {epoch}: a head's loss is not finite (training "
                            f"{_fmt(tlosses)}; validation {_fmt(vlosses)})"
                        )
                    row |= {f"eval_train_loss_{k}": v for k, v in tlosses.items()}
                    new = blender.update(tlosses, vlosses, epoch=epoch)
                    log.info("epoch %d: blending weights %s", epoch, _fmt(new))
            self.history_.append(row)
            log.info(
                "epoch %d: train loss %.4f, validation loss %s",
                epoch,
                row["train_loss"],
                "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}",
            )
            if val is not None and self.patience is not None and waited >= self.patience:
                self.stopped_early_ = True
                log.info("early stopping after epoch %d (patience %d)", epoch, self.patience)
                break
        self.blending_history_ = (
            None if blender is None else [{"epoch": e, **w} for e, w in blender.history]
        )
        if val is None:
            self.best_epoch_ = len(self.history_)
            log.info("no usable validation split: keeping the last epoch (%d)", self.best_epoch_)
        elif best_state is None:
            self.best_epoch_ = len(self.history_)
            log.warning("validation loss was never finite: keeping the last epoch's weights")
        else:
            net.load_state_dict(best_state)
            log.info("restored epoch %d (validation loss %.4f)", self.best_epoch_, best_loss)

    def _history_row(
        self,
        epoch: int,
        sums: dict[str, float],
        n_steps: int,
        lr: float,
        weights: dict[str, float],
        blender: GradientBlender | None,
    ) -> dict[str, Any]:
        def mean(key: str) -> float:
            return sums[key] / n_steps if n_steps else float("nan")

        row: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": mean("_total"),
            "val_loss": None,
            "val_c_index": None,
            "lr": float(lr),
        }
        return row

    # ----------------------------------------------------------------- prediction

    def _predict_heads(
        self, net: nn.Module, data: _Patients, device: torch.device
    ) -> dict[str, np.ndarray]:
        """Head -> risk (n,) float64, eval mode, no augmentation."""
        net.to(device).eval()
        parts: dict[str, list[np.ndarray]] = {}
        with torch.inference_mode(), _autocast(device):
            for start in range(0, len(data), self.eval_batch_size):
                sl = slice(start, start + self.eval_batch_size)
                clinical = None if data.clinical is None else data.clinical[sl].to(device)
                out = self._outputs(net, data.images[sl].to(device), clinical)
                for k, r in out.items():
                    parts.setdefault(k, []).append(r.float().cpu().numpy())
        return {k: np.concatenate(v).astype(float) for k, v in parts.items()}

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Log relative hazard per patient, shape (n,); higher = worse."""
        self._check_fitted()
        with self._session() as device:
            data = self._encode(X)
            if not len(data):
                return np.empty(0)
            return self._predict_heads(self.net_, data, device)[self.main_head]

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival ``exp(-H0(t) exp(risk))`` at ``times`` (days), shape (n, len(times)).

        ``H0`` is the Breslow cumulative baseline hazard of the training patients.
        """
        return breslow_survival(self.baseline_, self.predict_risk(X), times)

    def grad_cam(
        self, X: pd.DataFrame, n: int | None = None, *, layer: str | None = None
    ) -> dict[str, np.ndarray]:
        """Grad-CAM heat maps of the predicted risk (Selvaraju et al., MONAI ``GradCAM``).

        The gradient of the risk (the MMNN: the multimodal head, with the patient's own
        clinical vector held fixed) is taken at the image subnetwork's last convolutional
        feature map (``image.class_layers.relu``, the activation after DenseNet-121's
        ``features.norm5``), in eval mode and fp32; the map is upsampled trilinearly to the
        input size and scaled to 0..1 per patient (a constant map is all 0).

        Parameters
        ----------
        X
            Patients (the input table of :meth:`fit`).
        n
            Only the first ``n`` patients of ``X`` (None: all).
        layer
            Target layer, a module name inside the image subnetwork (default ``cam_layer``:
            the last convolutional feature map; for DenseNet-121 its resolution is the
            input's / 32, e.g. 2^3 for a 64^3 crop, and ``features.denseblock3`` gives twice
            that resolution).

        Returns
        -------
        dict[str, numpy.ndarray]
            Patient id -> map of the input's spatial shape ((D, H, W); (H, W) for a 2D
            network), float32 in [0, 1].
        """
        from monai.visualize import GradCAM

        self._check_fitted()
        layer = layer or self.cam_layer
        names = {name for name, _ in self.net_.image.named_modules() if name}
        if layer not in names:
            raise ValueError(f"no layer {layer!r} in the image subnetwork; e.g. {self.cam_layer!r}")
        if n is not None:
            X = X.iloc[: max(0, int(n))]
        out: dict[str, np.ndarray] = {}
        with self._session() as device:
            data = self._encode(X)
            # a copy: MONAI registers hooks on the network it is given, for good
            net = copy.deepcopy(self.net_).to(device).eval()
            wrapper = ImageRisk(net, None if data.clinical is None else data.clinical[:1])
            cam = GradCAM(
                nn_module=wrapper, target_layers=f"net.image.{layer}", postprocessing=_identity
            )
            for start in range(0, len(data), self.eval_batch_size):
                sl = slice(start, start + self.eval_batch_size)
                if data.clinical is not None:
                    wrapper.clinical = data.clinical[sl].to(device)
                maps = cam(data.images[sl].to(device), class_idx=0)
                maps = unit_range(maps.detach().float().cpu().numpy()[:, 0])
                out |= {
                    str(u): m.astype(np.float32) for u, m in zip(data.ids[sl], maps, strict=True)
                }
        return out

    def describe(self) -> dict[str, Any]:
        """Parameters, initialisation, training curve and fitted facts for the training log."""
        out: dict[str, Any] = {"params": self.params}
        if hasattr(self, "net_"):
            out |= {
                "init": self.init_,
                "best_epoch": self.best_epoch_,
                "epochs_run": len(self.history_),
                "stopped_early": self.stopped_early_,
                "history": self.history_,
                "blending_weights": self.blending_history_,
                "n_train_patients": self.n_train_,
                "input_shape": list(self.input_shape_),
                "channels": self.channels,
                "device": self.device_,
                "n_parameters": int(sum(p.numel() for p in self.net_.parameters())),
            }
            if self.uses_clinical:
                out["clinical_features"] = self.prep_.feature_names
        return out


def _as_tensor(x: Any) -> torch.Tensor:
    """A MONAI transform's output (a MetaTensor) as a plain tensor."""
    from monai.utils import convert_to_tensor

    return convert_to_tensor(x, track_meta=False)


def _fmt(weights: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in weights.items())


def _own_params(values: dict[str, Any]) -> dict[str, Any]:
    """An ``__init__``'s ``locals()`` as the experiment parameters it was built with."""
    skip = {"self", "__class__", "seed", "threads", "device", "numeric", "categorical"}
    out = {k: v for k, v in values.items() if k not in skip}
    if "channels" in out:
        out["channels"] = list(out["channels"])
    return out


class MRIDenseNetModel(_MRISurvivalModel):
    """Unimodal 3D DenseNet-121 on the stacked MRI channels (``mri_densenet``).

    Parameters (``params`` of an experiment; "paper" = the sarcoma MMNN paper)
    -------------------------------------------------------------------------
    epochs : int, default 40
        Epochs (paper 200; fewer by default for CPU runs).
    batch_size : int, default 8
        Patients per mini-batch (paper).
    lr : float, default 5e-4
        Peak learning rate of the OneCycle schedule (ours).
    momentum : float, default 0.9
        Nesterov momentum of SGD, held fixed (paper: SGD with Nesterov momentum; value ours).
    weight_decay : float, default 1e-4
        SGD weight decay (ours).
    dropout : float, default 0.2
        Dropout inside the DenseNet (ours).
    channels : list of str, default ["t1ce", "t2"]
        Arrays of ``crop.npz`` stacked as input channels (paper: T1 post-contrast and T2). In
        an experiment's ``params`` a list means a grid, so write a list of lists.
    augment : bool, default True
        Training-time flips, rotation and zoom (paper).
    weights : str | None, default None
        Local state-dict file of :func:`~mmsurv.models.mri_nets.image_subnet` (C channels, 12
        outputs) to start from, loaded strictly; None: seeded random initialisation.
    patience : int | None, default None
        Stop after this many epochs without a lower validation loss (None: run all epochs,
        as the paper does).
    """

    main_head = "image"

    def __init__(
        self,
        *,
        epochs: int = 40,
        batch_size: int = 8,
        lr: float = 5e-4,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        dropout: float = 0.2,
        channels: Sequence[str] = ("t1ce", "t2"),
        augment: bool = True,
        weights: str | None = None,
        patience: int | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            dropout=dropout,
            channels=channels,
            augment=augment,
            weights=weights,
            patience=patience,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.params = _own_params(locals())

    def _build_net(self, in_channels: int, clinical_dim: int) -> nn.Module:
        return DenseNetSurv(in_channels, N_FEATURES, self.dropout)

    def _outputs(
        self, net: nn.Module, image: torch.Tensor, clinical: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        return {"image": net(image)}


class MRIClinicalMMNNModel(_MRISurvivalModel):
    """The MMNN: DenseNet-121 on MRI and an MLP on clinical variables (``mri_clinical_mmnn``).

    The two 12-feature vectors are concatenated and a linear layer gives the risk; the heads'
    losses are combined by gradient blending.

    ``X`` has ``mri`` and the clinical columns ``numeric`` + ``categorical`` (supplied by the
    training job). The prediction is the multimodal head's risk; the auxiliary image and
    clinical heads only shape training.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    gradient_blending : bool, default True
        Weigh the three heads' losses by :class:`~mmsurv.models.blending.GradientBlender`
        (paper); False: the multimodal head's loss alone.
    blend_every : int, default 5
        Epochs between blending-weight updates (paper: 5).
    epochs, batch_size, lr, momentum, weight_decay, dropout, channels, augment, weights, patience
        As for :class:`MRIDenseNetModel` (``dropout`` applies to both subnetworks).
    """

    uses_clinical = True
    main_head = "mm"

    def __init__(
        self,
        *,
        numeric: Sequence[str] = (),
        categorical: Sequence[str] = (),
        gradient_blending: bool = True,
        blend_every: int = 5,
        epochs: int = 40,
        batch_size: int = 8,
        lr: float = 5e-4,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        dropout: float = 0.2,
        channels: Sequence[str] = ("t1ce", "t2"),
        augment: bool = True,
        weights: str | None = None,
        patience: int | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            dropout=dropout,
            channels=channels,
            augment=augment,
            weights=weights,
            patience=patience,
            seed=seed,
            threads=threads,
            device=device,
        )
        if not list(numeric) and not list(categorical):
            raise ValueError("the MMNN needs at least one clinical variable (numeric/categorical)")
        if blend_every < 1:
            raise ValueError(f"blend_every must be at least 1, got {blend_every}")
        self.gradient_blending = bool(gradient_blending)
        self.blend_every = int(blend_every)
        self.prep_ = TabularPreprocessor(list(numeric), list(categorical), drop_first=False)
        self.params = _own_params(locals())

    def _build_net(self, in_channels: int, clinical_dim: int) -> nn.Module:
        return MMNN(in_channels, clinical_dim, N_FEATURES, self.dropout)

    def _outputs(
        self, net: nn.Module, image: torch.Tensor, clinical: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        assert clinical is not None
        return net(image, clinical)

    def _blender(self, has_validation: bool) -> GradientBlender | None:
        if not self.gradient_blending:
            return None
        if not has_validation:
            log.warning("gradient blending needs a validation split: the weights stay uniform")
        return GradientBlender(HEADS, every=self.blend_every)

    def _history_row(
        self,
        epoch: int,
        sums: dict[str, float],
        n_steps: int,
        lr: float,
        weights: dict[str, float],
        blender: GradientBlender | None,
    ) -> dict[str, Any]:
        row = super()._history_row(epoch, sums, n_steps, lr, weights, blender)
        for k in HEADS:
            row[f"train_loss_{k}"] = sums[k] / n_steps if n_steps else float("nan")
        for k in HEADS:
            row[f"val_loss_{k}"] = None
        for k in HEADS:
            row[f"w_{k}"] = None if blender is None else float(weights[k])
        for k in HEADS:
            row[f"eval_train_loss_{k}"] = None
        return row
