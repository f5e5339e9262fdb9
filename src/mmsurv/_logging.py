"""Logging set-up shared by the command-line tool and the Snakemake script adapters."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["configure_logging", "log_to_file"]

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Send mmsurv's log records to stderr with timestamps."""
    logging.basicConfig(level=level, format=_FORMAT, stream=sys.stderr, force=True)


@contextlib.contextmanager
def log_to_file(path: str | Path, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Route all log records (and an uncaught exception's traceback) to ``path``.

    Used by the rule adapters in ``workflow/scripts``: the rule's ``log:`` file receives the
    records, and an exception is logged with its traceback before it propagates, so the failed
    job's log says why it failed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    logger = logging.getLogger("mmsurv")
    try:
        yield logger
    except Exception:
        logger.exception("failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
