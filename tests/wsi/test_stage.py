"""The WSI stage as the workflow runs it: one slide's job, fail or skip, the QC table."""

from __future__ import annotations

from pathlib import Path

import h5py
import pandas as pd
import pytest

from mmsurv.wsi import SlideError, read_tiles_h5
from mmsurv.wsi.stage import (
    QC_COLUMNS,
    is_skipped,
    qc_table,
    slide_seed,
    tile_one_slide,
    write_skipped_features,
)

WSI = {
    "target_mpp": 0.5,
    "tile_size_px": 256,
    "min_tissue_fraction": 0.5,
    "max_tiles": 2000,
    "default_mpp": None,
    "on_error": "fail",
    "verify_reads": 4,
    "tissue": {"mask_mpp": 8.0, "min_area_um2": 10000.0},
}


def _corrupt(tmp_path: Path, good: Path, kind: str) -> Path:
    """A garbage file, or a real slide cut in half."""
    path = tmp_path / f"{kind}.tiff"
    data = good.read_bytes()
    path.write_bytes(bytes(range(256)) * 40 if kind == "garbage" else data[: len(data) // 2])
    return path


def test_slide_seed_is_stable_and_differs_between_slides() -> None:
    assert slide_seed(0, "A") == slide_seed(0, "A")
    assert slide_seed(0, "A") != slide_seed(0, "B")
    assert slide_seed(0, "A") != slide_seed(1, "A")


def test_good_slide_writes_tiles_and_thumbnail(tmp_path: Path, demo_slides) -> None:
    h5, png = tmp_path / "t" / "s.h5", tmp_path / "th" / "s.png"
    assert tile_one_slide(WSI, 0, "s", demo_slides["mpp025"], None, h5, png)
    coords, attrs = read_tiles_h5(h5)
    assert len(coords) > 0 and attrs["slide_id"] == "s" and not is_skipped(attrs)
    assert attrs["mpp"] == 0.5 and attrs["mpp0"] == pytest.approx(0.25)
    assert png.stat().st_size > 1000


def test_sheet_mpp_is_used_for_a_slide_without_metadata(tmp_path: Path, demo_slides) -> None:
    h5, png = tmp_path / "s.h5", tmp_path / "s.png"
    with pytest.raises(SlideError, match="nompp.tiff.*mpp"):
        tile_one_slide(WSI, 0, "s", demo_slides["nompp"], float("nan"), h5, png)
    assert not h5.exists()
    tile_one_slide(WSI, 0, "s", demo_slides["nompp"], 0.25, h5, png)
    assert read_tiles_h5(h5)[1]["mpp0"] == pytest.approx(0.25)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_slide_fails_its_job_naming_it(tmp_path: Path, demo_slides, kind) -> None:
    bad = _corrupt(tmp_path, demo_slides["mpp050"], kind)
    h5, png = tmp_path / "bad.h5", tmp_path / "bad.png"
    with pytest.raises(SlideError, match=f"{kind}.tiff"):
        tile_one_slide(WSI, 0, "bad", bad, None, h5, png)
    assert not h5.exists() and not png.exists()  # nothing half-written


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_slide_is_skipped_and_listed(tmp_path: Path, demo_slides, kind) -> None:
    bad = _corrupt(tmp_path, demo_slides["mpp050"], kind)
    cfg = {**WSI, "on_error": "skip"}
    out = tmp_path / "tiles"
    assert not tile_one_slide(cfg, 0, "bad", bad, None, out / "bad.h5", tmp_path / "bad.png")
    assert tile_one_slide(
        cfg, 0, "good", demo_slides["mpp050"], None, out / "good.h5", tmp_path / "good.png"
    )
    coords, attrs = read_tiles_h5(out / "bad.h5")
    assert coords.shape == (0, 2) and is_skipped(attrs) and f"{kind}.tiff" in attrs["error"]
    assert (tmp_path / "bad.png").stat().st_size > 0
    sheet = pd.DataFrame({"slide_id": ["good", "bad"], "patient_id": ["P1", "P2"]})
    qc = qc_table([out / "good.h5", out / "bad.h5"], sheet).set_index("slide_id")
    assert list(qc.reset_index().columns) == QC_COLUMNS
    assert qc.loc["good", "status"] == "ok" and qc.loc["good", "n_tiles"] > 0
    assert qc.loc["bad", "status"] == "skipped" and qc.loc["bad", "patient_id"] == "P2"
    assert f"{kind}.tiff" in qc.loc["bad", "reason"]


def test_slide_without_tissue_tiles_is_listed(tmp_path: Path, demo_slides) -> None:
    cfg = {**WSI, "min_tissue_fraction": 1.0, "tissue": {"min_area_um2": 1e12}}
    tile_one_slide(cfg, 0, "s", demo_slides["mpp050"], None, tmp_path / "s.h5", tmp_path / "s.png")
    qc = qc_table([tmp_path / "s.h5"], pd.DataFrame({"slide_id": ["s"], "patient_id": ["P"]}))
    assert qc.loc[0, "status"] == "no_tissue" and qc.loc[0, "n_tiles"] == 0


def test_skipped_feature_file(tmp_path: Path) -> None:
    write_skipped_features(tmp_path / "f.h5", "s", "why")
    with h5py.File(tmp_path / "f.h5") as f:
        assert f["features"].shape[0] == 0 and f.attrs["skipped"] == 1
        assert f.attrs["error"] == "why"
