"""Small shared helpers of the demo generator: seeded random streams, z-scores, progress bars."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

__all__ = ["rng_for", "zscore", "sigmoid", "progress", "smooth_noise"]

_T = TypeVar("_T")


def rng_for(seed: int, stream: str, *index: int) -> np.random.Generator:
    """Return an independent random generator for one named stream of the cohort.

    Every random quantity of the cohort is drawn from its own stream, keyed by the cohort seed,
    a stream name (``"traits"``, ``"slide"``...) and optional integer indices (patient or slide
    number), so that adding a draw to one stream never shifts the values of another.

    Parameters
    ----------
    seed
        Cohort seed (non-negative integer).
    stream
        Name of the stream; hashed with CRC-32 into the seed sequence.
    *index
        Further non-negative integers, e.g. the patient's row number.
    """
    key = [int(seed), zlib.crc32(stream.encode("utf-8")), *(int(i) for i in index)]
    return np.random.default_rng(np.random.SeedSequence(key))


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardise a 1-D array to mean 0 and standard deviation 1 (population SD).

    A constant array is returned as zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    if not np.isfinite(sd) or sd == 0:
        return np.zeros_like(x)
    return (x - x.mean()) / sd


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, element-wise."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def smooth_noise(
    shape: tuple[int, ...], sigma: float, rng: np.random.Generator, mode: str = "reflect"
) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to unit standard deviation.

    Parameters
    ----------
    shape
        Output shape (any number of dimensions).
    sigma
        Gaussian smoothing width in elements (same for every axis).
    rng
        Random generator.
    mode
        Boundary mode passed to :func:`scipy.ndimage.gaussian_filter`.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``, mean ~0, SD 1.
    """
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma=sigma, mode=mode)
    sd = field.std()
    return field / sd if sd > 0 else field


def progress(items: Iterable[_T], desc: str, total: int | None = None) -> Iterator[_T]:
    """Wrap ``items`` in a tqdm progress bar when tqdm is installed and stderr is a terminal."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is optional
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, disable=None, leave=False)
