"""Small I/O helpers: atomic writes and table reading."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

__all__ = ["atomic_path", "write_tsv", "read_tsv"]


def _umask() -> int:
    """The process umask: from /proc where it is listed (no process-wide change), else read
    by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    An interrupted or failed writer never leaves a half-written file under the final name.
    The file gets the permissions of a plainly created one (0666 less the umask), not the
    owner-only mode of a temporary file, so that a lab group can read a shared results folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` as a tab-separated table without index, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False)


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a tab-separated table keeping id columns as strings."""
    return pd.read_csv(path, sep="\t", dtype={"patient_id": str, "slide_id": str})
