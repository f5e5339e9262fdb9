"""Encoder registry: built-in ResNets, seeded random init, local weights, plug-in factories."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmsurv.wsi.encoders import (
    ENCODERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Encoder,
    EncoderWeightsError,
    TileTransform,
    get_encoder,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "encoders.md"
SIZE = 64  # small inputs keep the tests fast


def _batch(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _features(enc: Encoder, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return enc.model(x)


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_builtin_resnets_give_pooled_features(name: str, dim: int) -> None:
    enc = get_encoder(name, input_size_px=SIZE)
    assert (enc.name, enc.dim, enc.input_size_px) == (name, dim, SIZE)
    assert not enc.model.training
    assert not any(p.requires_grad for p in enc.model.parameters())
    assert enc.model.fc is None  # classification head removed
    assert enc.model.conv1.stride == (2, 2) and enc.model.conv1.kernel_size == (7, 7)
    out = _features(enc, _batch(3))
    assert out.shape == (3, dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (enc.weights, enc.pretrained, enc.seed) == (None, False, 0)
    assert enc.identifier == f"{name}-monai-random-seed0"


def test_random_init_is_seeded_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    before = torch.random.get_rng_state()
    with caplog.at_level(logging.WARNING, logger="mmsurv.wsi.encoders"):
        a = get_encoder("resnet18", seed=0, input_size_px=SIZE)
    b = get_encoder("resnet18", seed=0, input_size_px=SIZE)
    c = get_encoder("resnet18", seed=1, input_size_px=SIZE)
    assert torch.equal(torch.random.get_rng_state(), before)  # caller's RNG untouched
    x = _batch()
    torch.testing.assert_close(_features(a, x), _features(b, x), rtol=0, atol=0)
    assert not torch.allclose(_features(a, x), _features(c, x))
    assert a.identifier == b.identifier != c.identifier == "resnet18-monai-random-seed1"
    assert "randomly initialised" in caplog.text.lower()


@pytest.mark.parametrize(
    ("prefix", "wrap"),
    [("", None), ("module.", None), ("model.", "state_dict"), ("module.", "model")],
)
def test_local_weights_are_loaded(tmp_path: Path, prefix: str, wrap: str | None) -> None:
    source = get_encoder("resnet18", seed=7, input_size_px=SIZE)
    state = {prefix + k: v for k, v in source.model.state_dict().items()}
    state[prefix + "fc.weight"] = torch.zeros(10, 512)  # a classification head is ignored
    state[prefix + "fc.bias"] = torch.zeros(10)
    path = tmp_path / "r18.pt"
    torch.save({wrap: state} if wrap else state, path)

    enc = get_encoder("resnet18", weights=path, seed=0, input_size_px=SIZE)
    x = _batch()
    torch.testing.assert_close(_features(enc, x), _features(source, x), rtol=0, atol=0)
    assert enc.pretrained and enc.weights == path and enc.seed is None
    assert re.fullmatch(r"resnet18-monai-[0-9a-f]{16}", enc.identifier)

    other = get_encoder("resnet18", seed=8, input_size_px=SIZE)
    torch.save(other.model.state_dict(), tmp_path / "r18b.pt")
    enc_b = get_encoder("resnet18", weights=tmp_path / "r18b.pt", input_size_px=SIZE)
    assert enc_b.identifier != enc.identifier  # other weights, other id


def test_weights_with_wrong_keys_are_a_clear_error(tmp_path: Path) -> None:
    state = get_encoder("resnet18", input_size_px=SIZE).model.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["layer1.0.conv1.weight"]
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(EncoderWeightsError, match="bad.pt") as info:
        get_encoder("resnet18", weights=path)
    msg = str(info.value)
    assert "missing keys: layer1.0.conv1.weight" in msg
    assert "unexpected keys: extra.weight" in msg


def test_weights_of_another_architecture_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "r18.pt"
    torch.save(get_encoder("resnet18", input_size_px=SIZE).model.state_dict(), path)
    with pytest.raises(EncoderWeightsError, match=r"r18\.pt.*(missing keys|wrong shapes)"):
        get_encoder("resnet50", weights=path)


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_unreadable_or_missing_weights_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "w.pt"
    if content is None:
        with pytest.raises(FileNotFoundError, match="w.pt"):
            get_encoder("resnet18", weights=path)
    else:
        path.write_bytes(content)
        with pytest.raises(EncoderWeightsError, match="w.pt"):
            get_encoder("resnet18", weights=path)


def test_unknown_name_lists_the_known_encoders() -> None:
    with pytest.raises(KeyError, match="resnet18, resnet50"):
        get_encoder("resnet1000")
    assert {"resnet18", "resnet50"} <= set(ENCODERS)
    assert all(":" in target for target in ENCODERS.values())


class _Mean(nn.Module):
    """(B, 3, S, S) -> (B, 3) channel means."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def mean_encoder(weights: Path | None, input_size_px: int) -> Encoder:
    """A plug-in factory without a ``seed`` keyword (referenced as ``test_encoders:...``)."""
    return Encoder("whatever", _Mean(), TileTransform(input_size_px), "mean-v1", 3, input_size_px)


def not_an_encoder(weights: Path | None, input_size_px: int) -> object:
    return object()


def test_factory_plug_in_is_named_after_the_request() -> None:
    enc = get_encoder("means", factory=f"{__name__}:mean_encoder", input_size_px=32)
    assert (enc.name, enc.identifier, enc.dim) == ("means", "mean-v1", 3)
    tile = np.full((48, 48, 3), 255, dtype=np.uint8)
    out = _features(enc, enc.transform(tile)[None])
    expected = (1.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[0], expected)


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        ("no_colon", ValueError),
        ("no_such_module_xyz:build", ImportError),
        (f"{__name__}:no_such_function", ImportError),
        (f"{__name__}:not_an_encoder", TypeError),
    ],
)
def test_bad_factories(factory: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        get_encoder("x", factory=factory)


def _docs_example() -> str:
    """The Python block after ``<!-- example: my_encoders.py -->`` in docs/encoders.md."""
    text = DOCS.read_text()
    after = text.split("<!-- example: my_encoders.py -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_documented_plug_in_example_works(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_encoders.py").write_text(_docs_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    enc = get_encoder("tiny", factory="my_encoders:build", input_size_px=SIZE, seed=3)
    assert (enc.name, enc.dim, enc.identifier) == ("tiny", 32, "tinynet-random-seed3")
    out = _features(enc, _batch())
    assert out.shape == (2, 32)
    again = get_encoder("tiny", factory="my_encoders:build", input_size_px=SIZE, seed=3)
    torch.testing.assert_close(_features(again, _batch()), out, rtol=0, atol=0)

    path = tmp_path / "tiny.pt"
    torch.save(enc.model.state_dict(), path)
    loaded = get_encoder("tiny", factory="my_encoders:build", weights=path, input_size_px=SIZE)
    assert loaded.pretrained and loaded.identifier.startswith("tinynet-")
    torch.testing.assert_close(_features(loaded, _batch()), out, rtol=0, atol=0)


@pytest.mark.parametrize(
    ("shape", "size"), [((256, 256, 3), 64), ((64, 64, 3), 64), ((100, 80, 3), 32)]
)
def test_transform_shape_and_range(shape: tuple[int, int, int], size: int) -> None:
    transform = TileTransform(size)
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 256, shape, dtype=np.uint8)
    tile[0, 0], tile[-1, -1] = 0, 255
    x = transform(tile)
    assert x.shape == (3, size, size) and x.dtype == torch.float32 and x.is_contiguous()
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None], torch.tensor(IMAGENET_STD)[:, None]
    lo, hi = (0 - mean) / std, (1 - mean) / std
    flat = x.reshape(3, -1)
    assert (flat >= lo - 1e-5).all() and (flat <= hi + 1e-5).all()
    if shape[:2] == (size, size):  # no resize: exactly (tile / 255 - mean) / std
        ref = torch.from_numpy(tile.copy()).permute(2, 0, 1).float() / 255 - mean[..., None]
        torch.testing.assert_close(x, ref / std[..., None])


@pytest.mark.parametrize(
    "bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3))]
)
def test_transform_rejects_other_inputs(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8"):
        TileTransform(16)(bad)
