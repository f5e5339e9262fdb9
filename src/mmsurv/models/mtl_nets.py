"""Networks and loss of the multi-task (classification + segmentation) MRI models.

The architecture follows Nuechterlein et al. (multi-task learning on labeled and unlabeled
glioma MRI, Fig. 2): a U-Net-style 3D encoder-decoder whose decoder gives a tumour
segmentation, and a classification branch on the average-pooled encoder output. The paper's
backbone is a pre-trained 3D-ESPNet; here it is a small 3D U-Net built from MONAI's
``UnetBasicBlock`` (two 3x3x3 convolutions, normalisation, leaky ReLU; the first convolution
strided by 2 below the top level) and ``UnetUpBlock`` (transposed convolution by 2, skip
concatenation, two convolutions), with ``widths`` channels per level. Optional 50-d SCNA PCA
embeddings pass through a small fully connected network whose output is concatenated with the
pooled encoder output before the final linear classifier. Without the decoder
(``segmentation=False``) the network is the paper's single-task CNN baseline: the same encoder
and one linear classification layer on its pooled output.

The loss is the paper's eq. 1, per sample ``L = L_C + lambda L_Sgt + (1 - lambda) L_Sweak``
(:func:`mtl_loss`), with the ground-truth segmentation target chosen by :func:`seg_targets`
(4 BraTS classes, the tumour core, or the whole tumour; :func:`seg_mode_for`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks import UnetBasicBlock, UnetOutBlock, UnetUpBlock
from torch import nn

__all__ = [
    "MTLNet",
    "UNetEncoder",
    "UNetDecoder",
    "DEFAULT_WIDTHS",
    "SEG_MODES",
    "BRATS_LABELS",
    "check_spatial_size",
    "seg_targets",
    "seg_mode_for",
    "n_seg_classes",
    "is_binary_mask",
    "class_weights",
    "mtl_loss",
]

#: Channels per U-Net level (3 downsamplings by 2).
DEFAULT_WIDTHS = (8, 16, 32, 64)
#: Segmentation targets: the 4 BraTS classes, the tumour core, the whole tumour.
SEG_MODES = ("4class", "core", "whole")
#: BraTS labels: background, necrosis / non-enhancing core, edema, enhancing tumour.
BRATS_LABELS = (0, 1, 2, 4)
#: Sequences on which the edema is hard to see (the paper: tumour-core target).
_CORE_CHANNELS = frozenset({"t1", "t1ce", "t1ce_t1"})
#: Sequences that show the edema best (the paper: whole-tumour target).
_WHOLE_CHANNELS = frozenset({"t2", "flair"})


def check_spatial_size(shape: Sequence[int], levels: int) -> None:
    """Raise ValueError unless every spatial size is divisible by ``2 ** (levels - 1)`` and the
    bottleneck has more than one voxel."""
    factor = 2 ** (int(levels) - 1)
    size = tuple(int(s) for s in shape)
    if any(s % factor or s < 1 for s in size):
        raise ValueError(
            f"spatial size {size}: a U-Net of {levels} levels needs every axis divisible by "
            f"{factor}"
        )
    if math.prod(s // factor for s in size) < 2:
        raise ValueError(
            f"spatial size {size}: the bottleneck of a U-Net of {levels} levels would be a single "
            "voxel (normalisation needs at least 2)"
        )


def _norm(norm: str) -> tuple[str, dict[str, bool]]:
    if norm == "instance":
        return ("instance", {"affine": True})
    if norm == "batch":
        return ("batch", {"affine": True})
    raise ValueError(f"norm must be 'instance' or 'batch', got {norm!r}")


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(w) for w in widths)
    if len(out) < 2 or min(out) < 1:
        raise ValueError(f"widths needs at least 2 positive levels, got {widths!r}")
    return out


class UNetEncoder(nn.Module):
    """The contracting path: one ``UnetBasicBlock`` per level, strided by 2 below the top.

    Parameters
    ----------
    in_channels
        Input channels C.
    widths
        Output channels of each level (top first).
    norm
        ``instance`` or ``batch``.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], norm: str = "batch") -> None:
        super().__init__()
        widths = _check_widths(widths)
        blocks = []
        prev = int(in_channels)
        for level, width in enumerate(widths):
            blocks.append(
                UnetBasicBlock(
                    3,
                    prev,
                    width,
                    kernel_size=3,
                    stride=1 if level == 0 else 2,
                    norm_name=_norm(norm),
                )
            )
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.widths = widths

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, D, H, W) -> the feature map of every level, top first (the last: bottleneck,
        (B, widths[-1], D / 2^(L-1), H / 2^(L-1), W / 2^(L-1)))."""
        feats = []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats


class UNetDecoder(nn.Module):
    """The expanding path: ``UnetUpBlock`` per level with skip connections, 1x1x1 output conv.

    Parameters
    ----------
    widths
        The encoder's widths (top first).
    n_classes
        Segmentation classes K.
    norm
        ``instance`` or ``batch``.
    """

    def __init__(self, widths: Sequence[int], n_classes: int, norm: str = "batch") -> None:
        super().__init__()
        widths = _check_widths(widths)
        self.ups = nn.ModuleList(
            UnetUpBlock(
                3,
                widths[level],
                widths[level - 1],
                kernel_size=3,
                stride=1,
                upsample_kernel_size=2,
                norm_name=_norm(norm),
            )
            for level in range(len(widths) - 1, 0, -1)
        )
        self.out = UnetOutBlock(3, widths[0], int(n_classes))

    def forward(self, feats: Sequence[torch.Tensor]) -> torch.Tensor:
        """Encoder features (top first) -> segmentation logits (B, K, D, H, W)."""
        x = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            x = up(x, skip)
        return self.out(x)


class MTLNet(nn.Module):
    """U-Net with a classification branch (multi-task), or the encoder-only CNN baseline.

    Parameters
    ----------
    in_channels
        MRI channels C (4 for all sequences, 1 for a single sequence or T1ce-T1).
    n_seg_classes
        Segmentation classes K: 4 (BraTS background, core, edema, enhancing) or 2 (background,
        tumour); ignored without segmentation.
    widths
        Channels per U-Net level (top first); ``len(widths) - 1`` downsamplings by 2, so every
        spatial input size must be divisible by ``2 ** (len(widths) - 1)``.
    scna_dim
        Width of the SCNA input (PCA components; 0: no SCNA input).
    scna_hidden
        Width of the SCNA network's output (two linear layers with leaky ReLU).
    dropout
        Dropout on the embedding before the classifier.
    segmentation
        False: the single-task CNN baseline (no decoder, no SCNA input).
    norm
        ``batch`` (default) or ``instance`` normalisation in the convolution blocks.

    Attributes
    ----------
    encoder, decoder, classifier, scna_net
        The parts (``decoder`` is None without segmentation, ``scna_net`` None without SCNA).
    last_conv
        The bottleneck's last convolution (a target layer for attribution methods).
    embedding_dim
        E = ``widths[-1]`` (+ ``scna_hidden`` with SCNA).
    """

    def __init__(
        self,
        in_channels: int,
        n_seg_classes: int = 4,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        scna_dim: int = 0,
        scna_hidden: int = 16,
        dropout: float = 0.0,
        segmentation: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        widths = _check_widths(widths)
        if in_channels < 1:
            raise ValueError(f"need at least one input channel, got {in_channels}")
        if segmentation and n_seg_classes not in (2, 4):
            raise ValueError(f"n_seg_classes must be 2 or 4, got {n_seg_classes}")
        if scna_dim < 0 or (scna_dim and scna_hidden < 1):
            raise ValueError(
                f"need scna_dim >= 0 and scna_hidden >= 1, got {scna_dim}, {scna_hidden}"
            )
        if scna_dim and not segmentation:
            raise ValueError(
                "the single-task CNN baseline (segmentation=False) takes no SCNA input"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.widths = widths
        self.levels = len(widths)
        self.segmentation = bool(segmentation)
        self.n_seg_classes = int(n_seg_classes) if segmentation else 0
        self.scna_dim = int(scna_dim)
        self.encoder = UNetEncoder(in_channels, widths, norm)
        self.decoder = UNetDecoder(widths, n_seg_classes, norm) if segmentation else None
        self.scna_net: nn.Module | None = None
        self.embedding_dim = widths[-1]
        if self.scna_dim:
            self.scna_net = nn.Sequential(
                nn.Linear(self.scna_dim, int(scna_hidden)),
                nn.LeakyReLU(0.01),
                nn.Linear(int(scna_hidden), int(scna_hidden)),
                nn.LeakyReLU(0.01),
            )
            self.embedding_dim += int(scna_hidden)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(float(dropout))
        self.classifier = nn.Linear(self.embedding_dim, 1)

    @property
    def last_conv(self) -> nn.Module:
        """The bottleneck block's second convolution."""
        return self.encoder.blocks[-1].conv2

    def forward(
        self, image: torch.Tensor, scna: torch.Tensor | None = None, *, decode: bool = True
    ) -> dict[str, torch.Tensor]:
        """Classification logit, embedding and (with the decoder) segmentation logits.

        Parameters
        ----------
        image
            Volumes, shape (B, C, D, H, W), each spatial size divisible by 2^(levels-1).
        scna
            Standardised SCNA PCA embeddings (B, scna_dim), required iff ``scna_dim`` > 0.
        decode
            False skips the decoder (prediction, attributions): no ``seg`` in the output.

        Returns
        -------
        dict
            ``logit`` (B,) (label 1 vs 0), ``embedding`` (B, E) (the classifier's input) and,
            with the decoder, ``seg`` (B, K, D, H, W) segmentation logits.
        """
        if image.ndim != 5:
            raise ValueError(f"image must be (B, C, D, H, W), got shape {tuple(image.shape)}")
        check_spatial_size(image.shape[2:], self.levels)
        if self.scna_dim and scna is None:
            raise ValueError(f"this network needs an SCNA input of width {self.scna_dim}")
        if not self.scna_dim and scna is not None:
            raise ValueError("this network takes no SCNA input")
        feats = self.encoder(image)
        embedding = self.pool(feats[-1]).flatten(1)
        if self.scna_net is not None:
            assert scna is not None
            embedding = torch.cat([embedding, self.scna_net(scna.to(embedding.dtype))], dim=1)
        out = {
            "logit": self.classifier(self.dropout(embedding)).squeeze(-1),
            "embedding": embedding,
        }
        if decode and self.decoder is not None:
            out["seg"] = self.decoder(feats)
        return out


# --------------------------------------------------------------------------- targets


def is_binary_mask(mask: np.ndarray) -> bool:
    """Whether a mask holds only 0 and 1 (a binary tumour mask rather than BraTS labels)."""
    return bool(np.isin(np.unique(mask), (0, 1)).all())


def seg_targets(mask: np.ndarray, mode: str) -> np.ndarray:
    """Class indices of a ground-truth tumour mask for the segmentation target ``mode``.

    Parameters
    ----------
    mask
        Integer labels, any shape: BraTS {0, 1, 2, 4} or a binary 0/1 mask.
    mode
        ``4class``: {0, 1, 2, 4} -> {0, 1, 2, 3}; ``core``: tumour core (labels 1 and 4) -> 1,
        else 0; ``whole``: any tumour label -> 1.

    Returns
    -------
    numpy.ndarray
        Same shape, int64.

    Raises
    ------
    ValueError
        Labels outside {0, 1, 2, 4}; or, for ``4class`` and ``core``, a binary mask (only 0
        and 1): it is read as a whole-tumour mask, which gives neither the 4 classes nor the
        core (the models train such a mask as a whole-tumour 2-class target instead).
    """
    if mode not in SEG_MODES:
        raise ValueError(f"mode must be one of {SEG_MODES}, got {mode!r}")
    mask = np.asarray(mask)
    values = np.unique(mask)
    bad = values[~np.isin(values, BRATS_LABELS)]
    if bad.size:
        raise ValueError(f"mask labels {bad.tolist()} are not BraTS labels {list(BRATS_LABELS)}")
    if mode == "whole":
        return (mask != 0).astype(np.int64)
    if is_binary_mask(mask):
        raise ValueError(
            f"a binary (0/1) mask is a whole-tumour mask and cannot give the {mode!r} target "
            "(BraTS labels 1, 2, 4 needed); use it as a whole-tumour 2-class target"
        )
    if mode == "core":
        return np.isin(mask, (1, 4)).astype(np.int64)
    lut = np.zeros(5, dtype=np.int64)
    lut[[1, 2, 4]] = [1, 2, 3]
    return lut[mask.astype(np.int64)]


def seg_mode_for(channels: Sequence[str]) -> str:
    """The paper's segmentation target for the input sequences.

    T1-weighted inputs (all of ``t1``, ``t1ce``, ``t1ce_t1``) -> ``core`` (edema is not a
    target); T2-weighted (all of ``t2``, ``flair``) -> ``whole``; anything else (e.g. all four
    sequences) -> ``4class``.
    """
    names = {str(c).lower() for c in channels}
    if names and names <= _CORE_CHANNELS:
        return "core"
    if names and names <= _WHOLE_CHANNELS:
        return "whole"
    return "4class"


def n_seg_classes(mode: str) -> int:
    """Segmentation classes K of a target mode (4 for ``4class``, else 2)."""
    if mode not in SEG_MODES:
        raise ValueError(f"mode must be one of {SEG_MODES}, got {mode!r}")
    return 4 if mode == "4class" else 2


def class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse-frequency class weights from voxel counts (K,), normalised to mean 1.

    The mean is over the classes that occur; a class with no voxel gets weight 0 (it is never
    a target); no voxel at all gives all ones.
    """
    counts = np.asarray(counts, dtype=float)
    present = counts > 0
    out = np.zeros_like(counts)
    if not present.any():
        return np.ones_like(counts)
    inv = 1.0 / counts[present]
    out[present] = inv / inv.mean()
    return out


# --------------------------------------------------------------------------- loss


def _binary_log_probs(seg: torch.Tensor) -> torch.Tensor:
    """(B, K, ...) logits -> (B, 2, ...) log-probabilities of background vs any tumour class."""
    norm = torch.logsumexp(seg, dim=1)
    background = seg[:, 0] - norm
    tumour = torch.logsumexp(seg[:, 1:], dim=1) - norm
    return torch.stack([background, tumour], dim=1)


def _weighted_nll_per_sample(
    log_probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Per-sample weighted mean NLL (as ``F.nll_loss(weight=..., reduction='mean')`` on each
    sample alone), shape (B,)."""
    voxel = F.nll_loss(log_probs, target, weight=weight, reduction="none").flatten(1)
    w = weight[target].flatten(1)
    return voxel.sum(dim=1) / w.sum(dim=1).clamp_min(torch.finfo(voxel.dtype).tiny)


def mtl_loss(
    logit: torch.Tensor,
    seg_logits: torch.Tensor | None,
    label: torch.Tensor,
    has_label: torch.Tensor,
    gt: torch.Tensor | None,
    has_gt: torch.Tensor,
    weak: torch.Tensor | None,
    has_weak: torch.Tensor,
    pos_weight: float,
    seg_class_weights: torch.Tensor | None,
    weak_class_weights: torch.Tensor | None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's multi-task loss (eq. 1), mean over the batch's samples.

    Per sample i: ``L_i = has_label_i BCE_i + lambda_i CE_gt_i + (1 - lambda_i) has_weak_i
    CE_weak_i`` with ``lambda_i = has_gt_i``; ``BCE`` is the binary cross-entropy of the logit
    with ``pos_weight``; ``CE_gt`` the K-class cross-entropy of the segmentation logits
    against ``gt`` weighted by ``seg_class_weights`` (the weighted mean over the sample's
    voxels); ``CE_weak`` the 2-class cross-entropy of the binarised segmentation (background
    vs the merged tumour classes, log-probabilities by logsumexp) against ``weak``, weighted by
    ``weak_class_weights``. A sample with none of the three contributes 0. Computed in float32.

    Parameters
    ----------
    logit
        Classification logits (B,).
    seg_logits
        Segmentation logits (B, K, D, H, W); None (no decoder) needs no mask flag set.
    label
        0/1 labels (B,) float (any value where ``has_label`` is False, NaN included).
    has_label, has_gt, has_weak
        Per-sample flags (B,) bool.
    gt
        Class indices (B, D, H, W) int64 in 0..K-1 (read where ``has_gt``); None if none.
    weak
        0/1 tumour indices (B, D, H, W) int64 (read where ``has_weak`` and not ``has_gt``).
    pos_weight
        Weight of the positive class in the BCE (n_negative / n_positive).
    seg_class_weights, weak_class_weights
        (K,) and (2,) class weights (None: all ones).

    Returns
    -------
    tuple
        The scalar total, and ``{"cls", "seg_gt", "seg_weak"}``: each term's batch mean
        (floats; they add up to the total).
    """
    logit = logit.float()
    n = logit.shape[0]
    has_label = has_label.to(device=logit.device, dtype=torch.bool)
    has_gt = has_gt.to(device=logit.device, dtype=torch.bool)
    use_weak = has_weak.to(device=logit.device, dtype=torch.bool) & ~has_gt
    zero = logit.new_zeros(())
    cls = zero
    if has_label.any():
        per = F.binary_cross_entropy_with_logits(
            logit[has_label],
            label.to(logit.device).float()[has_label],
            pos_weight=torch.tensor(float(pos_weight), device=logit.device),
            reduction="none",
        )
        cls = per.sum() / n
    seg_gt = seg_weak = zero
    if has_gt.any() or use_weak.any():
        if seg_logits is None:
            raise ValueError("mask terms need segmentation logits (a network with a decoder)")
        seg = seg_logits.float()
        k = seg.shape[1]
        if has_gt.any():
            assert gt is not None
            w = torch.ones(k) if seg_class_weights is None else seg_class_weights
            per = _weighted_nll_per_sample(
                F.log_softmax(seg[has_gt], dim=1),
                gt.to(seg.device)[has_gt].long(),
                w.to(device=seg.device, dtype=torch.float32),
            )
            seg_gt = per.sum() / n
        if use_weak.any():
            assert weak is not None
            w = torch.ones(2) if weak_class_weights is None else weak_class_weights
            per = _weighted_nll_per_sample(
                _binary_log_probs(seg[use_weak]),
                weak.to(seg.device)[use_weak].long(),
                w.to(device=seg.device, dtype=torch.float32),
            )
            seg_weak = per.sum() / n
    total = cls + seg_gt + seg_weak
    parts = {
        "cls": float(cls.detach()),
        "seg_gt": float(seg_gt.detach()),
        "seg_weak": float(seg_weak.detach()),
    }
    return total, parts
