"""Torch networks: shapes, gradients, masking of padded patches, attention weights."""

from __future__ import annotations

import pytest
import torch

from mmsurv.models.nets import (
    RNAMLP,
    AverageFusion,
    CrossAttentionFusion,
    GatedAttentionMIL,
    masked_mean,
)

B, N, D, G = 3, 7, 5, 6
LENGTHS = (7, 4, 1)  # real patches per bag


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    bags = torch.randn(B, N, D, generator=gen)
    mask = torch.zeros(B, N, dtype=torch.bool)
    for i, n in enumerate(LENGTHS):
        mask[i, :n] = True
    return bags, mask, torch.randn(B, G, generator=gen)


NETS = {
    "abmil": (lambda: GatedAttentionMIL(D, hidden=8, attn_dim=4, dropout=0.25), "bm"),
    "average": (lambda: AverageFusion(D, G, hidden=8, dropout=0.8), "bmr"),
    "xattn": (lambda: CrossAttentionFusion(D, G, d_model=8), "bmr"),
    "rna_mlp": (lambda: RNAMLP(G, hidden=(8, 4), dropout=0.25), "r"),
}


def _call(net: torch.nn.Module, args: str, bags, mask, rna):
    values = {"b": bags, "m": mask, "r": rna}
    out = net(*[values[a] for a in args])
    return out if isinstance(out, tuple) else (out, None)


@pytest.mark.parametrize("name", list(NETS))
def test_forward_backward(name):
    make, args = NETS[name]
    torch.manual_seed(0)
    net = make().train()
    risk, attention = _call(net, args, *_inputs())
    assert risk.shape == (B,) and torch.isfinite(risk).all()
    risk.sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if attention is not None:
        assert attention.shape == (B, N)


@pytest.mark.parametrize("name", ["abmil", "average", "xattn"])
def test_padding_does_not_change_outputs(name):
    make, args = NETS[name]
    torch.manual_seed(0)
    net = make().eval()
    bags, mask, rna = _inputs()
    risk, attention = _call(net, args, bags, mask, rna)
    # same real rows, padding filled with garbage (huge, inf, NaN) and 3 more padded positions
    garbage = torch.full((B, N + 3, D), 1e30)
    garbage[:, :, 0] = float("nan")
    garbage[:, :, 1] = float("inf")
    wide_mask = torch.zeros(B, N + 3, dtype=torch.bool)
    wide_mask[:, :N] = mask
    wide = torch.where(
        wide_mask.unsqueeze(-1), torch.nn.functional.pad(bags, (0, 0, 0, 3)), garbage
    )
    risk_wide, attention_wide = _call(net, args, wide, wide_mask, rna)
    torch.testing.assert_close(risk_wide, risk)
    # each bag alone, without any padding
    for i, n in enumerate(LENGTHS):
        alone, _ = _call(net, args, bags[i : i + 1, :n], mask[i : i + 1, :n], rna[i : i + 1])
        torch.testing.assert_close(alone, risk[i : i + 1])
    if attention is not None:
        torch.testing.assert_close(attention_wide[:, :N], attention)
        assert (attention_wide[~wide_mask] == 0).all()
        torch.testing.assert_close(attention.sum(dim=1), torch.ones(B))


@pytest.mark.parametrize("name", ["abmil", "xattn"])
def test_attention_responds_to_content(name):
    make, args = NETS[name]
    torch.manual_seed(0)
    net = make().eval()
    bags, mask, rna = _inputs()
    _, attention = _call(net, args, bags, mask, rna)
    assert attention[2, 0] == 1.0  # a single real patch takes all the weight
    assert not torch.allclose(attention[0], torch.full((N,), 1 / N))


def test_empty_bag_is_nan_not_a_value():
    net = GatedAttentionMIL(D, hidden=8, attn_dim=4).eval()
    bags, mask, _ = _inputs()
    mask[1] = False
    risk, attention = net(bags, mask)
    assert torch.isnan(risk[1]) and torch.isnan(attention[1]).all()
    assert torch.isfinite(risk[[0, 2]]).all()
    assert torch.isnan(masked_mean(bags, mask)[1]).all()


def test_masked_mean_and_rna_embedding():
    bags, mask, rna = _inputs()
    torch.testing.assert_close(masked_mean(bags, mask)[1], bags[1, :4].mean(dim=0))
    net = RNAMLP(G, hidden=(8, 4)).eval()
    assert net.embed(rna).shape == (B, 4)
    torch.testing.assert_close(net.head(net.embed(rna)).squeeze(-1), net(rna))


def test_cross_attention_is_scaled_dot_product():
    net = CrossAttentionFusion(D, G, d_model=8).eval()
    bags, mask, rna = _inputs()
    _, attention = net(bags, mask, rna)
    with torch.no_grad():
        q, k = net.query(rna[0]), net.key(bags[0])
        expected = torch.softmax(k @ q / 8**0.5, dim=0)
    torch.testing.assert_close(attention[0], expected)
