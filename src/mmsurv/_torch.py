"""Torch helpers shared by every network of the workflow: device choice, autocast, threads.

Kept free of the survival stack so that light jobs (the weak-label segmenter) import it cheaply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["device_for", "autocast_for", "torch_threads"]


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
