"""Pyramid level and resize choice for a target resolution."""

from __future__ import annotations

import pytest

from mmsurv.wsi import LevelChoice, choose_level


@pytest.mark.parametrize(
    ("mpp0", "downsamples", "target", "level", "factor"),
    [
        (0.25, (1, 4, 16), 0.5, 0, 2.0),  # 40x slide without a 20x level: read 40x, shrink
        (0.5, (1, 4, 16), 0.5, 0, 1.0),  # exact match at level 0
        (0.25, (1, 2, 8), 0.5, 1, 1.0),  # exact match at level 1
        (0.1, (1, 4), 0.5, 1, 1.25),  # level 1 is 0.4 um/px, shrink by 1.25
        (0.25, (1, 4, 16), 1.0, 1, 1.0),
        (0.25, (1, 4, 16), 2.0, 1, 2.0),
        (0.25, (1, 4, 16), 4.0, 2, 1.0),
        (0.25, (1, 4, 16), 100.0, 2, 25.0),  # coarser than every level: coarsest, shrunk
        (0.2527, (1, 4, 16), 0.5, 0, 0.5 / 0.2527),  # Aperio 40x
        (0.5, (1, 4.0004, 16.003), 2.0, 1, 1.0),  # inexact downsample within the tolerance
        (0.502, (1, 4), 0.5, 0, 1.0),  # 0.4 % coarser than the target: counts as a match
        (0.25, (16, 4, 1), 1.0, 1, 1.0),  # order of the levels does not matter
    ],
)
def test_choose_level_table(mpp0, downsamples, target, level, factor) -> None:
    choice = choose_level(downsamples, mpp0, target)
    assert isinstance(choice, LevelChoice)
    assert choice.level == level
    assert choice.read_downsample == pytest.approx(factor)
    assert choice.read_downsample >= 1.0


@pytest.mark.parametrize(
    ("mpp0", "downsamples", "target"),
    [(1.0, (1, 4), 0.5), (0.5, (1, 4), 0.25), (0.52, (1,), 0.5)],
)
def test_choose_level_refuses_to_upsample(mpp0, downsamples, target) -> None:
    with pytest.raises(ValueError, match="upsampled"):
        choose_level(downsamples, mpp0, target)


@pytest.mark.parametrize(("mpp0", "target"), [(0.0, 0.5), (0.5, -1.0)])
def test_choose_level_rejects_non_positive_sizes(mpp0, target) -> None:
    with pytest.raises(ValueError, match="positive"):
        choose_level((1, 4), mpp0, target)
