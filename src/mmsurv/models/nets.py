"""Torch networks for survival from patch-feature bags and RNA profiles.

Every network returns a *risk*: the log relative hazard of a Cox model, shape (B,), higher
meaning worse prognosis. Bags of patch features come padded to a common length ``N`` with a
boolean mask, ``True`` for a real patch; padded rows never change an output (they are zeroed
before any arithmetic and get zero attention). A bag with no real patch has no defined output:
its risk and attention are NaN (the training machinery never passes one).

Networks:

- :class:`GatedAttentionMIL`: gated-attention multiple-instance pooling (Ilse et al. 2018).
- :class:`RNAMLP`: a multilayer perceptron on an RNA expression vector.
- :class:`AverageFusion`: the joint-fusion baseline of Steyaert et al. 2023 as the seed paper
  describes it: mean-pooled patch features and RNA, each through its own branch to an
  embedding, the two embeddings averaged.
- :class:`CrossAttentionFusion`: the seed paper's model: the RNA embedding is the single query
  of a scaled dot-product attention over the patch features (keys and values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["GatedAttentionMIL", "RNAMLP", "AverageFusion", "CrossAttentionFusion", "masked_mean"]


def _zero_padding(bags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``bags`` (B, N, D) with padded rows (``mask`` False) set to 0."""
    return bags.masked_fill(~mask.unsqueeze(-1), 0.0)


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of ``logits`` (B, N) restricted to ``mask`` (B, N) True.

    Padded positions get weight exactly 0; a row without any real position is NaN.
    """
    return torch.softmax(logits.float().masked_fill(~mask, float("-inf")), dim=-1)


def masked_mean(bags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real rows of each bag.

    Parameters
    ----------
    bags
        Patch features, shape (B, N, D).
    mask
        Shape (B, N) bool, True for a real patch.

    Returns
    -------
    torch.Tensor
        Shape (B, D); NaN for a bag without real patches (0 / 0).
    """
    total = _zero_padding(bags, mask).sum(dim=1)
    count = mask.sum(dim=1, keepdim=True).to(total.dtype)
    return total / count


class GatedAttentionMIL(nn.Module):
    """Gated-attention MIL pooling and a linear risk head (Ilse, Tomczak & Welling, ICML 2018).

    Each patch feature is embedded, ``h = ReLU(W x)`` (``hidden``-d, with dropout); its
    attention logit is ``a = w^T (tanh(V h) * sigmoid(U h))`` (``attn_dim``-d gate); the
    weights are the softmax of ``a`` over the bag's real patches; the bag embedding is the
    weighted sum of ``h`` and a linear layer maps it to the risk.

    Parameters
    ----------
    in_dim
        Patch-feature dimension D.
    hidden
        Patch-embedding dimension.
    attn_dim
        Dimension of the attention gate (V and U).
    dropout
        Dropout probability after the patch embedding and on the bag embedding.
    """

    def __init__(
        self, in_dim: int, hidden: int = 256, attn_dim: int = 128, dropout: float = 0.25
    ) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.attention_v = nn.Sequential(nn.Linear(hidden, attn_dim), nn.Tanh())
        self.attention_u = nn.Sequential(nn.Linear(hidden, attn_dim), nn.Sigmoid())
        self.attention_w = nn.Linear(attn_dim, 1)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, bags: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Risk and attention of each bag.

        Parameters
        ----------
        bags
            Patch features, shape (B, N, D), padded.
        mask
            Shape (B, N) bool, True for a real patch.

        Returns
        -------
        risk : torch.Tensor
            Log relative hazard, shape (B,).
        attention : torch.Tensor
            Attention weights, shape (B, N) float32: 0 on padding, summing to 1 over each bag.
        """
        h = _zero_padding(self.embed(_zero_padding(bags, mask)), mask)  # (B, N, hidden)
        logits = self.attention_w(self.attention_v(h) * self.attention_u(h)).squeeze(-1)
        attention = _masked_softmax(logits, mask)  # (B, N)
        pooled = torch.einsum("bn,bnh->bh", attention.to(h.dtype), h)  # (B, hidden)
        return self.head(pooled).squeeze(-1), attention


class RNAMLP(nn.Module):
    """Multilayer perceptron from an RNA expression vector to a risk.

    Parameters
    ----------
    in_dim
        Number of genes G.
    hidden
        Widths of the hidden layers (each Linear -> ReLU -> Dropout).
    dropout
        Dropout probability after each hidden layer.
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int] = (256, 64), dropout: float = 0.25
    ) -> None:
        super().__init__()
        widths = [in_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)

    def embed(self, rna: torch.Tensor) -> torch.Tensor:
        """Last hidden layer, shape (B, hidden[-1]), from ``rna`` of shape (B, G)."""
        return self.body(rna)

    def forward(self, rna: torch.Tensor) -> torch.Tensor:
        """Log relative hazard, shape (B,), from the expression ``rna``, shape (B, G)."""
        return self.head(self.embed(rna)).squeeze(-1)


class AverageFusion(nn.Module):
    """Joint fusion by averaging modality embeddings (the Steyaert et al. 2023 baseline).

    The patch features of a bag are mean-aggregated (real patches only); the WSI branch
    (Linear -> ReLU -> Dropout) maps the mean to a ``hidden``-d embedding, the RNA branch
    (same layers) maps the expression vector to another; the two embeddings are averaged and a
    linear head gives the risk. The paper's baseline used dropout 0.8.

    Parameters
    ----------
    wsi_dim
        Patch-feature dimension D.
    rna_dim
        Number of genes G.
    hidden
        Embedding dimension of each branch.
    dropout
        Dropout probability in each branch.
    """

    def __init__(self, wsi_dim: int, rna_dim: int, hidden: int = 256, dropout: float = 0.8) -> None:
        super().__init__()
        self.wsi_branch = nn.Sequential(nn.Linear(wsi_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.rna_branch = nn.Sequential(nn.Linear(rna_dim, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, 1)

    def forward(self, bags: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor) -> torch.Tensor:
        """Risk of each unit.

        Parameters
        ----------
        bags
            Patch features, shape (B, N, D), padded.
        mask
            Shape (B, N) bool, True for a real patch.
        rna
            Expression, shape (B, G).

        Returns
        -------
        torch.Tensor
            Log relative hazard, shape (B,).
        """
        wsi = self.wsi_branch(masked_mean(bags, mask))  # (B, hidden)
        fused = 0.5 * (wsi + self.rna_branch(rna))  # (B, hidden)
        return self.head(fused).squeeze(-1)


class CrossAttentionFusion(nn.Module):
    """RNA-conditioned attention over patches (the seed paper's cross-attention fusion).

    The RNA vector is projected to the single query ``q`` (``d_model``-d); the patch features
    to keys ``K`` and values ``V``; the attention weights are
    ``softmax(K q / sqrt(d_model))`` over the bag's real patches; the weighted average of the
    values goes through an MLP head (Linear -> ReLU -> Dropout -> Linear) to the risk. Nothing
    else is concatenated to the pooled vector, so the RNA acts only through the weights.

    Parameters
    ----------
    wsi_dim
        Patch-feature dimension D.
    rna_dim
        Number of genes G.
    d_model
        Dimension of queries, keys and values.
    dropout
        Dropout probability in the head (0 in the paper).
    """

    def __init__(
        self, wsi_dim: int, rna_dim: int, d_model: int = 256, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.query = nn.Linear(rna_dim, d_model)
        self.key = nn.Linear(wsi_dim, d_model)
        self.value = nn.Linear(wsi_dim, d_model)
        self.head = nn.Sequential(
            nn.Linear(d_model, d_model), nn.ReLU(), nn.Dropout(dropout), nn.Linear(d_model, 1)
        )

    def forward(
        self, bags: torch.Tensor, mask: torch.Tensor, rna: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Risk and attention of each unit.

        Parameters
        ----------
        bags
            Patch features, shape (B, N, D), padded.
        mask
            Shape (B, N) bool, True for a real patch.
        rna
            Expression, shape (B, G).

        Returns
        -------
        risk : torch.Tensor
            Log relative hazard, shape (B,).
        attention : torch.Tensor
            Attention weights, shape (B, N) float32: 0 on padding, summing to 1 over each bag.
        """
        bags = _zero_padding(bags, mask)
        q = self.query(rna)  # (B, d)
        k = self.key(bags)  # (B, N, d)
        v = _zero_padding(self.value(bags), mask)  # (B, N, d)
        logits = torch.einsum("bnd,bd->bn", k, q) / math.sqrt(self.d_model)
        attention = _masked_softmax(logits, mask)  # (B, N)
        pooled = torch.einsum("bn,bnd->bd", attention.to(v.dtype), v)  # (B, d)
        return self.head(pooled).squeeze(-1), attention
