"""Gradient blending of the loss heads of a multimodal network.

Wang, Tran & Feiszli (2020), "What makes training multi-modal classification networks hard?"
(CVPR): a multimodal network trained end to end often does worse than its best single-modality
part, because its modalities overfit at different rates. Gradient blending trains one output
head per modality beside the multimodal one and minimises a weighted sum of the heads' losses,
``L = sum_k w_k L_k``, with weights re-estimated every few epochs from how each head
generalises and overfits. For head k between two checkpoints N and N + n:

- generalisation ``G_k = L_val,k(N) - L_val,k(N + n)`` (how much its validation loss fell);
- overfitting ``O_k(N) = L_val,k(N) - L_train,k(N)`` and its change
  ``dO_k = O_k(N + n) - O_k(N)``;
- weights ``w_k = (1 / Z) G_k / dO_k^2`` with ``Z = sum_k G_k / dO_k^2`` (Wang's normalisation
  by the sum; no softmax).

Here a head whose validation loss did not fall (``G_k <= 0``) gets weight 0, ``dO_k^2`` is
floored at ``eps`` (a head that neither overfits nor underfits more would otherwise take every
weight on rounding noise), and when every head gets 0 the previous weights are kept. The losses
passed in are each head's unweighted loss on the whole training set and on the whole blending
split (the validation split, never test), computed in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["GradientBlender"]


class GradientBlender:
    """Per-head loss weights from the heads' generalisation and overfitting (Wang et al. 2020).

    Parameters
    ----------
    heads
        Names of the loss heads (the MMNN: ``mm``, ``image``, ``clinical``).
    every
        Epochs between updates (the caller calls :meth:`update` after every ``every``-th
        epoch; only used to number the history when no epoch is given).
    eps
        Floor of ``dO_k^2`` (squared Cox-loss units).

    Attributes
    ----------
    weights : dict[str, float]
        Current weights, summing to 1; uniform (1 / number of heads) at the start.
    history : list[tuple[int, dict[str, float]]]
        ``(epoch, weights)`` after each update, starting with ``(0, uniform)``.
    """

    def __init__(
        self,
        heads: Sequence[str] = ("mm", "image", "clinical"),
        every: int = 5,
        eps: float = 1e-4,
    ) -> None:
        if len(heads) < 1 or len(set(heads)) != len(heads):
            raise ValueError(f"need distinct head names, got {list(heads)}")
        if every < 1 or eps <= 0:
            raise ValueError(f"need every >= 1 and eps > 0, got {every}, {eps}")
        self.heads = tuple(heads)
        self.every = int(every)
        self.eps = float(eps)
        self.weights = {k: 1.0 / len(self.heads) for k in self.heads}
        self.history: list[tuple[int, dict[str, float]]] = [(0, dict(self.weights))]
        self._previous: tuple[dict[str, float], dict[str, float]] | None = None
        self._calls = 0

    def _check(self, losses: Mapping[str, float], what: str) -> dict[str, float]:
        missing = [k for k in self.heads if k not in losses]
        if missing:
            raise ValueError(f"{what} losses lack heads {missing}")
        out = {k: float(losses[k]) for k in self.heads}
        if not all(math.isfinite(v) for v in out.values()):
            raise ValueError(f"{what} losses must be finite, got {out}")
        return out

    def update(
        self,
        train_losses: Mapping[str, float],
        val_losses: Mapping[str, float],
        *,
        epoch: int | None = None,
    ) -> dict[str, float]:
        """Record the heads' current losses and re-estimate the weights.

        The first call only stores the losses (the weights stay as they are, uniform); each
        later call compares with the previous call's losses.

        Parameters
        ----------
        train_losses, val_losses
            Head -> unweighted loss on the whole training set / the blending split.
        epoch
            Epoch after which the losses were measured (for :attr:`history`); default: the
            number of calls times ``every``.

        Returns
        -------
        dict[str, float]
            The weights to use until the next update (a copy).
        """
        train = self._check(train_losses, "training")
        val = self._check(val_losses, "validation")
        self._calls += 1
        if self._previous is not None:
            prev_train, prev_val = self._previous
            raw = {}
            for k in self.heads:
                gain = prev_val[k] - val[k]
                d_over = (val[k] - train[k]) - (prev_val[k] - prev_train[k])
                raw[k] = gain / max(d_over * d_over, self.eps) if gain > 0 else 0.0
            total = sum(raw.values())
            if total > 0:
                self.weights = {k: v / total for k, v in raw.items()}
            self.history.append(
                (self._calls * self.every if epoch is None else int(epoch), dict(self.weights))
            )
        self._previous = (train, val)
        return dict(self.weights)
