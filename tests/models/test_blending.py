"""Gradient blending (Wang et al. 2020): weights from generalisation over overfitting squared."""

from __future__ import annotations

import pytest

from mmsurv.models.blending import GradientBlender

HEADS = ("mm", "image", "clinical")


def test_uniform_at_start_and_after_the_first_call():
    b = GradientBlender(HEADS, every=5)
    assert b.weights == pytest.approx({k: 1 / 3 for k in HEADS})
    assert b.history == [(0, b.weights)]
    w = b.update(
        {"mm": 2.0, "image": 2.0, "clinical": 2.0}, {"mm": 2.5, "image": 2.5, "clinical": 2}
    )
    assert w == pytest.approx({k: 1 / 3 for k in HEADS})
    assert len(b.history) == 1  # the first call only stores the reference losses


def test_overfitting_head_loses_weight():
    # A: train loss falls, validation loss rises (overfitting); B: both fall (generalising)
    b = GradientBlender(("A", "B"), every=5)
    b.update({"A": 1.0, "B": 1.0}, {"A": 1.2, "B": 1.2}, epoch=0)
    w = b.update({"A": 0.5, "B": 0.9}, {"A": 1.4, "B": 1.1}, epoch=5)
    assert w["B"] > w["A"]
    assert w == {"A": 0.0, "B": 1.0}
    assert sum(w.values()) == pytest.approx(1.0)
    assert b.history[-1] == (5, w)


@pytest.mark.parametrize(
    ("prev", "now", "expected"),
    [
        # (train, val) per head; G = val_prev - val_now, dO = (val - train)_now - (val - train)_prev
        # a: G = 0.2, dO = (1.0 - 0.7) - (1.2 - 1.0) = 0.1 -> 0.2 / 0.01 = 20
        # b: G = 0.1, dO = (1.1 - 0.9) - (1.2 - 1.1) = 0.1 -> 0.1 / 0.01 = 10
        # c: G = 0.4, dO = (0.8 - 0.4) - (1.2 - 1.0) = 0.2 -> 0.4 / 0.04 = 10
        (
            {"a": (1.0, 1.2), "b": (1.1, 1.2), "c": (1.0, 1.2)},
            {"a": (0.7, 1.0), "b": (0.9, 1.1), "c": (0.4, 0.8)},
            {"a": 0.5, "b": 0.25, "c": 0.25},
        ),
        # b's validation loss rose (G < 0) -> 0; a: G = 0.1, dO = -0.1 (overfits less) -> 10;
        # c: G = 0.1, dO = 0.2 -> 2.5
        (
            {"a": (1.0, 1.3), "b": (1.0, 1.2), "c": (1.0, 1.2)},
            {"a": (1.0, 1.2), "b": (0.9, 1.3), "c": (0.7, 1.1)},
            {"a": 0.8, "b": 0.0, "c": 0.2},
        ),
    ],
)
def test_hand_worked_weights_are_normalised_ratios(prev, now, expected):
    b = GradientBlender(tuple(prev), every=1)
    b.update({k: v[0] for k, v in prev.items()}, {k: v[1] for k, v in prev.items()})
    w = b.update({k: v[0] for k, v in now.items()}, {k: v[1] for k, v in now.items()})
    assert w == pytest.approx(expected)
    assert sum(w.values()) == pytest.approx(1.0)


def test_no_generalising_head_keeps_previous_weights():
    b = GradientBlender(("A", "B"), every=2)
    b.update({"A": 1.0, "B": 1.0}, {"A": 1.2, "B": 1.2})
    first = b.update({"A": 0.9, "B": 0.8}, {"A": 1.1, "B": 1.15})
    assert first["A"] > 0 and first["B"] > 0
    kept = b.update({"A": 0.5, "B": 0.5}, {"A": 1.3, "B": 1.3})  # both validation losses rise
    assert kept == pytest.approx(first)
    assert [e for e, _ in b.history] == [0, 4, 6]


def test_overfitting_change_is_floored():
    b = GradientBlender(("A", "B"), every=1, eps=1e-2)
    b.update({"A": 1.0, "B": 1.0}, {"A": 1.2, "B": 1.2})
    # A: dO = 0 exactly -> floored to 0.01: 0.1 / 0.01 = 10; B: G 0.1, dO 0.2 -> 2.5
    w = b.update({"A": 0.9, "B": 0.7}, {"A": 1.1, "B": 1.1})
    assert w == pytest.approx({"A": 0.8, "B": 0.2})


def test_bad_losses_are_rejected():
    b = GradientBlender(HEADS)
    with pytest.raises(ValueError, match="lack heads"):
        b.update({"mm": 1.0}, {"mm": 1.0, "image": 1.0, "clinical": 1.0})
    with pytest.raises(ValueError, match="finite"):
        b.update({k: 1.0 for k in HEADS}, {"mm": float("nan"), "image": 1.0, "clinical": 1.0})
    with pytest.raises(ValueError):
        GradientBlender(("a", "a"))
