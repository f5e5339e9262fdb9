"""Fixtures of the demo-cohort tests: one smoke cohort generated per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mmsurv.demo import make_demo_cohort


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the ``smoke`` cohort with seed 0 (generated on two worker threads)."""
    out = tmp_path_factory.mktemp("demo_smoke")
    make_demo_cohort(out, preset="smoke", seed=0, n_jobs=2)
    return out


def _read(folder: Path, name: str) -> pd.DataFrame:
    """Read a tab-separated sheet of a demo cohort, ids as strings."""
    return pd.read_csv(folder / name, sep="\t", dtype={"patient_id": str, "slide_id": str})


@pytest.fixture(scope="session")
def sheets(smoke_dir: Path) -> dict[str, pd.DataFrame]:
    """The smoke cohort's tables, keyed by file stem."""
    names = ["samples", "slides", "images", "truth", "rna", "scna"]
    return {n: _read(smoke_dir, f"{n}.tsv") for n in names}
