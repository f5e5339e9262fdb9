"""The multi-task loss (eq. 1 of Nuechterlein et al.) against hand computation, and targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmsurv.models.mtl_nets import class_weights, mtl_loss, seg_mode_for, seg_targets

B, K, SPATIAL = 3, 4, (2, 3, 2)
POS_WEIGHT = 2.5
SEG_W = torch.tensor([0.4, 1.2, 0.9, 1.5])
WEAK_W = torch.tensor([0.6, 1.4])


def _tensors(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logit = torch.randn(B, generator=g, requires_grad=True)
    seg = torch.randn(B, K, *SPATIAL, generator=g, requires_grad=True)
    label = torch.tensor([1.0, 0.0, 1.0])
    gt = torch.randint(0, K, (B, *SPATIAL), generator=g)
    weak = torch.randint(0, 2, (B, *SPATIAL), generator=g)
    return logit, seg, label, gt, weak


def _hand(logit, seg, label, gt, weak, flags, seg_w=SEG_W, weak_w=WEAK_W):
    """Eq. 1 per sample with torch.nn.functional, averaged over the batch."""
    parts = {"cls": 0.0, "seg_gt": 0.0, "seg_weak": 0.0}
    for i, (has_label, has_gt, has_weak) in enumerate(flags):
        if has_label:
            parts["cls"] += F.binary_cross_entropy_with_logits(
                logit[i], label[i], pos_weight=torch.tensor(POS_WEIGHT)
            )
        if has_gt:  # lambda = 1
            parts["seg_gt"] += F.cross_entropy(seg[i : i + 1], gt[i : i + 1], weight=seg_w)
        elif has_weak:  # lambda = 0
            p_tumour = 1 - torch.softmax(seg[i : i + 1], dim=1)[:, 0]
            log_p = torch.log(torch.stack([1 - p_tumour, p_tumour], dim=1))
            parts["seg_weak"] += F.nll_loss(log_p, weak[i : i + 1], weight=weak_w)
    parts = {k: v / B for k, v in parts.items()}
    total = sum(parts.values())
    return torch.as_tensor(total).detach().float(), {
        k: float(torch.as_tensor(v).detach()) for k, v in parts.items()
    }


def _run(logit, seg, label, gt, weak, flags, **kw):
    fl = torch.tensor(flags, dtype=torch.bool)
    args = dict(pos_weight=POS_WEIGHT, seg_class_weights=SEG_W, weak_class_weights=WEAK_W) | kw
    return mtl_loss(logit, seg, label, fl[:, 0], gt, fl[:, 1], weak, fl[:, 2], **args)


# per sample: (has_label, has_gt, has_weak)
CASES = {
    "label only": [(1, 0, 0)] * 3,
    "gt mask only": [(0, 1, 0)] * 3,
    "weak mask only": [(0, 0, 1)] * 3,
    "nothing": [(0, 0, 0)] * 3,
    "label and gt": [(1, 1, 0)] * 3,
    "label and weak": [(1, 0, 1)] * 3,
    "gt wins over weak": [(0, 1, 1)] * 3,
    "mixed batch": [(1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "mixed with an empty sample": [(1, 1, 0), (0, 0, 0), (1, 0, 1)],
}


@pytest.mark.parametrize("case", list(CASES))
def test_terms_match_hand_computation(case):
    flags = CASES[case]
    logit, seg, label, gt, weak = _tensors()
    label = label.clone()
    label[[i for i, f in enumerate(flags) if not f[0]]] = float("nan")  # unlabeled: NaN
    total, parts = _run(logit, seg, label, gt, weak, flags)
    expected, exp_parts = _hand(logit, seg, label, gt, weak, flags)
    torch.testing.assert_close(total.detach(), expected)
    for k in parts:
        assert parts[k] == pytest.approx(exp_parts[k], rel=1e-5, abs=1e-7)
    assert sum(parts.values()) == pytest.approx(float(total.detach()), rel=1e-5, abs=1e-7)
    if case == "nothing":
        assert float(total) == 0 and not total.requires_grad


@pytest.mark.parametrize(
    ("flags", "logit_grad", "seg_grad"),
    [
        ([(1, 0, 0)] * 3, True, False),
        ([(0, 1, 0)] * 3, False, True),
        ([(0, 0, 1)] * 3, False, True),
        ([(1, 1, 0)] * 3, True, True),
    ],
)
def test_gradients_flow_only_from_their_terms(flags, logit_grad, seg_grad):
    logit, seg, label, gt, weak = _tensors()
    total, _ = _run(logit, seg, label, gt, weak, flags)
    total.backward()
    for tensor, expected in ((logit, logit_grad), (seg, seg_grad)):
        got = tensor.grad is not None and bool(tensor.grad.abs().sum() > 0)
        assert got == expected


def test_only_the_flagged_samples_get_gradients():
    logit, seg, label, gt, weak = _tensors()
    total, _ = _run(logit, seg, label, gt, weak, [(1, 0, 0), (0, 1, 0), (0, 0, 0)])
    total.backward()
    assert logit.grad[0] != 0 and logit.grad[1] == 0 and logit.grad[2] == 0
    assert seg.grad[0].abs().sum() == 0 and seg.grad[1].abs().sum() > 0
    assert seg.grad[2].abs().sum() == 0


def test_class_weights_change_the_value_as_expected():
    logit, seg, label, gt, weak = _tensors()
    flags = [(1, 1, 0), (0, 1, 0), (0, 0, 1)]
    weighted, _ = _run(logit, seg, label, gt, weak, flags)
    plain, _ = _run(
        logit, seg, label, gt, weak, flags, seg_class_weights=None, weak_class_weights=None
    )
    assert not torch.isclose(weighted.detach(), plain.detach())
    expected, _ = _hand(logit, seg, label, gt, weak, flags, torch.ones(K), torch.ones(2))
    torch.testing.assert_close(plain.detach(), expected)
    # a weighted mean: scaling all weights leaves the loss unchanged
    scaled, _ = _run(
        logit, seg, label, gt, weak, flags, seg_class_weights=3 * SEG_W, weak_class_weights=WEAK_W
    )
    torch.testing.assert_close(scaled.detach(), weighted.detach())
    # the BCE's pos_weight scales the positive samples' term only
    _, parts1 = _run(logit, seg, label, gt, weak, [(1, 0, 0)] * 3, pos_weight=1.0)
    _, parts2 = _run(logit, seg, label, gt, weak, [(1, 0, 0)] * 3, pos_weight=2.0)
    with torch.no_grad():
        pos = F.binary_cross_entropy_with_logits(logit[[0, 2]], label[[0, 2]], reduction="sum")
    assert parts2["cls"] - parts1["cls"] == pytest.approx(float(pos) / B, rel=1e-5)


def test_binarised_term_is_stable_for_large_logits():
    logit, seg, label, gt, weak = _tensors()
    big = (seg.detach() * 200).requires_grad_()
    total, parts = _run(logit, big, label, gt, weak, [(0, 0, 1)] * 3)
    total.backward()
    assert np.isfinite(parts["seg_weak"]) and torch.isfinite(big.grad).all()


def test_mask_terms_need_segmentation_logits():
    logit, _, label, gt, weak = _tensors()
    with pytest.raises(ValueError, match="segmentation logits"):
        _run(logit, None, label, gt, weak, [(1, 1, 0)] * 3)
    total, parts = _run(logit, None, label, None, None, [(1, 0, 0)] * 3)  # the CNN baseline
    assert parts["seg_gt"] == parts["seg_weak"] == 0 and total.requires_grad


def test_seg_targets_per_mode():
    mask = np.array([[0, 1, 2], [4, 2, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(seg_targets(mask, "4class"), [[0, 1, 2], [3, 2, 0]])
    np.testing.assert_array_equal(seg_targets(mask, "core"), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(seg_targets(mask, "whole"), [[0, 1, 1], [1, 1, 0]])
    assert seg_targets(mask, "4class").dtype == np.int64
    binary = np.array([0, 1, 1, 0], dtype=np.uint8)
    np.testing.assert_array_equal(seg_targets(binary, "whole"), [0, 1, 1, 0])
    for mode in ("4class", "core"):
        with pytest.raises(ValueError, match="binary"):
            seg_targets(binary, mode)
    with pytest.raises(ValueError, match=r"\[3\] are not BraTS labels"):
        seg_targets(np.array([0, 3]), "whole")
    with pytest.raises(ValueError, match="mode"):
        seg_targets(mask, "edema")


@pytest.mark.parametrize(
    ("channels", "mode"),
    [
        (["t1ce"], "core"),
        (["t1"], "core"),
        (["t1ce_t1"], "core"),
        (["t1", "t1ce"], "core"),
        (["t2"], "whole"),
        (["flair"], "whole"),
        (["t2", "flair"], "whole"),
        (["t1", "t1ce", "t2", "flair"], "4class"),
        (["t1ce", "flair"], "4class"),
    ],
)
def test_seg_mode_for(channels, mode):
    assert seg_mode_for(channels) == mode


def test_class_weights_are_inverse_frequency_with_mean_one():
    w = class_weights(np.array([60, 30, 0, 10]))
    inv = np.array([1 / 60, 1 / 30, 1 / 10])
    np.testing.assert_allclose(w[[0, 1, 3]], inv / inv.mean())
    assert w[2] == 0 and w[[0, 1, 3]].mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(class_weights(np.zeros(2)), [1.0, 1.0])
