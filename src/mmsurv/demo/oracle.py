"""Oracle C-index of the true risk and of each modality's component on a demo cohort.

Run ``python -m mmsurv.demo.oracle DIR [DIR ...]`` to print the table for written cohorts.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from mmsurv.evaluation.metrics import harrell_c

__all__ = ["oracle_c_index", "main"]


def oracle_c_index(cohort: str | os.PathLike[str]) -> pd.DataFrame:
    """C-index of ``truth.tsv``'s columns on every endpoint of a demo cohort folder.

    Parameters
    ----------
    cohort
        Folder written by :func:`mmsurv.demo.make_demo_cohort`.

    Returns
    -------
    pandas.DataFrame
        One row per truth column (``risk``, ``risk_clinical``...), one column per endpoint
        (``os``, ``pfs``), values the C-index over all patients.
    """
    cohort = Path(cohort)
    samples = pd.read_csv(cohort / "samples.tsv", sep="\t")
    truth = pd.read_csv(cohort / "truth.tsv", sep="\t")
    df = samples.merge(truth, on="patient_id", validate="one_to_one")
    columns = [c for c in truth.columns if c != "patient_id"]
    table = {
        name: [
            harrell_c(
                df[f"{name}_days"].to_numpy(float),
                df[f"{name}_event"].to_numpy(int),
                df[c].to_numpy(float),
            )
            for c in columns
        ]
        for name in ("os", "pfs")
    }
    return pd.DataFrame(table, index=pd.Index(columns, name="component"))


def main(argv: list[str] | None = None) -> None:
    """Print the oracle table of each cohort folder given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cohorts", nargs="+", type=Path, help="demo cohort folder(s)")
    args = parser.parse_args(argv)
    for folder in args.cohorts:
        print(f"# {folder}")  # noqa: T201 - command-line output
        print(oracle_c_index(folder).round(3).to_string())  # noqa: T201


if __name__ == "__main__":
    main()
