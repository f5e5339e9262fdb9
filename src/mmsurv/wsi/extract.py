"""Patch features of one slide: read its tiles, encode them in batches, cache them in HDF5.

Tiles are read by :class:`torch.utils.data.DataLoader` worker processes while the encoder runs
on the previous batches; each process opens its own OpenSlide handle on first use. Inference
runs under :func:`torch.inference_mode` in channels-last layout, with bfloat16 autocast when
``amp`` is set and the device supports it (CUDA; or a CPU with native bfloat16 instructions).

Output (``results/wsi/features/{encoder}/{slide}.h5``, CLAM/TRIDENT layout), written to a
temporary file and renamed:

- dataset ``features``: (N, D) float32, one row per tile, in the order of the tiles file;
- dataset ``coords``: (N, 2) int64 level-0 ``(x, y)``, equal to the tiles file's ``coords``;
- file attributes ``encoder``, ``encoder_id``, ``weights`` (path or ``"random-init"``),
  ``pretrained``, ``seed`` (-1 when weights were loaded), ``dim``, ``input_size_px``,
  ``tile_size_px``, ``tile_size_um``, ``mpp`` (um/px of the tiles), ``level``, ``slide_id``,
  ``tiles_file``, ``tiles_sha256`` (SHA-256 of the coords' int64 little-endian bytes),
  ``n_tiles``, ``device``, ``dtype`` (compute dtype), ``mmsurv_version``, ``torch_version``,
  ``monai_version``. The same ``patch_size`` / ``patch_level`` attributes as the tiles file are
  set on ``coords`` for CLAM/TRIDENT readers.

A feature file is current (:func:`is_current`) when its ``encoder_id``, ``tiles_sha256``,
``input_size_px`` and shape match; :func:`extract_features` then returns without work.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import openslide
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mmsurv import __version__
from mmsurv.io import atomic_path

from .encoders import Encoder
from .h5 import read_tiles_h5
from .read import TileGeometry, read_tile
from .slide import MPP_REL_TOL, SlideError, open_slide, slide_mpp

__all__ = [
    "TileDataset",
    "autocast_context",
    "compute_dtype",
    "coords_sha256",
    "cpu_supports_bf16",
    "extract_features",
    "is_current",
    "resolve_device",
]

_log = logging.getLogger("mmsurv.wsi.extract")


def coords_sha256(coords: np.ndarray) -> str:
    """Hex SHA-256 of tile coordinates as (N, 2) int64 little-endian C-order bytes."""
    arr = np.ascontiguousarray(np.asarray(coords).reshape(-1, 2), dtype="<i8")
    return hashlib.sha256(arr.tobytes()).hexdigest()


def resolve_device(device: str = "auto") -> torch.device:
    """The torch device to run on.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:K"``.

    Raises
    ------
    RuntimeError
        If CUDA is requested but not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device {device!r} requested but CUDA is not available (torch "
                f"{torch.__version__}, built with CUDA {torch.version.cuda}); use device 'cpu' "
                "or 'auto'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device {device!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    return dev


def cpu_supports_bf16() -> bool:
    """Whether the CPU has native bfloat16 instructions (AVX512-BF16 or AMX-BF16; Linux only).

    Without them, bfloat16 autocast on CPU is emulated and slower than float32.
    """
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def compute_dtype(device: torch.device, amp: bool) -> torch.dtype:
    """Compute dtype of the encoder: bfloat16 under ``amp`` where the device runs it natively.

    CUDA: bfloat16 (float16 on GPUs without bfloat16); CPU: bfloat16 when
    :func:`cpu_supports_bf16`, else float32; float32 whenever ``amp`` is False.
    """
    if not amp:
        return torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32


class TileDataset(Dataset):
    """The tiles of one slide, read and transformed on demand.

    Each process opens its own OpenSlide handle on its first ``__getitem__`` (a handle is never
    pickled into, or inherited by, a DataLoader worker: the owning process id is checked).

    Parameters
    ----------
    slide_path
        The slide file.
    coords
        (N, 2) int64 level-0 ``(x, y)``.
    geometry
        Level and sizes of the regions read.
    transform
        (H, W, 3) uint8 tile -> (3, S, S) float32 tensor.
    """

    def __init__(
        self,
        slide_path: str | os.PathLike[str],
        coords: np.ndarray,
        geometry: TileGeometry,
        transform: Callable[[np.ndarray], torch.Tensor],
    ) -> None:
        self.slide_path = Path(slide_path)
        self.coords = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
        self.geometry = geometry
        self.transform = transform
        self._slide: openslide.OpenSlide | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def _handle(self) -> openslide.OpenSlide:
        """This process's slide handle, opened on first use."""
        if self._slide is None or self._pid != os.getpid():
            self._slide = open_slide(self.slide_path)
            self._pid = os.getpid()
        return self._slide

    def __getitem__(self, index: int) -> torch.Tensor:
        tile = read_tile(self._handle(), self.geometry, self.coords[index])
        return self.transform(tile)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_slide"], state["_pid"] = None, None
        return state

    def close(self) -> None:
        """Close this process's handle (if it opened one)."""
        if self._slide is not None and self._pid == os.getpid():
            self._slide.close()
        self._slide, self._pid = None, None


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def is_current(
    out_h5: str | os.PathLike[str],
    tiles_h5: str | os.PathLike[str],
    encoder: Encoder,
) -> bool:
    """Whether an existing feature file was made by ``encoder`` from these tiles.

    True when ``out_h5`` exists, is readable, and its ``encoder_id``, ``tiles_sha256`` and
    ``input_size_px`` attributes and its ``features`` shape ``(n_tiles, dim)`` match.
    """
    out_h5 = Path(out_h5)
    if not out_h5.is_file():
        return False
    coords, _ = read_tiles_h5(tiles_h5)
    try:
        with h5py.File(out_h5, "r") as f:
            attrs = dict(f.attrs)
            shape = f["features"].shape if "features" in f else None
    except OSError as exc:
        _log.warning("%s: unreadable feature file, recomputing (%s)", out_h5, exc)
        return False
    checks = {
        "encoder_id": (_text(attrs.get("encoder_id")), encoder.identifier),
        "tiles_sha256": (_text(attrs.get("tiles_sha256")), coords_sha256(coords)),
        "input_size_px": (_int_or_none(attrs.get("input_size_px")), encoder.input_size_px),
        "shape": (shape, (coords.shape[0], encoder.dim)),
    }
    stale = [name for name, (have, want) in checks.items() if have != want]
    if stale:
        _log.info("%s: not current (%s differ)", out_h5, ", ".join(stale))
    return not stale


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else (None if value is None else str(value))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _tile_mpp(
    attrs: dict[str, Any],
    slide: openslide.OpenSlide,
    geometry: TileGeometry,
    mpp_override: float | None,
    default_mpp: float | None,
) -> float:
    """Tile pixel size (um/px): the tiles file's ``mpp``, else from the slide's level-0 mpp."""
    if "mpp" in attrs:
        return float(attrs["mpp"])
    mpp0 = slide_mpp(slide, mpp_override, default_mpp)
    level_ds = slide.level_downsamples[geometry.level]
    return mpp0 * level_ds * geometry.read_size_px / geometry.tile_size_px


def _check_slide_matches(attrs: dict[str, Any], slide: openslide.OpenSlide, path: Path) -> None:
    """Raise SlideError if the tiles file records another slide size or level-0 mpp."""
    if "slide_width" in attrs and "slide_height" in attrs:
        recorded = (int(attrs["slide_width"]), int(attrs["slide_height"]))
        if tuple(slide.dimensions) != recorded:
            raise SlideError(
                f"{path}: the slide is {slide.dimensions[0]} x {slide.dimensions[1]} px but its "
                f"tiles file was made from a {recorded[0]} x {recorded[1]} px slide; re-tile it"
            )
    meta = slide.properties.get(openslide.PROPERTY_NAME_MPP_X)
    if "mpp0" in attrs and meta is not None:
        mpp0, recorded_mpp0 = float(meta), float(attrs["mpp0"])
        if abs(mpp0 - recorded_mpp0) > MPP_REL_TOL * mpp0:
            raise SlideError(
                f"{path}: the slide's metadata says {mpp0:.4g} um/px but its tiles file was made "
                f"for {recorded_mpp0:.4g} um/px; re-tile it"
            )


@contextlib.contextmanager
def autocast_context(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """``torch.autocast`` to ``dtype`` on ``device``, or nothing for float32."""
    if dtype == torch.float32:
        yield
    else:
        with torch.autocast(device_type=device.type, dtype=dtype):
            yield


def _loader(dataset: TileDataset, batch_size: int, num_workers: int, pin: bool) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin,
        prefetch_factor=2 if num_workers > 0 else None,
        persistent_workers=False,
    )


def _write_attrs(f: h5py.File, values: dict[str, Any], tile_attrs: dict[str, Any]) -> None:
    f.attrs.update(values)
    ca = f["coords"].attrs
    ca["patch_size"] = values["tile_size_px"]
    ca["patch_level"] = values["level"]
    for key in ("patch_size_level0", "level0_magnification", "target_magnification"):
        if key in tile_attrs:
            ca[key] = tile_attrs[key]
    ca["name"] = values["slide_id"]


def extract_features(
    slide_path: str | os.PathLike[str],
    tiles_h5: str | os.PathLike[str],
    out_h5: str | os.PathLike[str],
    encoder: Encoder,
    *,
    slide_id: str,
    batch_size: int = 64,
    num_workers: int = 2,
    device: str = "auto",
    amp: bool = True,
    mpp_override: float | None = None,
    default_mpp: float | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Encode the tiles of one slide and write them to a feature file (see the module doc).

    Parameters
    ----------
    slide_path
        The slide the tiles file was made from.
    tiles_h5
        Tile coordinate file (:func:`mmsurv.wsi.write_tiles_h5`); its ``level``,
        ``patch_size`` and ``downsample`` say how each tile is read.
    out_h5
        Output feature file (parent folders are created; written atomically).
    encoder
        The encoder (:func:`mmsurv.wsi.encoders.get_encoder`); its model is moved to the device
        and to channels-last layout in place.
    slide_id
        Slide id, stored as an attribute.
    batch_size
        Tiles per encoder batch.
    num_workers
        DataLoader worker processes reading tiles (0: read in this process).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:K"``.
    amp
        Autocast to bfloat16 where the device runs it natively (float16 on GPUs without
        bfloat16); float32 otherwise. Features are stored as float32 either way.
    mpp_override, default_mpp
        The slides sheet's and the configuration's level-0 um/px, used only when the tiles
        file does not record the tiles' ``mpp`` (CLAM / TRIDENT tile files).
    force
        Recompute even if ``out_h5`` is current.

    Returns
    -------
    dict
        ``n_tiles``, ``seconds``, ``tiles_per_s``, ``device``, ``dtype`` and ``skipped`` (True
        when a current file was reused).

    Raises
    ------
    SlideError
        If the slide cannot be opened or read, or does not match its tiles file.
    RuntimeError
        If CUDA is requested but unavailable, or the encoder gives non-finite features or
        features of the wrong shape.
    """
    started = time.perf_counter()
    slide_path, tiles_h5, out_h5 = Path(slide_path), Path(tiles_h5), Path(out_h5)
    if batch_size < 1 or num_workers < 0:
        raise ValueError(
            f"batch_size must be >= 1 and num_workers >= 0: {batch_size}, {num_workers}"
        )
    dev = resolve_device(device)
    dtype = compute_dtype(dev, amp)
    dtype_name = str(dtype).removeprefix("torch.")
    coords, tile_attrs = read_tiles_h5(tiles_h5)
    n = int(coords.shape[0])
    if not force and is_current(out_h5, tiles_h5, encoder):
        _log.info(
            "%s: features current (%s, %d tiles); reusing them", out_h5, encoder.identifier, n
        )
        return _stats(n, 0.0, dev, dtype_name, skipped=True)

    with open_slide(slide_path) as slide:
        _check_slide_matches(tile_attrs, slide, slide_path)
        geometry = TileGeometry.from_attrs(tile_attrs, slide.level_downsamples)
        mpp = _tile_mpp(tile_attrs, slide, geometry, mpp_override, default_mpp)
    values: dict[str, Any] = {
        "encoder": encoder.name,
        "encoder_id": encoder.identifier,
        "weights": str(encoder.weights) if encoder.weights is not None else "random-init",
        "pretrained": bool(encoder.pretrained),
        "seed": -1 if encoder.seed is None else int(encoder.seed),
        "dim": int(encoder.dim),
        "input_size_px": int(encoder.input_size_px),
        "tile_size_px": geometry.tile_size_px,
        "tile_size_um": float(tile_attrs.get("tile_size_um", geometry.tile_size_px * mpp)),
        "mpp": mpp,
        "level": geometry.level,
        "slide_id": slide_id,
        "tiles_file": str(tiles_h5),
        "tiles_sha256": coords_sha256(coords),
        "n_tiles": n,
        "device": str(dev),
        "dtype": dtype_name,
        "mmsurv_version": __version__,
        "torch_version": str(torch.__version__),
        "monai_version": _package_version("monai"),
    }
    dataset = TileDataset(slide_path, coords, geometry, encoder.transform)
    model = encoder.model.eval().to(dev, memory_format=torch.channels_last)
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("coords", data=coords)
        feats = f.create_dataset("features", shape=(n, encoder.dim), dtype=np.float32)
        try:
            if n:
                _encode(dataset, model, feats, encoder.dim, dev, dtype, batch_size, num_workers)
        finally:
            dataset.close()
        _write_attrs(f, values, tile_attrs)
    seconds = time.perf_counter() - started
    stats = _stats(n, seconds, dev, dtype_name, skipped=False)
    _log.info(
        "%s: %d tiles -> %s (%s, %d-d) on %s (%s) in %.1f s, %.1f tiles/s",
        slide_id,
        n,
        out_h5,
        encoder.identifier,
        encoder.dim,
        dev,
        dtype_name,
        seconds,
        stats["tiles_per_s"],
    )
    return stats


def _stats(
    n: int, seconds: float, device: torch.device, dtype: str, *, skipped: bool
) -> dict[str, Any]:
    """The statistics :func:`extract_features` returns."""
    rate = n / seconds if seconds > 0 and not skipped else math.nan
    return {
        "n_tiles": n,
        "seconds": seconds,
        "tiles_per_s": rate,
        "device": str(device),
        "dtype": dtype,
        "skipped": skipped,
    }


def _encode(
    dataset: TileDataset,
    model: torch.nn.Module,
    out: h5py.Dataset,
    dim: int,
    device: torch.device,
    dtype: torch.dtype,
    batch_size: int,
    num_workers: int,
) -> None:
    """Run ``model`` over ``dataset`` in batches, writing (N, dim) float32 rows into ``out``."""
    loader = _loader(dataset, batch_size, num_workers, pin=device.type == "cuda")
    start = 0
    bar = tqdm(
        loader,
        total=len(loader),
        desc=f"extract {dataset.slide_path.name}",
        unit="batch",
        mininterval=5,
        file=sys.stderr,
    )
    with torch.inference_mode(), autocast_context(device, dtype):
        for batch in bar:
            x = batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = model(x)
            if y.ndim != 2 or y.shape != (x.shape[0], dim):
                raise RuntimeError(
                    f"encoder output has shape {tuple(y.shape)}, expected ({x.shape[0]}, {dim})"
                )
            rows = y.float().cpu().numpy()
            if not np.isfinite(rows).all():
                raise RuntimeError(
                    f"{dataset.slide_path}: non-finite features in tiles {start}.."
                    f"{start + len(rows) - 1} (compute dtype {dtype}); try amp=False"
                )
            out[start : start + len(rows)] = rows
            start += len(rows)
    if start != len(dataset):
        raise RuntimeError(f"encoded {start} of {len(dataset)} tiles")
