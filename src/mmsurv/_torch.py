"""Torch helpers shared by every network of the workflow: device choice, autocast, threads.

Kept free of the survival stack so that light jobs (the weak-label segmenter) import it cheaply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["device_for", "autocast_for", "torch_threads", "load_weights"]


def device_for(requested: str = "auto") -> torch.device:
    """The torch device of the config's ``device`` (auto: CUDA when visible, else CPU).

    Raises
    ------
    ValueError
        For a setting other than ``auto``, ``cpu`` or ``cuda``.
    RuntimeError
        For ``cuda`` without a visible CUDA GPU.
    """
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was configured but no CUDA GPU is visible")
    if requested == "cpu":
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast_for(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA; plain fp32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, restoring the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_weights(module: torch.nn.Module, path: str | None, what: str, seed: int) -> str:
    """Load a local state-dict file into ``module`` strictly; say how it was initialised.

    Parameters
    ----------
    module
        The network (or subnetwork) receiving the weights.
    path
        Local weights file (a torch state dict); None keeps the seeded random initialisation,
        which is logged as a warning. Nothing is ever downloaded.
    what
        Description of ``module`` for messages (e.g. ``"MONAI 3D DenseNet-121, 2 channels"``).
    seed
        The seed of the random initialisation, for the description.

    Returns
    -------
    str
        ``"random (seed N)"`` or ``"weights PATH (sha256 HEX)"``, for the training log.

    Raises
    ------
    FileNotFoundError
        A missing file.
    ValueError
        A file that is not a state dict, or one that does not match ``module``.
    """
    import hashlib
    import logging
    from collections.abc import Mapping
    from pathlib import Path

    log = logging.getLogger(__name__)
    if path is None:
        log.warning("%s: seeded random initialisation (seed %d), no weights file", what, seed)
        return f"random (seed {seed})"
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"weights file {file} of the {what} not found (weights are read from a local file; "
            "nothing is downloaded)"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a file that is not a pickle
        raise ValueError(f"{file}: not a torch state-dict file ({err})") from err
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise ValueError(f"{file}: expected a state dict (parameter name -> tensor) of the {what}")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{file} does not match the {what}: {err}") from err
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    log.info("%s initialised from %s (sha256 %s)", what, file, digest[:12])
    return f"weights {file} (sha256 {digest})"
