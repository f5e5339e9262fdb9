"""Shared training machinery of the torch survival models (MIL, RNA MLP, fusion).

:class:`TorchSurvivalModel` turns the training job's input table into tensors, trains a network
with the Cox partial likelihood, stops early on the validation loss and predicts risks and
survival curves. Subclasses (``mmsurv.models.mil``) only say which inputs they use, which
network they build and how a batch goes through it.

Input table ``X`` (one row per prediction unit, indexed by unit id, ids unique):

- ``patient_id``: the unit's patient. Rows of one patient share one RNA profile, so the RNA
  preprocessing is fitted on unique patients (without the column every row is its own patient);
- ``wsi`` (models using slides): path of the slide's patch-feature HDF5 file, datasets
  ``features`` (N, D) float and ``coords`` (N, 2); a leading axis of size 1 is squeezed;
- ``rna:{gene}`` (models using RNA): logged expression, log2(CPM + 1) or log2(TPM + 1).
  A missing value is an error: units without RNA must be left out before the model.

Training, per epoch: the training units are shuffled (seeded) and cut into
``ceil(n / batch_size)`` mini-batches of near-equal size; in each batch every slide contributes
``bag_size`` patches drawn without replacement (all patches when it has fewer, or when
``bag_size`` is None), padded with a mask; the loss is the negative Cox partial log-likelihood
(torchsurv, Efron ties, mean over event times); a batch without an event carries no information
for that loss and is skipped; AdamW with gradient-norm clipping. With a validation split the
validation loss is computed after every epoch on all validation units at once, in eval mode and
with all their patches; training stops after ``patience`` epochs without improvement and the
best epoch's weights are restored. Without one, all epochs are run and the last weights kept.

Prediction uses eval mode and all patches. A slide without any patch is left out of training
(a logged warning) and gets a NaN risk, NaN survival and an empty attention vector: no value is
made up for it. Survival curves come from a Breslow baseline hazard fitted on the training
units' final risks: ``S(t | x) = exp(-H0(t) exp(risk(x)))``.

Reproducibility: ``torch.manual_seed(seed)`` before the network is built (weights, dropout) and
a numpy ``Generator(seed)`` for shuffling and patch sampling; on CPU a fit is bitwise
repeatable for a given seed and thread count. On CUDA (picked automatically when available;
forward passes under bf16 autocast, the loss in fp32) atomics in some kernels can change the
last bits between runs.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import warnings
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from sksurv.linear_model.coxph import BreslowEstimator
from torch import nn

from mmsurv._torch import autocast_for, device_for
from mmsurv.evaluation.metrics import harrell_c
from mmsurv.models.base import SurvivalModel, step_survival
from mmsurv.omics.rna import RNAPreprocessor, rna_frame
from mmsurv.wsi.features import load_bag

with warnings.catch_warnings():
    # torchsurv 0.2 decorates its validators with torch.jit.script, deprecated in torch 2.10+
    warnings.filterwarnings("ignore", r"`torch\.jit\.script` is deprecated", DeprecationWarning)
    from torchsurv.loss.cox import neg_partial_log_likelihood

__all__ = [
    "TorchSurvivalModel",
    "Batch",
    "Validation",
    "read_bag",
    "cox_loss",
    "breslow_survival",
    "portable_state",
]

log = logging.getLogger(__name__)

#: The validation split handed to ``fit``: its X, time (days, (n,)) and event (0/1, (n,)).
Validation = tuple[pd.DataFrame, np.ndarray, np.ndarray]


@dataclass
class Batch:
    """Tensors of a mini-batch of B units, on the training device.

    Attributes
    ----------
    bags
        Patch features, shape (B, N, D) float32, zero-padded; None without slides.
    mask
        Shape (B, N) bool, True for a real patch; None without slides.
    rna
        Preprocessed expression, shape (B, G) float32; None without RNA.
    """

    bags: torch.Tensor | None
    mask: torch.Tensor | None
    rna: torch.Tensor | None


@dataclass
class _Units:
    """The inputs of n units as numpy arrays (host memory)."""

    ids: np.ndarray  # (n,) unit ids, str
    bags: list[np.ndarray] | None  # n arrays (N_i, D) float32
    rna: np.ndarray | None  # (n, G) float32

    def __len__(self) -> int:
        return len(self.ids)

    def n_patches(self) -> np.ndarray:
        """Patches per unit, shape (n,); -1 for every unit of a model without slides."""
        if self.bags is None:
            return np.full(len(self), -1)
        return np.array([len(b) for b in self.bags], dtype=int)

    def usable(self) -> np.ndarray:
        """Shape (n,) bool: False for a slide without patches."""
        return self.n_patches() != 0

    def subset(self, idx: np.ndarray) -> _Units:
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return _Units(
            ids=self.ids[idx],
            bags=None if self.bags is None else [self.bags[i] for i in idx],
            rna=None if self.rna is None else self.rna[idx],
        )


def read_bag(path: str | os.PathLike[str]) -> np.ndarray:
    """Patch features of one slide (:func:`mmsurv.wsi.features.load_bag`).

    Parameters
    ----------
    path
        Feature file (``.h5`` with dataset ``features`` (N, D), a leading axis of size 1
        dropped; or a CLAM/TRIDENT ``.pt``).

    Returns
    -------
    numpy.ndarray
        Shape (N, D) float32; N is 0 for a slide without patches.
    """
    features, _, _ = load_bag(path)
    return features


def cox_loss(risk: torch.Tensor, event: np.ndarray, time: np.ndarray) -> torch.Tensor:
    """Negative Cox partial log-likelihood (torchsurv, Efron ties, mean over event times).

    Parameters
    ----------
    risk
        Log relative hazards, shape (n,); cast to float32.
    event
        0/1 (or bool) event indicators, shape (n,); at least one event.
    time
        Event or censoring times (days), shape (n,).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    ev = torch.as_tensor(np.asarray(event, dtype=bool), device=risk.device)
    t = torch.as_tensor(np.asarray(time, dtype=np.float32), device=risk.device)
    with warnings.catch_warnings():
        # tied times are expected (slides of one patient share theirs); Efron handles them
        warnings.filterwarnings("ignore", "Ties in `time` detected", UserWarning)
        return neg_partial_log_likelihood(risk.float(), ev, t, ties_method="efron")


def breslow_survival(baseline: BreslowEstimator, risk: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Survival ``exp(-H0(t) exp(risk))`` at ``times`` (days), shape (n, len(times)).

    ``H0`` is the fitted Breslow cumulative baseline hazard; a NaN risk gives a row of NaN.
    """
    cum_hazard = baseline.cum_baseline_hazard_
    with np.errstate(over="ignore", invalid="ignore"):
        surv = np.exp(-np.exp(np.asarray(risk, float))[:, None] * cum_hazard.y[None, :])
    return step_survival(cum_hazard.x, surv, np.asarray(times, dtype=float))


def portable_state(state: dict[str, Any]) -> dict[str, Any]:
    """A model's ``__dict__`` copy with its network ``net_`` on the CPU (portable pickles)."""
    state = dict(state)
    net = state.get("net_")
    if net is not None and any(p.device.type != "cpu" for p in net.parameters()):
        state["net_"] = copy.deepcopy(net).cpu()
    return state


def _check_outcomes(
    X: pd.DataFrame, time: np.ndarray, event: np.ndarray, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """``time`` as float64 and ``event`` as int, both (n,), checked against ``X``'s rows."""
    time = np.asarray(time, dtype=float).reshape(-1)
    event = np.asarray(event).reshape(-1)
    if len(time) != len(X) or len(event) != len(X):
        raise ValueError(f"{what}: {len(X)} rows but {len(time)} times and {len(event)} events")
    if not np.isfinite(time).all() or (time < 0).any():
        raise ValueError(f"{what}: times must be finite and non-negative (days)")
    if not np.isin(event, (0, 1)).all():
        raise ValueError(f"{what}: events must be 0 or 1")
    if not X.index.is_unique:
        dup = X.index[X.index.duplicated()].unique()
        raise ValueError(f"{what}: duplicate unit ids {list(dup[:5])}")
    return time, event.astype(int)


_device = device_for
_autocast = autocast_for


class TorchSurvivalModel(SurvivalModel):
    """Base of the torch survival models: data handling, training loop, prediction.

    Parameters
    ----------
    lr
        AdamW learning rate.
    weight_decay
        AdamW (decoupled) weight decay.
    epochs
        Maximum number of passes over the training units.
    batch_size
        Units per mini-batch (capped at the number of training units).
    patience
        Epochs without a lower validation loss before training stops.
    bag_size
        Patches sampled per slide in each training step (None: all); ignored without slides.
    seed, threads
        Random seed; torch CPU threads during fit and predict.
    device
        ``auto`` (CUDA when visible, else CPU), ``cpu`` or ``cuda`` (the config's ``device``,
        supplied by the training job).

    Attributes (after fit)
    ----------------------
    net_ : torch.nn.Module
        The trained network (best validation epoch).
    history_ : list[dict]
        Per epoch: ``epoch`` (from 1), ``train_loss`` (mean over the epoch's batches; NaN when
        every batch was skipped), ``val_loss`` and ``val_c_index`` (Harrell's, for
        information only; both None without validation).
    best_epoch_ : int
        Epoch whose weights were kept.
    """

    #: Whether the model reads ``wsi`` (patch-feature bags) and ``rna:*`` columns.
    uses_wsi: ClassVar[bool] = False
    uses_rna: ClassVar[bool] = False
    #: Maximum gradient norm (ours; a safeguard against exploding Cox gradients).
    grad_clip_norm: ClassVar[float] = 1.0
    #: Units per forward pass in evaluation (all patches, so memory grows with N x D).
    eval_batch_size: ClassVar[int] = 16

    def __init__(
        self,
        *,
        lr: float,
        weight_decay: float,
        epochs: int,
        batch_size: int,
        patience: int,
        bag_size: int | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
        self.device = device
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {lr}, {weight_decay}")
        if epochs < 1 or batch_size < 2 or patience < 1:
            raise ValueError(
                f"need epochs >= 1, batch_size >= 2, patience >= 1; got {epochs}, {batch_size}, "
                f"{patience}"
            )
        if bag_size is not None and bag_size < 1:
            raise ValueError(f"bag_size must be None or at least 1, got {bag_size}")
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.patience = int(patience)
        self.bag_size = None if bag_size is None else int(bag_size)
        self.rna_prep: RNAPreprocessor | None = None
        self._bag_cache: dict[str, np.ndarray] = {}

    # ----------------------------------------------------------------- subclass hooks

    @abstractmethod
    def _build_net(self, wsi_dim: int | None, rna_dim: int | None) -> nn.Module:
        """The untrained network for patch features of ``wsi_dim`` and ``rna_dim`` genes."""

    @abstractmethod
    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Risk (B,) and attention (B, N) (or None) of a batch."""

    # ----------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        """State without the bag cache, with the network on the CPU (portable pickles)."""
        state = portable_state(self.__dict__)
        state["_bag_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bag_cache = {}

    # ----------------------------------------------------------------- inputs

    @contextlib.contextmanager
    def _session(self) -> Iterator[torch.device]:
        """Set torch's thread count for one fit/predict call; drop the bag cache afterwards.

        Bags are cached only for the duration of a call: the training job keeps every fitted
        candidate of a parameter grid in memory, and each holding its slides would multiply
        the memory used.
        """
        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.threads)))
        try:
            yield _device(getattr(self, "device", "auto"))
        finally:
            torch.set_num_threads(previous)
            self._bag_cache.clear()

    def _bag(self, unit: str, path: Any) -> np.ndarray:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ValueError(f"unit {unit}: no patch-feature file in column 'wsi' ({path!r})")
        key = os.fspath(path)
        if key not in self._bag_cache:
            if not os.path.exists(key):
                raise FileNotFoundError(f"unit {unit}: patch-feature file {key} not found")
            self._bag_cache[key] = read_bag(key)
        return self._bag_cache[key]

    def _fit_preprocessing(self, X: pd.DataFrame) -> None:
        """Fit everything data-dependent (the RNA preprocessor) on the training units."""
        if self.uses_rna:
            assert self.rna_prep is not None
            pids = X["patient_id"].astype(str).to_numpy() if "patient_id" in X else None
            self.rna_prep.fit(rna_frame(X), patient_ids=pids)

    def _encode(self, X: pd.DataFrame) -> _Units:
        if not X.index.is_unique:
            dup = X.index[X.index.duplicated()].unique()
            raise ValueError(f"duplicate unit ids {list(dup[:5])}")
        ids = X.index.astype(str).to_numpy()
        bags = None
        if self.uses_wsi:
            if "wsi" not in X:
                raise ValueError("X has no 'wsi' column (patch-feature file per slide)")
            bags = [self._bag(u, p) for u, p in zip(ids, X["wsi"], strict=True)]
            dim = getattr(self, "wsi_dim_", None)
            for u, b in zip(ids, bags, strict=True):
                if len(b) and dim is not None and b.shape[1] != dim:
                    raise ValueError(f"unit {u}: features of dimension {b.shape[1]}, not {dim}")
        rna = None
        if self.uses_rna:
            assert self.rna_prep is not None
            rna = self.rna_prep.transform(rna_frame(X)).astype(np.float32)
        return _Units(ids=ids, bags=bags, rna=rna)

    def _collate(
        self,
        units: _Units,
        idx: np.ndarray,
        device: torch.device,
        rng: np.random.Generator | None = None,
    ) -> Batch:
        """Batch of units ``idx``: ``bag_size`` sampled patches each with ``rng``, else all."""
        bags = mask = None
        if units.bags is not None:
            chosen = []
            for i in idx:
                bag = units.bags[i]
                if rng is not None and self.bag_size is not None and len(bag) > self.bag_size:
                    bag = bag[np.sort(rng.choice(len(bag), size=self.bag_size, replace=False))]
                chosen.append(bag)
            n_max = max(len(b) for b in chosen)
            arr = np.zeros((len(idx), n_max, self.wsi_dim_), dtype=np.float32)
            real = np.zeros((len(idx), n_max), dtype=bool)
            for j, bag in enumerate(chosen):
                arr[j, : len(bag)] = bag
                real[j, : len(bag)] = True
            bags = torch.from_numpy(arr).to(device)
            mask = torch.from_numpy(real).to(device)
        rna = None if units.rna is None else torch.from_numpy(units.rna[idx]).to(device)
        return Batch(bags=bags, mask=mask, rna=rna)

    # ----------------------------------------------------------------- training

    def fit(
        self,
        X: pd.DataFrame,
        time: np.ndarray,
        event: np.ndarray,
        *,
        validation: Validation | None = None,
    ) -> Self:
        """Train on the training units; ``validation`` is used for early stopping only.

        Parameters
        ----------
        X
            Training units (see the module docstring), n rows.
        time
            Event or censoring time of each unit (days), shape (n,).
        event
            1 for an event, 0 for censoring, shape (n,).
        validation
            The validation split's ``(X, time, event)``, or None (all epochs are run).

        Returns
        -------
        TorchSurvivalModel
            ``self``, fitted.
        """
        time, event = _check_outcomes(X, time, event, "training")
        with self._session() as device:
            self.device_ = str(device)
            self.__dict__.pop("wsi_dim_", None)  # a refit learns its own dimension
            self._fit_preprocessing(X)
            train = self._encode(X)
            keep = train.usable()
            self.excluded_units_ = [str(u) for u in train.ids[~keep]]
            if self.excluded_units_:
                log.warning(
                    "%d training slide(s) without patches left out: %s",
                    len(self.excluded_units_),
                    ", ".join(self.excluded_units_[:10]),
                )
            train, time, event = train.subset(keep), time[keep], event[keep]
            if len(train) < 2 or not event.any():
                raise ValueError(
                    f"cannot fit a Cox loss on {len(train)} unit(s) with {int(event.sum())} "
                    "event(s)"
                )
            if train.bags is not None:
                dims = {b.shape[1] for b in train.bags}
                if len(dims) != 1:
                    raise ValueError(f"training slides have features of dimensions {dims}")
                self.wsi_dim_ = dims.pop()
            val = self._validation_units(validation)
            torch.manual_seed(self.seed)
            rna_dim = None if train.rna is None else train.rna.shape[1]
            net = self._build_net(getattr(self, "wsi_dim_", None), rna_dim).to(device)
            self._train(net, train, time, event, val, device)
            self.net_ = net
            self.n_train_units_ = len(train)
            train_risk, _ = self._predict_units(train, device)
            self.baseline_ = BreslowEstimator().fit(train_risk, event, time)
        return self

    def _validation_units(
        self, validation: Validation | None
    ) -> tuple[_Units, np.ndarray, np.ndarray] | None:
        """Encoded validation units with outcomes, or None when they cannot be scored."""
        if validation is None:
            return None
        vX, vtime, vevent = validation
        vtime, vevent = _check_outcomes(vX, vtime, vevent, "validation")
        units = self._encode(vX)
        keep = units.usable()
        if not keep.all():
            log.warning(
                "%d validation slide(s) without patches left out of the validation loss",
                int((~keep).sum()),
            )
        units, vtime, vevent = units.subset(keep), vtime[keep], vevent[keep]
        if not vevent.any():
            log.warning(
                "validation split has no event (%d units): its Cox loss is undefined, so no "
                "early stopping; all %d epochs are run",
                len(units),
                self.epochs,
            )
            return None
        return units, vtime, vevent

    def _train(
        self,
        net: nn.Module,
        train: _Units,
        time: np.ndarray,
        event: np.ndarray,
        val: tuple[_Units, np.ndarray, np.ndarray] | None,
        device: torch.device,
    ) -> None:
        """The epoch loop; sets ``history_``, ``best_epoch_``, ``stopped_early_``."""
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        n = len(train)
        n_batches = math.ceil(n / min(self.batch_size, n))
        self.history_: list[dict[str, Any]] = []
        self.stopped_early_ = False
        best_loss, best_state, self.best_epoch_, waited = math.inf, None, 0, 0
        for epoch in range(1, self.epochs + 1):
            net.train()
            losses = []
            for idx in np.array_split(rng.permutation(n), n_batches):
                if not event[idx].any():
                    continue  # no event: no term of the partial likelihood, no gradient
                batch = self._collate(train, idx, device, rng)
                with _autocast(device):
                    risk, _ = self._forward(net, batch)
                loss = cox_loss(risk, event[idx], time[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), self.grad_clip_norm)
                opt.step()
                losses.append(float(loss.detach()))
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "val_loss": None,
                "val_c_index": None,
            }
            if val is not None:
                vunits, vtime, vevent = val
                vrisk, _ = self._predict_units(vunits, device, net=net)
                vloss = float(cox_loss(torch.from_numpy(vrisk), vevent, vtime))
                row["val_loss"] = vloss
                row["val_c_index"] = harrell_c(vtime, vevent, vrisk)
                if vloss < best_loss:
                    best_loss, self.best_epoch_, waited = vloss, epoch, 0
                    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                else:
                    waited += 1
            self.history_.append(row)
            log.info(
                "epoch %d: train loss %.4f, validation loss %s, validation C-index %s",
                epoch,
                row["train_loss"],
                "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}",
                "-" if row["val_c_index"] is None else f"{row['val_c_index']:.3f}",
            )
            if val is not None and waited >= self.patience:
                self.stopped_early_ = True
                log.info("early stopping after epoch %d (patience %d)", epoch, self.patience)
                break
        if val is None:
            self.best_epoch_ = len(self.history_)
            log.info("no validation split: no early stopping, all %d epochs run", self.epochs)
        elif best_state is None:
            self.best_epoch_ = len(self.history_)
            log.warning("validation loss was never finite: keeping the last epoch's weights")
        else:
            net.load_state_dict(best_state)
            log.info("restored epoch %d (validation loss %.4f)", self.best_epoch_, best_loss)

    # ----------------------------------------------------------------- prediction

    def _predict_units(
        self,
        units: _Units,
        device: torch.device,
        *,
        net: nn.Module | None = None,
        attention: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Risk (n,) float64 and, if asked, attention (N_i,) per unit; eval mode, all patches.

        Every unit must have at least one patch (callers filter).
        """
        net = self.net_ if net is None else net
        net.to(device).eval()
        risks: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        with torch.inference_mode(), _autocast(device):
            for start in range(0, len(units), self.eval_batch_size):
                idx = np.arange(start, min(start + self.eval_batch_size, len(units)))
                risk, att = self._forward(net, self._collate(units, idx, device))
                risks.append(risk.float().cpu().numpy())
                if attention and att is not None and units.bags is not None:
                    att_np = att.float().cpu().numpy()
                    weights += [att_np[j, : len(units.bags[i])] for j, i in enumerate(idx)]
        risk_all = np.concatenate(risks).astype(float) if risks else np.empty(0)
        return risk_all, weights

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Log relative hazard per unit, shape (n,), higher = worse; NaN for a slide without
        patches."""
        self._check_fitted()
        with self._session() as device:
            units = self._encode(X)
            ok = units.usable()
            risk = np.full(len(units), np.nan)
            if ok.any():
                risk[ok], _ = self._predict_units(units.subset(ok), device)
        return risk

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival ``exp(-H0(t) exp(risk))`` at ``times`` (days), shape (n, len(times)).

        ``H0`` is the Breslow cumulative baseline hazard of the training units; a unit with a
        NaN risk gets a row of NaN.
        """
        return breslow_survival(self.baseline_, self.predict_risk(X), times)

    def _predict_attention(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Unit id -> attention over all its patches, shape (N_i,), summing to 1 (empty for a
        slide without patches), in the order of the slide's feature file."""
        self._check_fitted()
        with self._session() as device:
            units = self._encode(X)
            ok = units.usable()
            out = {str(u): np.empty(0) for u in units.ids}
            if ok.any():
                sub = units.subset(ok)
                _, weights = self._predict_units(sub, device, attention=True)
                out.update({str(u): w.astype(float) for u, w in zip(sub.ids, weights, strict=True)})
        return out

    def describe(self) -> dict[str, Any]:
        """Parameters, training curve and fitted facts for the training log."""
        out: dict[str, Any] = {"params": self.params}
        if hasattr(self, "net_"):
            out |= {
                "best_epoch": self.best_epoch_,
                "epochs_run": len(self.history_),
                "stopped_early": self.stopped_early_,
                "history": self.history_,
                "n_train_units": self.n_train_units_,
                "excluded_units": self.excluded_units_,
                "device": self.device_,
                "n_parameters": int(sum(p.numel() for p in self.net_.parameters())),
            }
            if self.rna_prep is not None:
                out["n_genes"] = len(self.rna_prep.genes_)
                out["genes"] = list(self.rna_prep.genes_)
        return out
