"""Deep survival models on slides (patch-feature bags) and RNA-seq.

Each class is a :class:`~mmsurv.models.base.SurvivalModel` trained by
:class:`~mmsurv.models.torch_model.TorchSurvivalModel` (input table, training loop, early
stopping, Breslow survival curves: see that module). Constructor keywords other than ``seed``
and ``threads`` are an experiment's tunable ``params``.

=======================  ==============================  ========================================
model                    class                           network
=======================  ==============================  ========================================
``wsi_abmil``            :class:`ABMILModel`             gated-attention MIL on patch features
``rna_mlp``              :class:`RNAMLPModel`            MLP on preprocessed RNA
``wsi_rna_average``      :class:`AverageFusionModel`     Steyaert et al. 2023 average fusion
``wsi_rna_xattn``        :class:`CrossAttentionModel`    seed paper's RNA-query cross-attention
=======================  ==============================  ========================================

Defaults marked "paper" are those the seed paper (cross-attention fusion vs. the Steyaert et al.
baseline) reports: 20 epochs, learning rate 0.001, bag size 32 (of 16 and 32), batch size 128
(of 128 and 256), dropout 0 for cross-attention and 0.8 for the average-fusion baseline. The
others ("ours") are not given there: weight decay, patience, network widths, gene selection,
and every ABMIL / RNA-MLP setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmsurv.models.nets import RNAMLP, AverageFusion, CrossAttentionFusion, GatedAttentionMIL
from mmsurv.models.torch_model import Batch, TorchSurvivalModel
from mmsurv.omics.rna import RNAPreprocessor

__all__ = ["ABMILModel", "RNAMLPModel", "AverageFusionModel", "CrossAttentionModel"]


def _rna_prep(n_top_genes: int, min_expression: float, min_fraction: float) -> RNAPreprocessor:
    return RNAPreprocessor(
        n_top_genes=n_top_genes, min_expression=min_expression, min_fraction=min_fraction
    )


def _own_params(values: dict[str, Any]) -> dict[str, Any]:
    """An ``__init__``'s ``locals()`` as the experiment parameters it was built with."""
    return {k: v for k, v in values.items() if k not in _NOT_PARAMS}


#: Constructor arguments that are not experiment parameters.
_NOT_PARAMS = frozenset({"self", "__class__", "seed", "threads", "device"})


class ABMILModel(TorchSurvivalModel):
    """Gated-attention MIL (Ilse et al. 2018) on one slide's patch features (``wsi_abmil``).

    One prediction unit per slide (``X`` has ``patient_id`` and ``wsi``).

    Parameters (``params`` of an experiment; all defaults ours)
    -----------------------------------------------------------
    hidden : int, default 256
        Patch-embedding width.
    attn_dim : int, default 128
        Attention-gate width.
    dropout : float, default 0.25
    lr : float, default 1e-4
    weight_decay : float, default 1e-4
    epochs : int, default 20
    batch_size : int, default 16
        Slides per mini-batch.
    bag_size : int | None, default 512
        Patches sampled per slide per training step (None: all).
    patience : int, default 5
        Early-stopping patience (epochs).
    """

    uses_wsi = True

    def __init__(
        self,
        *,
        hidden: int = 256,
        attn_dim: int = 128,
        dropout: float = 0.25,
        lr: float = 1e-4,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 16,
        bag_size: int | None = 512,
        patience: int = 5,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            bag_size=bag_size,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.hidden = int(hidden)
        self.attn_dim = int(attn_dim)
        self.dropout = float(dropout)
        self.params = _own_params(locals())

    def _build_net(self, wsi_dim: int | None, rna_dim: int | None) -> nn.Module:
        assert wsi_dim is not None
        return GatedAttentionMIL(wsi_dim, self.hidden, self.attn_dim, self.dropout)

    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return net(batch.bags, batch.mask)

    def predict_attention(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Unit id -> attention over all the slide's patches, shape (N_i,), summing to 1, in the
        order of its feature file's ``coords``; an empty array for a slide without patches."""
        return self._predict_attention(X)


class RNAMLPModel(TorchSurvivalModel):
    """MLP on the RNA profile after training-fitted gene selection and z-scoring (``rna_mlp``).

    One unit per patient (``X`` has ``patient_id`` and ``rna:{gene}`` columns).

    Parameters (``params`` of an experiment; all defaults ours)
    -----------------------------------------------------------
    n_top_genes : int, default 1000
    min_expression : float, default 1.0
    min_fraction : float, default 0.2
        Gene filter and selection of :class:`~mmsurv.omics.rna.RNAPreprocessor`.
    hidden : int | sequence of int, default (256, 64)
        Hidden-layer widths (an int: one layer). In an experiment's ``params`` a list is one
        setting (``hidden: [256, 64]``) and a list of lists a grid of candidates.
    dropout : float, default 0.25
    lr : float, default 1e-3
    weight_decay : float, default 1e-4
    epochs : int, default 20
    batch_size : int, default 64
    patience : int, default 5
    """

    list_params = frozenset({"hidden"})

    uses_rna = True

    def __init__(
        self,
        *,
        n_top_genes: int = 1000,
        min_expression: float = 1.0,
        min_fraction: float = 0.2,
        hidden: int | Sequence[int] = (256, 64),
        dropout: float = 0.25,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 64,
        patience: int = 5,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.hidden = (int(hidden),) if isinstance(hidden, int) else tuple(int(h) for h in hidden)
        if not self.hidden:
            raise ValueError("hidden needs at least one layer width")
        self.dropout = float(dropout)
        self.rna_prep = _rna_prep(n_top_genes, min_expression, min_fraction)
        self.params = {
            "n_top_genes": n_top_genes,
            "min_expression": min_expression,
            "min_fraction": min_fraction,
            "hidden": list(self.hidden),
            "dropout": dropout,
            "lr": lr,
            "weight_decay": weight_decay,
            "epochs": epochs,
            "batch_size": batch_size,
            "patience": patience,
        }

    def _build_net(self, wsi_dim: int | None, rna_dim: int | None) -> nn.Module:
        assert rna_dim is not None
        return RNAMLP(rna_dim, self.hidden, self.dropout)

    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return net(batch.rna), None


class AverageFusionModel(TorchSurvivalModel):
    """Average fusion of a slide branch and an RNA branch (``wsi_rna_average``).

    The Steyaert et al. 2023 joint-fusion baseline as the seed paper describes it: mean-pooled
    patch features and the RNA profile each mapped to a ``hidden``-d embedding with heavy
    dropout, the embeddings averaged, a linear risk head. One unit per slide (``X`` has
    ``patient_id``, ``wsi`` and ``rna:{gene}``; a patient's slides share its RNA).

    Parameters (``params`` of an experiment)
    ----------------------------------------
    n_top_genes, min_expression, min_fraction : default 1000, 1.0, 0.2 (ours)
        RNA preprocessing (:class:`~mmsurv.omics.rna.RNAPreprocessor`).
    hidden : int, default 256 (ours)
    dropout : float, default 0.8 (paper: the baseline's value)
    lr : float, default 1e-3 (paper's value for its own model)
    weight_decay : float, default 1e-4 (ours)
    epochs : int, default 20 (paper)
    batch_size : int, default 128 (paper)
    bag_size : int | None, default 32 (ours, matching the cross-attention model)
    patience : int, default 5 (ours)
    """

    uses_wsi = True
    uses_rna = True

    def __init__(
        self,
        *,
        n_top_genes: int = 1000,
        min_expression: float = 1.0,
        min_fraction: float = 0.2,
        hidden: int = 256,
        dropout: float = 0.8,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 128,
        bag_size: int | None = 32,
        patience: int = 5,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            bag_size=bag_size,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.hidden = int(hidden)
        self.dropout = float(dropout)
        self.rna_prep = _rna_prep(n_top_genes, min_expression, min_fraction)
        self.params = _own_params(locals())

    def _build_net(self, wsi_dim: int | None, rna_dim: int | None) -> nn.Module:
        assert wsi_dim is not None and rna_dim is not None
        return AverageFusion(wsi_dim, rna_dim, self.hidden, self.dropout)

    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return net(batch.bags, batch.mask, batch.rna), None


class CrossAttentionModel(TorchSurvivalModel):
    """RNA-query cross-attention over patch features (``wsi_rna_xattn``, the seed paper's).

    The RNA profile (after training-fitted preprocessing) is projected to the single query of
    a scaled dot-product attention whose keys and values are the slide's patch features; the
    attention-weighted mean of the values gives the risk. One unit per slide (``X`` has
    ``patient_id``, ``wsi`` and ``rna:{gene}``).

    Parameters (``params`` of an experiment)
    ----------------------------------------
    n_top_genes, min_expression, min_fraction : default 1000, 1.0, 0.2 (ours)
        RNA preprocessing (:class:`~mmsurv.omics.rna.RNAPreprocessor`).
    d_model : int, default 256 (ours)
    dropout : float, default 0.0 (paper)
    lr : float, default 1e-3 (paper)
    weight_decay : float, default 1e-4 (ours)
    epochs : int, default 20 (paper)
    batch_size : int, default 128 (paper; capped at the number of training slides)
    bag_size : int | None, default 32 (paper: 16 or 32)
    patience : int, default 5 (ours; the paper reports no early stopping)
    """

    uses_wsi = True
    uses_rna = True

    def __init__(
        self,
        *,
        n_top_genes: int = 1000,
        min_expression: float = 1.0,
        min_fraction: float = 0.2,
        d_model: int = 256,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 20,
        batch_size: int = 128,
        bag_size: int | None = 32,
        patience: int = 5,
        seed: int = 0,
        threads: int = 1,
        device: str = "auto",
    ) -> None:
        super().__init__(
            lr=lr,
            weight_decay=weight_decay,
            epochs=epochs,
            batch_size=batch_size,
            patience=patience,
            bag_size=bag_size,
            seed=seed,
            threads=threads,
            device=device,
        )
        self.d_model = int(d_model)
        self.dropout = float(dropout)
        self.rna_prep = _rna_prep(n_top_genes, min_expression, min_fraction)
        self.params = _own_params(locals())

    def _build_net(self, wsi_dim: int | None, rna_dim: int | None) -> nn.Module:
        assert wsi_dim is not None and rna_dim is not None
        return CrossAttentionFusion(wsi_dim, rna_dim, self.d_model, self.dropout)

    def _forward(self, net: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return net(batch.bags, batch.mask, batch.rna)

    def predict_attention(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Unit id -> RNA-conditioned attention over all the slide's patches, shape (N_i,),
        summing to 1, in the order of its feature file's ``coords``; an empty array for a
        slide without patches."""
        return self._predict_attention(X)
