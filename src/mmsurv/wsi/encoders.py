"""Patch encoders chosen by name: a registry of factories returning model, transform and id.

The registry (:data:`ENCODERS`, STAMP/TRIDENT style) maps a name to a ``"module:factory"``
string that is imported only when the encoder is built, so that listing encoders imports no deep
learning code. Built in: ``resnet18`` and ``resnet50``, MONAI's 2D ResNet trunks with the standard
ImageNet stem (7 x 7 convolution of stride 2, then max pooling) and no classification head, giving
the globally pooled 512- and 2048-d features.

Weights come only from a local file (nothing is downloaded). Without one, the network starts from
a seeded random initialisation, which is logged as a warning and recorded in the encoder's
:attr:`Encoder.identifier` and in every feature file.

A pathology foundation model is plugged in without editing this module: ``get_encoder(name,
factory="my_package.module:build")``, where ``build(weights, input_size_px)`` returns an
:class:`Encoder` (see ``docs/encoders.md``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

__all__ = [
    "ENCODERS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Encoder",
    "EncoderWeightsError",
    "TileTransform",
    "file_sha256",
    "get_encoder",
    "load_state_dict_file",
    "resnet18",
    "resnet50",
]

_log = logging.getLogger("mmsurv.wsi.encoders")

#: Registry: encoder name -> ``"module:factory"``; add a line (or an item at run time) to
#: register another encoder. A factory is called as ``factory(weights, input_size_px)`` (plus
#: ``seed=`` when it accepts that keyword) and returns an :class:`Encoder`.
ENCODERS: dict[str, str] = {
    "resnet18": "mmsurv.wsi.encoders:resnet18",
    "resnet50": "mmsurv.wsi.encoders:resnet50",
}

#: ImageNet channel means and standard deviations (RGB, on 0..1 intensities).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

#: Prefixes that training frameworks put in front of state-dict keys (DataParallel, Lightning).
_KEY_PREFIXES = ("module.", "model.")
#: Keys of a checkpoint dictionary that may hold the state dict itself.
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")


class EncoderWeightsError(ValueError):
    """A weights file cannot be loaded into an encoder (unreadable, or keys do not match)."""


@dataclass(frozen=True)
class TileTransform:
    """Tile -> encoder input: resize, scale to 0..1, normalise per channel.

    A picklable callable, so DataLoader worker processes can run it.

    Attributes
    ----------
    input_size_px
        Edge in pixels of the encoder's input (tiles of another size are resized with PIL's
        bilinear filter, antialiased when shrinking).
    mean, std
        Per-channel (RGB) mean and standard deviation on 0..1 intensities.
    """

    input_size_px: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, tile: np.ndarray) -> torch.Tensor:
        """Transform one tile.

        Parameters
        ----------
        tile
            (H, W, 3) uint8 RGB.

        Returns
        -------
        torch.Tensor
            (3, S, S) float32, ``S = input_size_px``, ``(tile / 255 - mean) / std``.
        """
        if tile.ndim != 3 or tile.shape[2] != 3 or tile.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 tile, got {tile.shape} {tile.dtype}")
        size = self.input_size_px
        if tile.shape[:2] != (size, size):
            img = Image.fromarray(tile).resize((size, size), Image.Resampling.BILINEAR)
            tile = np.asarray(img)
        # (v / 255 - mean) / std for each of the 256 values of each channel, then a lookup per
        # pixel: faster than float arithmetic on the whole tile
        mean = np.asarray(self.mean, dtype=np.float64)[:, None]
        std = np.asarray(self.std, dtype=np.float64)[:, None]
        lut = ((np.arange(256) / 255.0 - mean) / std).astype(np.float32)  # (3, 256)
        planes = np.ascontiguousarray(tile.transpose(2, 0, 1))  # (3, S, S) uint8
        out = np.empty(planes.shape, dtype=np.float32)
        for c in range(3):
            np.take(lut[c], planes[c], out=out[c])
        return torch.from_numpy(out)


@dataclass(frozen=True, eq=False)
class Encoder:
    """A patch encoder: network, input transform and an identifier of its weights.

    Attributes
    ----------
    name
        Name the encoder was requested by (the registry name or the configuration's key).
    model
        Network in eval mode mapping a (B, 3, S, S) float32 batch to (B, dim) features.
    transform
        (H, W, 3) uint8 tile -> (3, S, S) float32 tensor, ``S = input_size_px``.
    identifier
        Changes whenever the weights or the architecture change, e.g.
        ``resnet50-monai-<sha256 prefix of the weights file>`` or
        ``resnet50-monai-random-seed0``; feature caches are keyed on it.
    dim
        Feature size D.
    input_size_px
        Edge of the network's input in pixels.
    weights
        Local weights file, or ``None`` for a random initialisation.
    pretrained
        Whether weights were loaded.
    seed
        Seed of the random initialisation, or ``None`` when weights were loaded.
    """

    name: str
    model: torch.nn.Module
    transform: Callable[[np.ndarray], torch.Tensor]
    identifier: str
    dim: int
    input_size_px: int = 224
    weights: Path | None = None
    pretrained: bool = False
    seed: int | None = None


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks of ``chunk_bytes``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def _strip_prefixes(key: str) -> str:
    """``key`` without leading ``module.`` / ``model.`` prefixes."""
    stripped = True
    while stripped:
        stripped = False
        for prefix in _KEY_PREFIXES:
            if key.startswith(prefix):
                key, stripped = key[len(prefix) :], True
    return key


def _unwrap_checkpoint(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    """The state dict in a loaded weights file (a bare state dict or a checkpoint dict)."""
    if isinstance(obj, Mapping):
        for key in _CHECKPOINT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner:
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise EncoderWeightsError(
            f"{path}: not a torch state dict (a mapping of parameter names to tensors, as "
            "written by torch.save(model.state_dict(), path))"
        )
    return obj


def _key_list(keys: set[str], limit: int = 8) -> str:
    """At most ``limit`` sorted keys, comma-separated, with the number left out."""
    shown = sorted(keys)[:limit]
    more = f" (and {len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(shown) + more


def load_state_dict_file(
    model: torch.nn.Module,
    path: str | os.PathLike[str],
    ignore_prefixes: tuple[str, ...] = ("fc.",),
) -> None:
    """Load a local state-dict file into ``model``, strictly.

    Parameters
    ----------
    model
        The network (modified in place).
    path
        A file written by ``torch.save(state_dict, path)``, or a checkpoint dict holding the
        state dict under ``state_dict`` / ``model_state_dict`` / ``model``. Keys may carry
        ``module.`` or ``model.`` prefixes; keys starting with ``ignore_prefixes`` (the
        classification head) are dropped.
    ignore_prefixes
        Key prefixes (after prefix stripping) that are ignored.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    EncoderWeightsError
        If the file is not a torch state dict, or its keys or shapes do not match the model's
        (missing and unexpected keys are listed, with the file's name).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: encoder weights file does not exist (or is not a file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for non-torch or unsafe files
        raise EncoderWeightsError(f"{path}: cannot read encoder weights: {exc}") from exc
    raw = _unwrap_checkpoint(obj, path)
    state = {
        _strip_prefixes(k): v
        for k, v in raw.items()
        if not _strip_prefixes(k).startswith(ignore_prefixes)
    }
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    wrong_shape = {
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    }
    problems = []
    if missing:
        problems.append(f"missing keys: {_key_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_key_list(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_key_list(wrong_shape)}")
    if problems:
        raise EncoderWeightsError(
            f"{path}: the weights do not match the {type(model).__name__} trunk "
            f"({len(expected)} tensors); " + "; ".join(problems)
        )
    model.load_state_dict(state, strict=True)


def _resnet(
    name: str,
    constructor: str,
    dim: int,
    weights: Path | None,
    input_size_px: int,
    seed: int,
) -> Encoder:
    """A MONAI 2D ResNet trunk with the ImageNet stem and no head (see :func:`resnet50`)."""
    from monai.networks import nets  # lazy: importing MONAI takes seconds

    model = getattr(nets, constructor)(
        spatial_dims=2,
        n_input_channels=3,
        conv1_t_size=7,
        conv1_t_stride=2,
        feed_forward=False,  # no fc head: forward() returns the pooled features
        bias_downsample=False,  # as torchvision, so its ImageNet state dicts load as they are
    )
    if weights is not None:
        load_state_dict_file(model, weights)
        identifier = f"{name}-monai-{file_sha256(weights)[:16]}"
    else:
        identifier = f"{name}-monai-random-seed{seed}"
    return Encoder(
        name=name,
        model=model.eval(),
        transform=TileTransform(input_size_px),
        identifier=identifier,
        dim=dim,
        input_size_px=input_size_px,
        weights=weights,
        pretrained=weights is not None,
        seed=None if weights is not None else seed,
    )


def resnet18(weights: Path | None, input_size_px: int = 224, *, seed: int = 0) -> Encoder:
    """ResNet-18 trunk (MONAI), 512-d pooled features; see :func:`resnet50`."""
    return _resnet("resnet18", "resnet18", 512, weights, input_size_px, seed)


def resnet50(weights: Path | None, input_size_px: int = 224, *, seed: int = 0) -> Encoder:
    """ResNet-50 trunk (MONAI), 2048-d pooled features.

    Parameters
    ----------
    weights
        Local state-dict file (torchvision/MONAI key names, e.g. ImageNet weights converted
        once by the user), or ``None`` for the random initialisation already seeded by
        :func:`get_encoder`.
    input_size_px
        Input edge in pixels (tiles are resized to it).
    seed
        Seed recorded in the identifier of a randomly initialised network.
    """
    return _resnet("resnet50", "resnet50", 2048, weights, input_size_px, seed)


def _import_factory(target: str) -> Callable[..., Encoder]:
    """The callable named by ``"package.module:function"``."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"encoder factory must look like 'package.module:function', got {target!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import encoder factory module {module_name!r}: {exc}") from exc
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise ImportError(f"encoder factory {target!r}: {module_name} has no {attr!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise TypeError(f"encoder factory {target!r} is not callable")
    return factory  # type: ignore[return-value]


def _accepts_seed(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` takes a ``seed`` keyword argument."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def get_encoder(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    seed: int = 0,
    input_size_px: int = 224,
    factory: str | None = None,
) -> Encoder:
    """Build a patch encoder by registry name or from a plug-in factory.

    Parameters
    ----------
    name
        Registry name (a key of :data:`ENCODERS`), or, with ``factory``, any label (it becomes
        :attr:`Encoder.name`, e.g. the feature folder ``results/wsi/features/{name}``).
    weights
        Local weights file (or folder, for a plug-in that reads one), or ``None``: a seeded
        random initialisation, logged as a warning.
    seed
        Seed of the random initialisation (``torch.manual_seed(seed)`` before the network is
        built, inside :func:`torch.random.fork_rng`, so the caller's RNG state is untouched).
    input_size_px
        Edge in pixels of the encoder's input.
    factory
        ``"package.module:function"`` of a plug-in; called as
        ``function(weights: Path | None, input_size_px: int)`` (plus ``seed=seed`` if it
        accepts it) and returning an :class:`Encoder`.

    Returns
    -------
    Encoder
        With the model in eval mode and its parameters frozen (``requires_grad=False``).

    Raises
    ------
    KeyError
        If ``name`` is not registered and no ``factory`` is given (the message lists the known
        encoders).
    FileNotFoundError, EncoderWeightsError
        If the weights file is missing or does not match the network.
    ImportError, TypeError
        If the factory cannot be imported, or does not return an :class:`Encoder`.
    """
    if input_size_px < 1:
        raise ValueError(f"input_size_px must be a positive number of pixels: {input_size_px}")
    if factory is None:
        if name not in ENCODERS:
            raise KeyError(
                f"unknown encoder {name!r}; known encoders: {', '.join(sorted(ENCODERS))}. "
                "A plug-in needs factory='package.module:function' (docs/encoders.md)."
            )
        factory = ENCODERS[name]
    build = _import_factory(factory)
    path = Path(weights) if weights is not None else None
    if path is not None and not path.exists():  # a plug-in may take a folder of weights
        raise FileNotFoundError(f"{path}: encoder weights of {name!r} do not exist")
    kwargs = {"seed": seed} if _accepts_seed(build) else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build(path, input_size_px, **kwargs)
    if not isinstance(encoder, Encoder):
        raise TypeError(
            f"encoder factory {factory!r} returned {type(encoder).__name__}, not Encoder"
        )
    if encoder.name != name:
        encoder = replace(encoder, name=name)
    encoder.model.eval().requires_grad_(False)
    if encoder.pretrained:
        _log.info("encoder %s (%s): weights from %s", name, encoder.identifier, encoder.weights)
    else:
        _log.warning(
            "encoder %s (%s): no weights file given, so the network is RANDOMLY INITIALISED "
            "(seed %d); its features are from a randomly initialised network, not a pretrained "
            "one. Set the encoder's local weights file to use pretrained features.",
            name,
            encoder.identifier,
            seed,
        )
    return encoder
