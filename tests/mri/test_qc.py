"""The per-patient QC montage: a valid PNG, written atomically, whatever the slices hold."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from mmsurv.mri.qc import MontageData, montage

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data(channels=("t1", "t2"), tumor: str = "blob", shape=(20, 24)) -> MontageData:
    """Synthetic slices: a bright disc (head) with a tumour blob and a smooth bias field."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    head = (yy - shape[0] / 2) ** 2 / 64 + (xx - shape[1] / 2) ** 2 / 81 < 1
    masks = {
        "blob": (yy - 9) ** 2 + (xx - 13) ** 2 < 6,
        "none": np.zeros(shape, bool),
        "all": np.ones(shape, bool),
    }
    bias = np.exp(0.02 * (xx - shape[1] / 2))
    before = {c: (500 + 50 * rng.standard_normal(shape)) * head * bias for c in channels}
    after = {c: np.where(head, rng.standard_normal(shape), 0.0) for c in channels}
    return MontageData(
        patient_id="TCGA-AB-0007",
        channels=tuple(channels),
        before=before,
        after=after,
        bias={c: bias for c in channels},
        tumor=masks[tumor],
        head=head,
        slice_index=11,
        pixel_mm=(1.0, 1.2),
        cv_before={c: 0.25 for c in channels},
        cv_after={c: 0.12 for c in channels},
    )


@pytest.mark.parametrize(
    ("channels", "tumor"),
    [(("t1", "t2"), "blob"), (("t1", "t1ce", "t2", "flair"), "blob"), (("t1",), "none")],
    ids=["two-channels", "four-channels", "no-tumour-on-slice"],
)
def test_montage_writes_a_valid_png(tmp_path: Path, channels, tumor) -> None:
    path = montage(_data(channels, tumor), tmp_path / "qc" / "patient.png")
    assert path == tmp_path / "qc" / "patient.png"
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[1] == 750  # 7.5 in at 100 dpi
    assert pixels.shape[0] == round((2.3 * len(channels) + 0.6) * 100)
    assert [p.name for p in path.parent.iterdir()] == ["patient.png"]


def test_rows_grow_with_the_channels(tmp_path: Path) -> None:
    small = matplotlib.image.imread(montage(_data(("t1",)), tmp_path / "a.png"))
    large = matplotlib.image.imread(montage(_data(("t1", "t2", "flair")), tmp_path / "b.png"))
    assert large.shape[0] > 2 * small.shape[0]


def test_mask_covering_the_whole_slice_draws_no_contour(tmp_path: Path) -> None:
    """A constant mask slice has no contour: skipped without matplotlib's warning."""
    path = montage(_data(tumor="all"), tmp_path / "p.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_montage_replaces_an_older_png(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    path.write_bytes(b"old")
    montage(_data(), path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_channels_without_slices_are_an_error(tmp_path: Path) -> None:
    data = _data(("t1", "t2"))
    del data.bias["t2"]
    with pytest.raises(ValueError, match=r"TCGA-AB-0007.*\['t2'\]"):
        montage(data, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()
    assert list(tmp_path.iterdir()) == []
