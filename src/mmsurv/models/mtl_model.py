"""Multi-task MRI models (Nuechterlein et al.): subtype classification + tumour segmentation.

=======================  ==============================  =====================================
model                    class                           network (:mod:`.mtl_nets`)
=======================  ==============================  =====================================
``mri_cnn``              :class:`MRICNNModel`            U-Net encoder + linear classifier
``mri_mtl``              :class:`MRIMTLModel`            U-Net + classification branch
``mri_scna_mtl``         :class:`MRISCNAMTLModel`        U-Net + branch with SCNA PCA input
=======================  ==============================  =====================================

The network learns a binary label (IDH1/2 mutation or 1p/19q co-deletion, passed to ``fit``
as ``labels``) jointly with tumour segmentation, so scans without a label still contribute
through their masks; survival is then a linear Cox model (lifelines, the paper's CPH) on the
last-layer embeddings of the classification branch (the classifier's input).

Input table ``X``: one row per patient, indexed by patient id (unique); column ``mri`` is the
path of the patient's ``.npz`` (``numpy.savez_compressed``): one float32 (D, H, W) array per
channel name (``t1``, ``t1ce``, ``t2``, ``flair``, ``t1ce_t1``...; already z-scored) plus,
optionally, ``mask`` (ground-truth BraTS labels 0/1/2/4, or a binary 0/1 mask) and/or
``weak_mask`` (0/1 tumour vs background from a segmentation network), all on one grid;
``mask`` is used when both exist. The ``channels`` are stacked into the (C, D, H, W) input;
all patients share one shape, every spatial size divisible by ``2 ** (len(widths) - 1)``.
The SCNA model also reads ``scna:{gene}`` columns (no missing value).

Training scans (every row of ``X``):

- the multi-task models (:class:`MRIMTLModel`, :class:`MRISCNAMTLModel`) train on every scan
  with a label and/or a mask, with the paper's loss (eq. 1, :func:`.mtl_nets.mtl_loss`): the
  weighted BCE of the label (``pos_weight = n_neg / n_pos``), plus the weighted K-class
  cross-entropy against the ground-truth mask, or else the weighted 2-class cross-entropy of
  the binarised output (tumour = all non-background classes) against the weak mask. The
  ground-truth target follows ``seg_mode`` (``auto``: :func:`.mtl_nets.seg_mode_for`: tumour
  core for T1-weighted inputs, whole tumour for T2/FLAIR, the 4 BraTS classes otherwise). A
  binary ground-truth mask cannot give 4 classes or the core: in those modes it is trained
  like a weak mask (whole tumour, binarised output), logged. Scans with neither a label nor a
  mask are left out (logged);
- the CNN baseline (:class:`MRICNNModel`) trains on the labeled scans only (the BCE term).

Adam (``lr``, ``weight_decay``), shuffled mini-batches (seeded numpy generator), training-time
flips of the two in-plane axes (each with probability 0.5, MONAI ``RandFlipd`` applied jointly
to the image and its mask, seeded). Class weights: inverse voxel frequency over the training
targets, normalised to mean 1 (ground truth and weak separately). After every epoch the
validation patients with a label give the AUC (scikit-learn) and the weighted BCE of eval-mode
scores; the kept checkpoint is the epoch of the best validation AUC (ties, or an undefined
AUC: the lowest validation BCE; no labeled validation patient: the last epoch).

Survival: the embeddings of all training patients (eval mode) are z-scored and fitted by a
penalised Cox model (:class:`~mmsurv.models.coxph.CoxPHModel`) for each ``cox_penalizer``
candidate; the candidate with the best validation Harrell C is kept (first on ties; no usable
validation: the middle candidate, logged).

SCNA (:class:`MRISCNAMTLModel`): an :class:`~mmsurv.omics.scna.ScnaPCA` of
``scna_components`` components fitted on the training patients (plus, with ``pca_extra``, the
SCNA-only patients of ``extra``, as the paper did; validation and test patients never), its
components z-scored with the mean and SD of the fitted rows.

The network starts from ``weights`` (a local state-dict file of the whole network, loaded
strictly) or from a seeded random initialisation (stated by :meth:`describe`, logged).
Reproducibility: ``torch.manual_seed(seed)`` before the network is built; on the CPU a fit is
repeatable for a given seed and thread count. On CUDA the forward passes run under bf16
autocast (the loss in fp32). Volumes are read once per call and not kept on the model.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from lifelines.exceptions import ConvergenceError
from torch import nn

from mmsurv._torch import load_weights
from mmsurv.evaluation.metrics import binary_auc, harrell_c
from mmsurv.models.base import SurvivalModel
from mmsurv.models.coxph import CoxPHModel
from mmsurv.models.mri_model import read_crop
from mmsurv.models.mtl_inputs import (
    BINARY,
    GT,
    NONE,
    Scans,
    as_tensor,
    augmenter,
    label_values,
    read_masks,
    resize_volume,
)
from mmsurv.models.mtl_nets import (
    DEFAULT_WIDTHS,
    SEG_MODES,
    MTLNet,
    check_spatial_size,
    class_weights,
    is_binary_mask,
    mtl_loss,
    n_seg_classes,
    seg_mode_for,
    seg_targets,
)
from mmsurv.models.torch_model import (
    Validation,
    _autocast,
    _check_outcomes,
    _device,
    portable_state,
)
from mmsurv.omics.scna import SCNA_PREFIX, ScnaPCA, scna_frame

__all__ = ["MRICNNModel", "MRIMTLModel", "MRISCNAMTLModel", "read_masks"]

log = logging.getLogger(__name__)


class _MTLSurvivalModel(SurvivalModel):
    """Shared base: inputs, the multi-task training loop, the Cox model on embeddings."""

    #: Whether the network has the decoder (multi-task) or is the CNN baseline.
    segmentation: ClassVar[bool] = True
    #: Whether the network reads SCNA.
    uses_scna: ClassVar[bool] = False
    #: Patients per forward pass in evaluation.
    eval_batch_size: ClassVar[int] = 4
    #: List-valued parameters (``input_size: [32, 32, 32]`` is one value, not a grid).
    list_params: ClassVar[frozenset[str]] = frozenset(
        {"widths", "input_size", "cox_penalizer", "channels"}
    )

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        weight_decay: float,
        widths: Sequence[int],
        dropout: float,
        norm: str,
        augment: bool,
        weights: str | None,
        cox_penalizer: float | Sequence[float],
        channels: Sequence[str],
        seed: int,
        threads: int,
        device: str,
        seg_mode: str = "auto",
        input_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__(seed=seed, threads=threads)
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
        if epochs < 1 or batch_size < 1:
            raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
        if lr <= 0 or weight_decay < 0 or not 0 <= dropout < 1:
            raise ValueError(
                f"need lr > 0, weight_decay >= 0 and 0 <= dropout < 1; got {lr}, "
                f"{weight_decay}, {dropout}"
            )
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths needs at least 2 positive levels, got {widths}")
        if norm not in ("instance", "batch"):
            raise ValueError(f"norm must be 'instance' or 'batch', got {norm!r}")
        if seg_mode != "auto" and seg_mode not in SEG_MODES:
            raise ValueError(f"seg_mode must be auto or one of {SEG_MODES}, got {seg_mode!r}")
        if isinstance(channels, str) or not channels:
            raise ValueError(f"channels must be a non-empty list of names, got {channels!r}")
        pens = [cox_penalizer] if np.isscalar(cox_penalizer) else list(cox_penalizer)
        if not pens or any(float(p) < 0 for p in pens):
            raise ValueError(f"cox_penalizer needs non-negative values, got {cox_penalizer!r}")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.widths = widths
        self.dropout = float(dropout)
        self.norm = norm
        self.seg_mode = seg_mode
        self.augment = bool(augment)
        self.weights = None if weights is None else os.fspath(weights)
        self.cox_penalizer = tuple(float(p) for p in pens)
        self.channels = [str(c) for c in channels]
        self.device = device
        if input_size is not None and (len(input_size) != 3 or min(input_size) < 1):
            raise ValueError(f"input_size must be 3 positive voxel counts, got {input_size!r}")
        #: (D, H, W) the volumes are resized to (None: as stored); config order is (x, y, z)
        self.input_dhw = None if input_size is None else tuple(int(n) for n in input_size[::-1])

    # ----------------------------------------------------------------- pickling

    def __getstate__(self) -> dict[str, Any]:
        """State with the network on the CPU (portable pickles)."""
        return portable_state(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ----------------------------------------------------------------- inputs

    @contextlib.contextmanager
    def _session(self, *, training: bool = False) -> Iterator[torch.device]:
        """Torch's thread count for one call, and its device (a GPU-trained model predicts on
        the CPU when no GPU is visible, logged; training on a missing GPU is an error)."""
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

    def _scna_table(self, X: pd.DataFrame, what: str) -> pd.DataFrame:
        """The ``scna:{gene}`` columns of ``X`` as patients x genes, checked."""
        cols = [c for c in X.columns if isinstance(c, str) and c.startswith(SCNA_PREFIX)]
        if not cols:
            raise ValueError(
                f"{what}: X has no '{SCNA_PREFIX}{{gene}}' columns (the SCNA model needs copy "
                "number for every patient)"
            )
        values = X[cols].apply(pd.to_numeric, errors="coerce")
        bad = X.index[values.isna().any(axis=1).to_numpy()]
        if len(bad):
            raise ValueError(
                f"{what}: patient(s) {', '.join(map(str, bad[:5]))} lack SCNA values (missing or "
                "non-numeric); patients without SCNA must be left out of an SCNA model"
            )
        frame = scna_frame(X)
        frame.index = frame.index.astype(str)
        return frame

    def _scna_inputs(self, X: pd.DataFrame, what: str) -> torch.Tensor:
        frame = self._scna_table(X, what)
        pcs = (self.pca_.transform(frame) - self.scna_mean_) / self.scna_sd_
        return torch.from_numpy(pcs.astype(np.float32))

    def _encode(self, X: pd.DataFrame, what: str, *, masks: bool = False) -> Scans:
        """Volumes (SCNA inputs, and with ``masks`` the segmentation targets) of ``X``."""
        if not X.index.is_unique:
            dup = X.index[X.index.duplicated()].unique()
            raise ValueError(f"{what}: duplicate patient ids {list(dup[:5])}")
        if "mri" not in X:
            raise ValueError(f"{what}: X has no 'mri' column (.npz file per patient)")
        scna = self._scna_inputs(X, what) if self.uses_scna else None
        ids = X.index.astype(str).to_numpy()
        expected = getattr(self, "input_shape_", None)
        images = seg = None
        kind = np.zeros(len(ids), dtype=np.int8)
        n_binary_gt = 0
        for i, (u, path) in enumerate(zip(ids, X["mri"], strict=True)):
            v = read_crop(path, self.channels, u)
            stored = v.shape[1:]
            v = resize_volume(v, self.input_dhw, "trilinear")
            shape = tuple(int(s) for s in v.shape)
            if expected is None:
                expected = shape
            if shape != expected:
                raise ValueError(
                    f"patient {u}: MRI crop of shape {shape}, expected {expected} (all crops "
                    "must share one size)"
                )
            try:
                check_spatial_size(shape[1:], len(self.widths))
            except ValueError as err:
                raise ValueError(f"patient {u}: MRI crop of {err}") from err
            if images is None:  # filled in place: no second copy of the cohort's volumes
                images = np.empty((len(ids), *shape), dtype=np.float32)
                if masks:
                    seg = np.zeros((len(ids), *shape[1:]), dtype=np.uint8)
            images[i] = v
            if masks:
                assert seg is not None
                mask, source = read_masks(path, stored, u)
                if mask is None:
                    continue
                mask = resize_volume(mask[None], self.input_dhw, "nearest")[0]
                if source == "weak_mask" or (self.seg_mode_ != "whole" and is_binary_mask(mask)):
                    seg[i], kind[i] = mask, BINARY
                    n_binary_gt += source == "mask"
                else:
                    try:
                        seg[i], kind[i] = seg_targets(mask, self.seg_mode_), GT
                    except ValueError as err:
                        raise ValueError(f"patient {u}: {path}: {err}") from err
        if masks:
            self.n_binary_gt_ = n_binary_gt
        if n_binary_gt:
            log.warning(
                "%d binary ground-truth mask(s) cannot give the %r target: trained as whole-"
                "tumour masks on the binarised output (like weak masks)",
                n_binary_gt,
                self.seg_mode_,
            )
        return Scans(
            ids=ids,
            images=torch.empty(0) if images is None else torch.from_numpy(images),
            scna=scna,
            seg=None if seg is None else torch.from_numpy(seg),
            kind=kind if masks else None,
        )

    def _fit_pca(self, X: pd.DataFrame, extra: pd.DataFrame | None, val_ids: set[str]) -> None:
        """The SCNA PCA on the training patients (+ ``extra`` with ``pca_extra``)."""
        frame = self._scna_table(X, "training")
        fit = frame
        self.pca_extra_ids_: list[str] = []
        if extra is not None and len(extra) and not self.pca_extra:
            log.info("pca_extra is off: %d SCNA-only patient(s) not used", len(extra))
        elif self.pca_extra and (extra is None or not len(extra)):
            log.warning("pca_extra is on but no SCNA-only patients were given: PCA on training")
        elif self.pca_extra:
            assert extra is not None
            more = self._scna_table(extra, "extra")
            leak = sorted(set(more.index) & val_ids)
            if leak:
                raise ValueError(
                    f"SCNA-only patients {leak[:5]} are validation patients: they cannot enter "
                    "the PCA"
                )
            dup = more.index.isin(frame.index)
            if dup.any():
                log.info("%d SCNA-only patient(s) are training patients: counted once", dup.sum())
                more = more.loc[~dup]
            common = [g for g in frame.columns if g in set(more.columns)]
            if len(common) < frame.shape[1]:
                log.warning(
                    "SCNA PCA: %d training gene(s) missing from the SCNA-only patients dropped",
                    frame.shape[1] - len(common),
                )
            fit = pd.concat([frame[common], more[common]])
            self.pca_extra_ids_ = [str(i) for i in more.index]
        self.pca_ = ScnaPCA(self.scna_components, seed=self.seed).fit(fit)
        pcs = self.pca_.transform(fit)
        self.scna_mean_ = pcs.mean(axis=0)
        sd = pcs.std(axis=0)
        self.scna_sd_ = np.where(sd > 1e-12, sd, 1.0)

    def _load_weights(self, net: nn.Module) -> str:
        """Load ``weights`` into the network; the init description for the log."""
        return load_weights(net, self.weights, f"network ({self._net_summary(net)})", self.seed)

    def _net_summary(self, net: nn.Module) -> str:
        assert isinstance(net, MTLNet)
        return (
            f"MTLNet, {len(self.channels)} channel(s), widths {list(self.widths)}, "
            f"{net.n_seg_classes} segmentation classes, SCNA input {net.scna_dim}"
        )

    def _build_net(self, scna_dim: int) -> MTLNet:
        k = n_seg_classes(self.seg_mode_) if self.segmentation else 2
        return MTLNet(
            len(self.channels),
            k,
            self.widths,
            scna_dim=scna_dim,
            scna_hidden=getattr(self, "scna_hidden", 16),
            dropout=self.dropout,
            segmentation=self.segmentation,
            norm=self.norm,
        )

    # ----------------------------------------------------------------- training

    def fit(
        self,
        X: pd.DataFrame,
        time: np.ndarray,
        event: np.ndarray,
        *,
        validation: Validation | None = None,
        labels: pd.Series | None = None,
        extra: pd.DataFrame | None = None,
        extra_scans: pd.DataFrame | None = None,
    ) -> Self:
        """Train the network on the training scans, then the Cox model on its embeddings.

        Parameters
        ----------
        X
            Training patients (see the module docstring), n rows.
        time
            Event or censoring time (days), shape (n,).
        event
            1 for an event, 0 for censoring, shape (n,).
        validation
            The validation split's ``(X, time, event)``: its labeled patients choose the
            checkpoint, its survival the Cox penalty; None: the last epoch, the middle penalty.
        labels
            Binary label (0, 1, NaN unlabeled) by patient id, covering the training and
            validation patients (others are not read). Required.
        extra
            SCNA-only patients (``scna:{gene}`` columns, in no split) for the PCA of the SCNA
            model with ``pca_extra``; ignored otherwise.
        extra_scans
            Scans of patients in no split (rows like ``X``, e.g. patients without the
            endpoint: the paper's scans without survival): the network also trains on them,
            through their label (from ``labels``) and/or mask; the Cox model does not (they
            have no outcome).

        Returns
        -------
        Self
            ``self``, fitted.
        """
        time, event = _check_outcomes(X, time, event, "training")
        if labels is None:
            raise ValueError(
                f"{type(self).__name__} needs labels (0/1/NaN by patient id) for its "
                "classification task"
            )
        if not event.any():
            raise ValueError(f"cannot fit a Cox model on {len(X)} patient(s) without an event")
        n_out = len(X)  # the patients with an outcome come first
        scans = X
        if extra_scans is not None and len(extra_scans):
            scans = pd.concat([X, extra_scans.loc[~extra_scans.index.isin(X.index)]])
            log.info("%d scan(s) of patients in no split train the network", len(scans) - n_out)
        self.n_extra_scans_ = len(scans) - n_out
        label = label_values(labels, scans.index.astype(str).to_numpy())
        n_pos, n_neg = int((label == 1).sum()), int((label == 0).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(
                f"the training labels need both classes ({n_pos} positive, {n_neg} negative)"
            )
        self.pos_weight_ = n_neg / n_pos  # every labeled training scan is trained on
        with self._session(training=True) as device:
            self.device_ = str(device)
            for attr in ("input_shape_", "pca_", "scna_mean_", "scna_sd_"):
                self.__dict__.pop(attr, None)  # a refit learns its own
            self.seg_mode_ = self._resolved_seg_mode()
            val_ids = set() if validation is None else set(validation[0].index.astype(str))
            if self.uses_scna:
                self._fit_pca(X, extra, val_ids)
            self.n_binary_gt_ = 0
            all_train = self._encode(scans, "training", masks=self.segmentation)
            self.input_shape_ = tuple(int(s) for s in all_train.images.shape[1:])
            rows = self._select(all_train, label)
            seg_w, weak_w = self._class_weights(all_train, rows)
            val = self._validation(validation, labels)
            torch.manual_seed(self.seed)
            net = self._build_net(0 if all_train.scna is None else all_train.scna.shape[1])
            self.init_ = self._load_weights(net)
            net.to(device)
            self._train(net, all_train, rows, label, val, device, self.pos_weight_, seg_w, weak_w)
            self.net_ = net
            self._fit_cox(_head(all_train, n_out), time, event, val, device)
        return self

    def _resolved_seg_mode(self) -> str | None:
        """The ground-truth target of the decoder (None for the CNN baseline)."""
        if not self.segmentation:
            return None
        return seg_mode_for(self.channels) if self.seg_mode == "auto" else self.seg_mode

    def _select(self, scans: Scans, label: np.ndarray) -> np.ndarray:
        """Rows of the training scans: labeled ones, and (multi-task) those with a mask."""
        has_label = np.isfinite(label)
        kind = scans.kind if scans.kind is not None else np.zeros(len(scans), np.int8)
        keep = has_label | (kind != NONE) if self.segmentation else has_label
        left = scans.ids[~keep]
        if len(left):
            why = "no label and no mask" if self.segmentation else "no label (CNN baseline)"
            log.warning(
                "%d training scan(s) left out (%s): %s", len(left), why, ", ".join(left[:10])
            )
        self.excluded_ = [str(u) for u in left]
        rows = np.flatnonzero(keep)
        self.n_train_ = len(rows)
        self.n_labeled_ = int(has_label[rows].sum())
        kk = kind[rows]
        self.n_gt_ = int((kk == GT).sum())
        self.n_weak_ = int((kk == BINARY).sum())
        log.info(
            "training scans: %d (%d labeled, %d ground-truth mask, %d weak/binary mask)",
            self.n_train_,
            self.n_labeled_,
            self.n_gt_,
            self.n_weak_,
        )
        return rows

    def _class_weights(self, train: Scans, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse-frequency class weights of the ground-truth and the binarised mask terms
        over the training ``rows``."""
        k = n_seg_classes(self.seg_mode_) if self.segmentation else 2
        seg_counts, weak_counts = np.zeros(k), np.zeros(2)
        if train.seg is not None and train.kind is not None:
            seg = train.seg.numpy()
            for i in rows[train.kind[rows] == GT]:
                seg_counts += np.bincount(seg[i].ravel(), minlength=k)[:k]
            for i in rows[train.kind[rows] == BINARY]:
                weak_counts += np.bincount(seg[i].ravel(), minlength=2)[:2]
        self.seg_class_weights_ = class_weights(seg_counts).tolist()
        self.weak_class_weights_ = class_weights(weak_counts).tolist()
        return (
            torch.tensor(self.seg_class_weights_, dtype=torch.float32),
            torch.tensor(self.weak_class_weights_, dtype=torch.float32),
        )

    def _validation(
        self, validation: Validation | None, labels: pd.Series
    ) -> tuple[Scans, np.ndarray, np.ndarray, np.ndarray] | None:
        """Encoded validation patients with time, event and label, or None."""
        if validation is None or not len(validation[0]):
            return None
        vX, vtime, vevent = validation
        vtime, vevent = _check_outcomes(vX, vtime, vevent, "validation")
        scans = self._encode(vX, "validation")
        return scans, vtime, vevent, label_values(labels, scans.ids)

    def _batch_targets(
        self, train: Scans, y: np.ndarray, idx: np.ndarray, device: torch.device, augment: Any
    ) -> tuple[torch.Tensor, ...]:
        """Images, masks and flags of one batch (augmented), on ``device``."""
        t = torch.from_numpy(idx)
        image = train.images[t]
        seg = None if train.seg is None else train.seg[t]
        if augment is not None:
            images, segs = [], []
            for j in range(len(idx)):
                sample = {"image": image[j]}
                if seg is not None:
                    sample["seg"] = seg[j][None]
                out = augment(sample)
                images.append(as_tensor(out["image"]))
                if seg is not None:
                    segs.append(as_tensor(out["seg"])[0])
            image = torch.stack(images)
            seg = None if seg is None else torch.stack(segs)
        kind = np.zeros(len(idx), np.int8) if train.kind is None else train.kind[idx]
        lab = torch.from_numpy(np.nan_to_num(y[idx], nan=0.0).astype(np.float32))
        flags = [torch.from_numpy(m) for m in (np.isfinite(y[idx]), kind == GT, kind == BINARY)]
        target = None if seg is None else seg.to(device).long()
        return (
            image.contiguous().to(device),
            target,
            lab.to(device),
            *(f.to(device) for f in flags),
        )

    def _train(
        self,
        net: MTLNet,
        train: Scans,
        rows: np.ndarray,
        y: np.ndarray,
        val: tuple[Scans, np.ndarray, np.ndarray, np.ndarray] | None,
        device: torch.device,
        pos_weight: float,
        seg_w: torch.Tensor,
        weak_w: torch.Tensor,
    ) -> None:
        """The epoch loop over the scans ``rows`` of ``train`` (labels ``y`` aligned with
        ``train``); sets ``history_`` and ``best_epoch_`` and keeps the best weights."""
        rng = np.random.default_rng(self.seed)
        augment = augmenter(self.seed) if self.augment else None
        n = len(rows)
        n_batches = math.ceil(n / min(self.batch_size, n))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        vlab = None
        if val is not None:
            labeled = np.isfinite(val[3])
            if labeled.any():
                vlab = (np.flatnonzero(labeled), val[3][labeled])
            else:
                log.warning("no labeled validation patient: the last epoch is kept")
        self.history_: list[dict[str, Any]] = []
        best_key: tuple[float, float] | None = None
        best_state = None
        self.best_epoch_ = 0
        for epoch in range(1, self.epochs + 1):
            net.train()
            sums = {"total": 0.0, "cls": 0.0, "seg_gt": 0.0, "seg_weak": 0.0}
            # samples each term was computed on (a term's logged value is its mean over them,
            # comparable with the validation BCE; the loss itself averages over the batch)
            counts = {"cls": 0, "seg_gt": 0, "seg_weak": 0}
            n_steps = 0
            for batch in np.array_split(rng.permutation(n), n_batches):
                idx = rows[batch]
                image, target, lab, has_label, has_gt, has_weak = self._batch_targets(
                    train, y, idx, device, augment
                )
                scna = None if train.scna is None else train.scna[torch.from_numpy(idx)].to(device)
                with _autocast(device):
                    out = net(image, scna, decode=self.segmentation)
                loss, parts = mtl_loss(
                    out["logit"],
                    out.get("seg"),
                    lab,
                    has_label,
                    target,
                    has_gt,
                    target,
                    has_weak,
                    pos_weight,
                    seg_w,
                    weak_w,
                )
                if not loss.requires_grad:
                    continue  # no term in this batch
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"epoch {epoch}: training loss is not finite")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                n_steps += 1
                sums["total"] += float(loss.detach())
                present = {"cls": has_label, "seg_gt": has_gt, "seg_weak": has_weak}
                for k, v in parts.items():
                    sums[k] += v * len(idx)  # batch mean -> sum over the batch
                    counts[k] += int(present[k].sum())

            mean = {"total": sums["total"] / n_steps if n_steps else float("nan")}
            mean |= {k: sums[k] / counts[k] if counts[k] else float("nan") for k in counts}
            row: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": mean["total"],
                "train_cls": mean["cls"],
                "train_seg_gt": mean["seg_gt"],
                "train_seg_weak": mean["seg_weak"],
                "val_loss": None,
                "val_auc": None,
                "lr": float(opt.param_groups[0]["lr"]),
            }
            if vlab is not None:
                logit = self._forward_scans(net, val[0], device, rows=vlab[0])[0]
                vloss = float(
                    F.binary_cross_entropy_with_logits(
                        torch.from_numpy(logit),
                        torch.from_numpy(vlab[1]),
                        pos_weight=torch.tensor(pos_weight, dtype=torch.float64),
                    )
                )
                auc = binary_auc(vlab[1], logit)
                row["val_loss"] = vloss
                row["val_auc"] = None if math.isnan(auc) else auc
                key = (
                    -math.inf if math.isnan(auc) else auc,
                    -vloss if math.isfinite(vloss) else -math.inf,
                )
                if best_key is None or key > best_key:
                    best_key, self.best_epoch_ = key, epoch
                    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            self.history_.append(row)
            log.info(
                "epoch %d: train loss %.4f (cls %.4f, seg gt %.4f, seg weak %.4f), validation "
                "BCE %s, AUC %s",
                epoch,
                row["train_loss"],
                row["train_cls"],
                row["train_seg_gt"],
                row["train_seg_weak"],
                "-" if row["val_loss"] is None else f"{row['val_loss']:.4f}",
                "-" if row["val_auc"] is None else f"{row['val_auc']:.3f}",
            )
        if best_state is None:
            self.best_epoch_ = len(self.history_)
            log.info("keeping the last epoch (%d)", self.best_epoch_)
        else:
            net.load_state_dict(best_state)
            log.info("restored epoch %d (best validation AUC, then BCE)", self.best_epoch_)

    # ----------------------------------------------------------------- Cox on embeddings

    @property
    def embedding_names(self) -> list[str]:
        """Column names ``emb0 ... emb{E-1}`` of the embeddings in the Cox model."""
        return [f"emb{j}" for j in range(self.net_.embedding_dim)]

    def _fit_cox(
        self,
        train: Scans,
        time: np.ndarray,
        event: np.ndarray,
        val: tuple[Scans, np.ndarray, np.ndarray, np.ndarray] | None,
        device: torch.device,
    ) -> None:
        """A Cox model per ``cox_penalizer`` candidate; the best validation C is kept."""
        names = self.embedding_names
        emb = pd.DataFrame(self._forward_scans(self.net_, train, device)[1], train.ids, names)
        vemb = None
        if val is not None and val[2].any():
            vemb = pd.DataFrame(
                self._forward_scans(self.net_, val[0], device)[1], val[0].ids, names
            )
        fitted: list[tuple[float, CoxPHModel, float]] = []
        self.cox_scores_: dict[str, float | None] = {}
        for p in self.cox_penalizer:
            cox = CoxPHModel(
                numeric=names, categorical=[], penalizer=p, seed=self.seed, threads=self.threads
            )
            try:
                cox.fit(emb, time, event)
            except ConvergenceError as err:
                log.warning("Cox model on embeddings, penalizer %g: did not converge (%s)", p, err)
                self.cox_scores_[repr(p)] = None
                continue
            score = float("nan")
            if vemb is not None:
                assert val is not None
                score = harrell_c(val[1], val[2], cox.predict_risk(vemb))
            self.cox_scores_[repr(p)] = None if math.isnan(score) else score
            fitted.append((p, cox, score))
            log.info("Cox on embeddings, penalizer %g: validation C-index %.3f", p, score)
        if not fitted:
            raise ValueError(
                f"the Cox model on the embeddings did not converge for any penalizer "
                f"{list(self.cox_penalizer)}"
            )
        scored = [f for f in fitted if math.isfinite(f[2])]
        if scored:
            chosen = max(scored, key=lambda f: f[2])  # first of the best on ties
        else:
            chosen = fitted[(len(fitted) - 1) // 2]
            log.warning(
                "no usable validation C-index: the middle Cox penalizer %g is kept", chosen[0]
            )
        self.cox_penalizer_, self.cox_, _ = chosen

    # ----------------------------------------------------------------- prediction

    def _forward_scans(
        self,
        net: MTLNet,
        scans: Scans,
        device: torch.device,
        *,
        rows: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Logit (m,) and embedding (m, E) float64 of ``rows`` (None: all); eval mode, no
        decoder."""
        net.to(device).eval()
        order = torch.arange(len(scans)) if rows is None else torch.from_numpy(np.asarray(rows))
        logits, embs = [], []
        with torch.inference_mode(), _autocast(device):
            for start in range(0, len(order), self.eval_batch_size):
                sl = order[start : start + self.eval_batch_size]
                scna = None if scans.scna is None else scans.scna[sl].to(device)
                out = net(scans.images[sl].to(device), scna, decode=False)
                logits.append(out["logit"].float().cpu().numpy())
                embs.append(out["embedding"].float().cpu().numpy())
        if not logits:
            return np.empty(0), np.empty((0, net.embedding_dim))
        return np.concatenate(logits).astype(float), np.concatenate(embs).astype(float)

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted")

    def _predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        with self._session() as device:
            return self._forward_scans(self.net_, self._encode(X, "prediction"), device)

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of label 1 (sigmoid of the classification logit), shape (n,)."""
        logit = self._predict(X)[0]
        return 1.0 / (1.0 + np.exp(-logit))

    def embed(self, X: pd.DataFrame) -> np.ndarray:
        """Last-layer embeddings (the classifier's input), shape (n, E) float64."""
        return self._predict(X)[1]

    def _embedding_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(self.embed(X), index=X.index.astype(str), columns=self.embedding_names)

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Log relative hazard of the Cox model on the embeddings, shape (n,); higher = worse."""
        if not len(X):
            return np.empty(0)
        return self.cox_.predict_risk(self._embedding_frame(X))

    def predict_survival(self, X: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        """Survival at ``times`` (days) of the Cox model on the embeddings, (n, len(times))."""
        times = np.asarray(times, dtype=float)
        if not len(X):
            return np.empty((0, len(times)))
        return self.cox_.predict_survival(self._embedding_frame(X), times)

    def integrated_gradients(self, X: pd.DataFrame, n_steps: int = 32) -> np.ndarray:
        """Integrated gradients of the classification logit w.r.t. the image (captum).

        Baseline: zeros (the z-scored mean intensity); the SCNA input is held at the patient's
        own value; eval mode, fp32, no autocast (Sundararajan et al., the paper's Fig. 4).

        Parameters
        ----------
        X
            Patients (the input table of :meth:`fit`).
        n_steps
            Steps of the path integral.

        Returns
        -------
        numpy.ndarray
            Shape (n, C, D, H, W) float32 attributions (they sum, per patient, to about the
            logit minus the baseline's logit).
        """
        from captum.attr import IntegratedGradients

        self._check_fitted()
        with self._session() as device:
            data = self._encode(X, "prediction")
            net = self.net_.to(device).eval()

            def logit(image: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
                return net(image, rest[0] if rest else None, decode=False)["logit"]

            ig = IntegratedGradients(logit)
            out = np.empty(tuple(data.images.shape), dtype=np.float32)
            for i in range(len(data)):
                image = data.images[i : i + 1].to(device)
                extra = None if data.scna is None else (data.scna[i : i + 1].to(device),)
                attr = ig.attribute(
                    image,
                    baselines=torch.zeros_like(image),
                    additional_forward_args=extra,
                    n_steps=int(n_steps),
                    internal_batch_size=min(int(n_steps), self.eval_batch_size),
                )
                out[i] = attr.detach().float().cpu().numpy()[0]
        return out

    def describe(self) -> dict[str, Any]:
        """Parameters, initialisation, training curve and fitted facts for the training log."""
        out: dict[str, Any] = {"params": self.params}
        if hasattr(self, "net_"):
            out |= {
                "init": self.init_,
                "best_epoch": self.best_epoch_,
                "epochs_run": len(self.history_),
                "history": self.history_,
                "n_train_patients": self.n_train_,
                "n_extra_scans": getattr(self, "n_extra_scans_", 0),
                "n_labeled": self.n_labeled_,
                "n_gt_masks": self.n_gt_,
                "n_weak_masks": self.n_weak_,
                "n_binary_gt_masks": self.n_binary_gt_,
                "excluded_patients": self.excluded_,
                "seg_mode": self.seg_mode_,
                "pos_weight": self.pos_weight_,
                "seg_class_weights": self.seg_class_weights_,
                "weak_class_weights": self.weak_class_weights_,
                "input_shape": list(self.input_shape_),
                "channels": self.channels,
                "embedding_dim": int(self.net_.embedding_dim),
                "cox_penalizer": self.cox_penalizer_,
                "cox_validation_c_index": self.cox_scores_,
                "device": self.device_,
                "n_parameters": int(sum(p.numel() for p in self.net_.parameters())),
            }
            if self.uses_scna:
                out |= {
                    "scna_components": int(self.pca_.n_components_),
                    "scna_pca_patients": len(self.pca_.fitted_ids_),
                    "scna_pca_extra_patients": len(self.pca_extra_ids_),
                    "scna_explained_variance": float(self.pca_.explained_variance_ratio_.sum()),
                }
        return out


#: Keywords of the shared constructor (:class:`_MTLSurvivalModel`).
_BASE_KEYS = frozenset(inspect.signature(_MTLSurvivalModel.__init__).parameters) - {"self"}


def _head(scans: Scans, n: int) -> Scans:
    """The first ``n`` patients of ``scans`` (inputs only)."""
    if n == len(scans):
        return scans
    scna = None if scans.scna is None else scans.scna[:n]
    return Scans(ids=scans.ids[:n], images=scans.images[:n], scna=scna)


def _base_args(values: dict[str, Any]) -> dict[str, Any]:
    """The shared constructor's keywords out of a subclass ``__init__``'s ``locals()``."""
    return {k: v for k, v in values.items() if k in _BASE_KEYS}


def _own_params(values: dict[str, Any]) -> dict[str, Any]:
    """An ``__init__``'s ``locals()`` as the experiment parameters it was built with."""
    skip = {"self", "__class__", "seed", "threads", "device"}
    out = {k: v for k, v in values.items() if k not in skip}
    for k in ("channels", "widths", "cox_penalizer", "input_size"):
        if out.get(k) is not None and not np.isscalar(out[k]):
            out[k] = list(out[k])
    return out


class MRICNNModel(_MTLSurvivalModel):
    """The single-task CNN baseline (``mri_cnn``): the U-Net encoder + a linear classifier.

    Trained on the labeled scans only (weighted BCE); survival from a Cox model on the pooled
    encoder output (the classifier's input).

    Parameters (``params`` of an experiment; defaults ours unless "paper")
    -------------------------------------------------------------------------
    epochs : int, default 15
        Epochs (paper 50).
    batch_size : int, default 4
    lr : float, default 1e-3
        Adam learning rate (constant).
    weight_decay : float, default 1e-5
        Adam (L2) weight decay.
    widths : list of int, default [8, 16, 32, 64]
        Channels per U-Net level (len - 1 downsamplings by 2).
    dropout : float, default 0.0
        Dropout on the embedding before the classifier.
    norm : {"batch", "instance"}, default "batch"
        Normalisation in the convolution blocks. Batch norm keeps the differences between
        patients in the pooled encoder output; with instance norm every channel of every
        scan is re-centred, and on the demo the classifier on the pooled output did not learn
        (training AUC 0.52 after 10 epochs, against 0.71 with batch norm).
    augment : bool, default True
        Random flips of the two in-plane axes (image and mask alike).
    weights : str | None, default None
        Local state-dict file of the whole network, loaded strictly (None: seeded random
        initialisation; the paper started from a BraTS-pre-trained segmentation network).
    cox_penalizer : float or list of float, default [0.1, 1.0, 10.0]
        Cox penalty candidates, chosen by validation C-index inside ``fit`` (in an
        experiment's ``params`` a list of lists is a grid of networks, each trained).
    channels : list of str, default ["t1", "t1ce", "t2", "flair"]
        Arrays of the ``.npz`` stacked as input channels.
    input_size : list of 3 int or None, default None
        Voxels (x, y, z) every volume is resized to before the network (trilinear; masks
        nearest-neighbour); None keeps the stored size (``mri.crop_size`` or
        ``mri.brain_size``). A CPU run can train at a coarser grid than the crops are stored.
    """

    segmentation = False

    def __init__(
        self,
        *,
        epochs: int = 15,
        batch_size: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        dropout: float = 0.0,
        norm: str = "batch",
        augment: bool = True,
        weights: str | None = None,
        cox_penalizer: float | Sequence[float] = (0.1, 1.0, 10.0),
        channels: Sequence[str] = ("t1", "t1ce", "t2", "flair"),
        input_size: Sequence[int] | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(**_base_args(locals()))
        self.params = _own_params(locals())


class MRIMTLModel(_MTLSurvivalModel):
    """The multi-task model on MRI (``mri_mtl``): classification + segmentation.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    seg_mode : {"auto", "4class", "core", "whole"}, default "auto"
        Ground-truth segmentation target (auto: the paper's choice for the channels, see
        :func:`~mmsurv.models.mtl_nets.seg_mode_for`).
    epochs, batch_size, lr, weight_decay, widths, dropout, norm, augment, weights
        As for :class:`MRICNNModel`; also ``cox_penalizer``, ``channels`` and ``input_size``.
    """

    def __init__(
        self,
        *,
        epochs: int = 15,
        batch_size: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        dropout: float = 0.0,
        norm: str = "batch",
        seg_mode: str = "auto",
        augment: bool = True,
        weights: str | None = None,
        cox_penalizer: float | Sequence[float] = (0.1, 1.0, 10.0),
        channels: Sequence[str] = ("t1", "t1ce", "t2", "flair"),
        input_size: Sequence[int] | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(**_base_args(locals()))
        self.params = _own_params(locals())


class MRISCNAMTLModel(_MTLSurvivalModel):
    """The multi-task model on MRI and SCNA (``mri_scna_mtl``).

    The standardised SCNA principal components pass through a two-layer network whose output
    (``scna_hidden`` wide) is concatenated with the pooled encoder output before the
    classifier; the concatenation is the embedding of the Cox model.

    Parameters (``params`` of an experiment)
    ----------------------------------------
    scna_components : int, default 50
        PCA components (paper 50; capped at the fitted samples - 1).
    pca_extra : bool, default False
        Also fit the PCA on the SCNA-only patients handed to ``fit`` as ``extra`` (the paper
        fitted on all non-validation samples); test and validation patients never enter it.
    scna_hidden : int, default 16
        Width of the SCNA network's output.
    seg_mode, epochs, batch_size, lr, weight_decay, widths, dropout, norm, augment, weights
        As for :class:`MRIMTLModel`; also ``cox_penalizer``, ``channels`` and ``input_size``.
    """

    uses_scna = True

    def __init__(
        self,
        *,
        scna_components: int = 50,
        pca_extra: bool = False,
        scna_hidden: int = 16,
        epochs: int = 15,
        batch_size: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        dropout: float = 0.0,
        norm: str = "batch",
        seg_mode: str = "auto",
        augment: bool = True,
        weights: str | None = None,
        cox_penalizer: float | Sequence[float] = (0.1, 1.0, 10.0),
        channels: Sequence[str] = ("t1", "t1ce", "t2", "flair"),
        input_size: Sequence[int] | None = None,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(**_base_args(locals()))
        if scna_components < 1 or scna_hidden < 1:
            raise ValueError(
                f"need scna_components >= 1 and scna_hidden >= 1, got {scna_components}, "
                f"{scna_hidden}"
            )
        self.scna_components = int(scna_components)
        self.pca_extra = bool(pca_extra)
        self.scna_hidden = int(scna_hidden)
        self.params = _own_params(locals())
