"""Feature extraction (mmsurv.wsi.extract) and reading feature bags (mmsurv.wsi.features)."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import mmsurv
from mmsurv.wsi import (
    SlideError,
    open_slide,
    read_tile,
    read_tiles_h5,
    tile_slide,
    write_tiles_h5,
)
from mmsurv.wsi.encoders import Encoder, TileTransform, get_encoder
from mmsurv.wsi.extract import (
    TileDataset,
    coords_sha256,
    extract_features,
    is_current,
    resolve_device,
)
from mmsurv.wsi.features import BagError, load_bag
from mmsurv.wsi.read import TileGeometry

SIZE = 64  # encoder input edge: small, so the tests are fast


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return get_encoder("resnet18", input_size_px=SIZE)


@pytest.fixture(scope="module")
def tiles(demo_slides, tmp_path_factory) -> tuple[Path, Path]:
    """(slide, tiles file): 20 tiles of 128 px at 0.5 um/px on a 0.25 um/px slide (shrunk x2)."""
    slide = demo_slides["mpp025"]
    result = tile_slide(slide, target_mpp=0.5, tile_size_px=128, max_tiles=20, seed=1)
    assert result.n_tiles == 20 and result.read_size_px == 256
    path = write_tiles_h5(result, tmp_path_factory.mktemp("tiles") / "S1.h5", "S1")
    return slide, path


class _Counting(nn.Module):
    """Channel means and standard deviations, (B, 3, S, S) -> (B, 6); counts forward calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def _counting_encoder(identifier: str = "count-v1") -> Encoder:
    return Encoder("count", _Counting(), TileTransform(SIZE), identifier, 6, SIZE)


def _extract(slide: Path, tiles: Path, out: Path, enc: Encoder, **kwargs) -> dict:
    kwargs.setdefault("num_workers", 0)
    kwargs.setdefault("batch_size", 8)
    return extract_features(slide, tiles, out, enc, slide_id="S1", **kwargs)


def test_features_file_layout_and_attributes(tmp_path: Path, tiles, encoder: Encoder) -> None:
    slide, tiles_h5 = tiles
    out = tmp_path / "features" / "resnet18" / "S1.h5"
    stats = _extract(slide, tiles_h5, out, encoder)
    assert [p.name for p in out.parent.iterdir()] == ["S1.h5"]  # no temporary left behind
    assert stats["n_tiles"] == 20 and not stats["skipped"] and stats["device"] == "cpu"
    assert stats["dtype"] in {"float32", "bfloat16"} and stats["tiles_per_s"] > 0

    with h5py.File(tiles_h5, "r") as f:
        tile_coords = f["coords"][()]
    with h5py.File(out, "r") as f:
        assert f["features"].shape == (20, 512) and f["features"].dtype == np.float32
        assert f["coords"].dtype == np.int64
        np.testing.assert_array_equal(f["coords"][()], tile_coords)
        assert np.isfinite(f["features"][()]).all()
        assert f["coords"].attrs["patch_size"] == 128
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    expected = {
        "encoder": "resnet18",
        "encoder_id": "resnet18-monai-random-seed0",
        "weights": "random-init",
        "pretrained": False,
        "seed": 0,
        "dim": 512,
        "input_size_px": SIZE,
        "tile_size_px": 128,
        "tile_size_um": 64.0,
        "mpp": 0.5,
        "level": 0,
        "slide_id": "S1",
        "tiles_file": str(tiles_h5),
        "tiles_sha256": coords_sha256(tile_coords),
        "n_tiles": 20,
        "device": "cpu",
        "dtype": stats["dtype"],
        "mmsurv_version": mmsurv.__version__,
        "torch_version": str(torch.__version__),
    }
    assert {k: attrs[k] for k in expected} == expected
    assert attrs["monai_version"] not in ("", "unknown")


def test_features_are_the_encoder_applied_to_each_tile(tmp_path: Path, tiles) -> None:
    slide, tiles_h5 = tiles
    enc = _counting_encoder()
    _extract(slide, tiles_h5, tmp_path / "f.h5", enc, amp=False, batch_size=7)
    features, coords, _ = load_bag(tmp_path / "f.h5")
    geometry = TileGeometry(level=0, read_size_px=256, tile_size_px=128)
    with open_slide(slide) as handle:
        batch = torch.stack([enc.transform(read_tile(handle, geometry, xy)) for xy in coords])
    np.testing.assert_allclose(features, enc.model(batch).numpy(), rtol=1e-5, atol=1e-5)
    assert enc.model.calls == 3 + 1  # ceil(20 / 7) batches, plus the reference call


def test_same_features_with_worker_processes(tmp_path: Path, tiles, encoder: Encoder) -> None:
    slide, tiles_h5 = tiles
    _extract(slide, tiles_h5, tmp_path / "w0.h5", encoder, num_workers=0)
    _extract(slide, tiles_h5, tmp_path / "w2.h5", encoder, num_workers=2)
    a, b = load_bag(tmp_path / "w0.h5")[0], load_bag(tmp_path / "w2.h5")[0]
    np.testing.assert_array_equal(a, b)


def test_bf16_autocast_matches_fp32(tmp_path: Path, tiles, encoder: Encoder) -> None:
    slide, tiles_h5 = tiles
    fp32 = _extract(slide, tiles_h5, tmp_path / "fp32.h5", encoder, amp=False)
    amp = _extract(slide, tiles_h5, tmp_path / "amp.h5", encoder, amp=True)
    assert fp32["dtype"] == "float32"
    a, b = load_bag(tmp_path / "fp32.h5")[0], load_bag(tmp_path / "amp.h5")[0]
    assert np.isfinite(b).all()
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.999, (amp["dtype"], cos.min())


def test_zero_tile_slide_writes_an_empty_bag(tmp_path: Path, demo_slides, encoder) -> None:
    slide = demo_slides["mpp050"]
    result = tile_slide(slide, max_tiles=3)
    empty = dataclasses.replace(
        result, coords=np.zeros((0, 2), np.int64), tissue_fraction=np.zeros(0, np.float32)
    )
    tiles_h5 = write_tiles_h5(empty, tmp_path / "empty_tiles.h5", "S1")
    stats = _extract(slide, tiles_h5, tmp_path / "empty.h5", encoder)
    features, coords, attrs = load_bag(tmp_path / "empty.h5")
    assert stats["n_tiles"] == 0 and attrs["n_tiles"] == 0
    assert features.shape == (0, 512) and features.dtype == np.float32
    assert coords.shape == (0, 2)
    assert is_current(tmp_path / "empty.h5", tiles_h5, encoder)


def test_current_file_is_reused_and_stale_ones_recomputed(
    tmp_path: Path, tiles, demo_slides
) -> None:
    slide, tiles_h5 = tiles
    out = tmp_path / "f.h5"
    enc = _counting_encoder()
    assert not is_current(out, tiles_h5, enc)
    _extract(slide, tiles_h5, out, enc)
    calls, mtime = enc.model.calls, out.stat().st_mtime_ns
    assert calls == 3 and is_current(out, tiles_h5, enc)

    stats = _extract(slide, tiles_h5, out, enc)  # current: nothing recomputed
    assert stats["skipped"] and enc.model.calls == calls and out.stat().st_mtime_ns == mtime

    _extract(slide, tiles_h5, out, enc, force=True)
    assert enc.model.calls == 2 * calls

    other = _counting_encoder("count-v2")  # another encoder id
    assert not is_current(out, tiles_h5, other)
    assert not _extract(slide, tiles_h5, out, other)["skipped"] and other.model.calls == 3

    result = tile_slide(slide, target_mpp=0.5, tile_size_px=128, max_tiles=12, seed=2)
    new_tiles = write_tiles_h5(result, tmp_path / "S1_new.h5", "S1")  # another tiles file
    assert not is_current(out, new_tiles, other)
    assert _extract(slide, new_tiles, out, other)["n_tiles"] == 12
    assert other.model.calls == 3 + 2

    out.write_bytes(b"truncated")  # an unreadable file is recomputed, not trusted
    assert not is_current(out, new_tiles, other)


@pytest.mark.parametrize(("key", "match"), [("mpp100", "1 um/px"), ("disc", "4096 x 3072 px")])
def test_tiles_of_another_slide_are_rejected(
    tmp_path: Path, tiles, demo_slides, disc_slide, key: str, match: str
) -> None:
    _, tiles_h5 = tiles
    slide = disc_slide.path if key == "disc" else demo_slides[key]
    with pytest.raises(SlideError, match=f"{match}.*tiles file was made"):
        _extract(slide, tiles_h5, tmp_path / "f.h5", _counting_encoder())


def test_missing_slide_is_a_slide_error(tmp_path: Path, tiles) -> None:
    _, tiles_h5 = tiles
    with pytest.raises(SlideError, match="does not exist"):
        _extract(tmp_path / "gone.tiff", tiles_h5, tmp_path / "f.h5", _counting_encoder())
    assert not (tmp_path / "f.h5").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_extraction_matches_cpu(tmp_path: Path, tiles, encoder: Encoder) -> None:
    slide, tiles_h5 = tiles
    _extract(slide, tiles_h5, tmp_path / "cpu.h5", encoder, device="cpu", amp=False)
    stats = _extract(slide, tiles_h5, tmp_path / "gpu.h5", encoder, device="cuda")
    assert stats["device"].startswith("cuda")
    a, b = load_bag(tmp_path / "cpu.h5")[0], load_bag(tmp_path / "gpu.h5")[0]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99
    encoder.model.to("cpu")


def test_tile_geometry_from_the_tiles_file(tiles) -> None:
    slide, tiles_h5 = tiles
    _, attrs = read_tiles_h5(tiles_h5)
    result = tile_slide(slide, target_mpp=0.5, tile_size_px=128, max_tiles=20, seed=1)
    assert TileGeometry.from_attrs(attrs) == TileGeometry.from_result(result)
    assert TileGeometry.from_attrs(attrs) == TileGeometry(
        level=0, read_size_px=256, tile_size_px=128
    )


@pytest.mark.parametrize(
    ("attrs", "downsamples", "expected"),
    [
        ({"patch_size": 256, "patch_size_level0": 1024}, (1.0, 4.0), (0, 1024, 256)),  # TRIDENT
        (
            {"patch_size": 256, "patch_level": 1, "patch_size_level0": 1024},
            (1.0, 4.0),
            (1, 256, 256),
        ),
        ({"patch_size": 256, "patch_level": 1}, None, (1, 256, 256)),  # CLAM
        ({"patch_size": 224, "level": 0, "downsample": 1.25}, None, (0, 280, 224)),  # mmsurv
    ],
)
def test_tile_geometry_of_other_tools_files(attrs: dict, downsamples, expected) -> None:
    assert TileGeometry.from_attrs(attrs, downsamples) == TileGeometry(*expected)


def test_dataset_never_pickles_its_slide_handle(tiles) -> None:
    slide, _ = tiles
    ds = TileDataset(slide, np.array([[0, 0]]), TileGeometry(0, 256, 128), TileTransform(SIZE))
    assert ds[0].shape == (3, SIZE, SIZE) and ds._slide is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._slide is None and clone[0].shape == (3, SIZE, SIZE)
    ds.close()
    clone.close()


# --- load_bag: mmsurv, CLAM and TRIDENT feature files ---------------------------------------


def _bag(n: int = 5, d: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, 9999, (n, 2))


def test_load_bag_reads_our_files(tmp_path: Path, tiles) -> None:
    slide, tiles_h5 = tiles
    _extract(slide, tiles_h5, tmp_path / "f.h5", _counting_encoder())
    features, coords, attrs = load_bag(tmp_path / "f.h5")
    assert features.shape == (20, 6) and coords.shape == (20, 2)
    assert attrs["encoder_id"] == "count-v1" and attrs["patch_size"] == 128


@pytest.mark.parametrize("batch_axis", [False, True])
def test_load_bag_reads_clam_files(tmp_path: Path, batch_axis: bool) -> None:
    feats, coords = _bag()
    path = tmp_path / "clam.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=feats[None] if batch_axis else feats)
        ds = f.create_dataset("coords", data=(coords[None] if batch_axis else coords).astype("i4"))
        ds.attrs.update({"patch_size": 256, "patch_level": 0, "name": b"slide-1"})
    got, got_coords, attrs = load_bag(path)
    np.testing.assert_array_equal(got, feats)
    np.testing.assert_array_equal(got_coords, coords)
    assert got.dtype == np.float32 and got_coords.dtype == np.int64
    assert attrs == {"patch_size": 256, "patch_level": 0, "name": "slide-1"}


def test_load_bag_reads_trident_files(tmp_path: Path) -> None:
    feats, coords = _bag(7, 16)
    path = tmp_path / "trident.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=feats.astype(np.float16))
        ds = f.create_dataset("coords", data=coords)
        ds.attrs.update(
            {
                "patch_size": 256,
                "patch_size_level0": 512,
                "level0_magnification": 40,
                "target_magnification": 20,
                "overlap": 0,
                "name": "slide-2",
            }
        )
        f["features"].attrs["encoder"] = "conch_v15"
    got, got_coords, attrs = load_bag(path)
    assert got.shape == (7, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, feats, atol=1e-2)
    np.testing.assert_array_equal(got_coords, coords)
    assert attrs["patch_size_level0"] == 512 and attrs["level0_magnification"] == 40
    assert attrs["encoder"] == "conch_v15"


@pytest.mark.parametrize("shape", [(5, 8), (1, 5, 8)])
def test_load_bag_reads_clam_pt_files(tmp_path: Path, shape: tuple[int, ...]) -> None:
    feats = torch.randn(*shape)
    torch.save(feats, tmp_path / "clam.pt")
    got, coords, attrs = load_bag(tmp_path / "clam.pt")
    assert got.shape == (5, 8) and got.dtype == np.float32 and coords is None and attrs == {}
    np.testing.assert_array_equal(got, feats.reshape(5, 8).numpy())


@pytest.mark.parametrize(
    ("datasets", "match"),
    [
        ({"coords": np.zeros((3, 2))}, "no 'features' dataset"),
        ({"features": np.zeros((2, 3, 4))}, r"must be \(N, D\)"),
        ({"features": np.zeros(5)}, r"must be \(N, D\)"),
        ({"features": np.zeros((4, 8)), "coords": np.zeros((3, 2))}, "3 coords but 4 feature"),
        ({"features": np.zeros((4, 8)), "coords": np.zeros((4, 3))}, r"must be \(N, 2\)"),
    ],
)
def test_load_bag_errors_name_the_file(tmp_path: Path, datasets: dict, match: str) -> None:
    path = tmp_path / "broken.h5"
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)
    with pytest.raises(BagError, match=match) as info:
        load_bag(path)
    assert "broken.h5" in str(info.value)


def test_load_bag_other_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        load_bag(tmp_path / "missing.h5")
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(BagError, match="unknown feature file type"):
        load_bag(tmp_path / "x.npy")
    torch.save({"feats": torch.zeros(2, 2)}, tmp_path / "d.pt")
    with pytest.raises(BagError, match="d.pt"):
        load_bag(tmp_path / "d.pt")
