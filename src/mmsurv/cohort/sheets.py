"""Reading and validating the input sheets (samples, slides, images)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from mmsurv.cohort.problems import Problem, sheet_line
from mmsurv.config import load_schema

__all__ = ["read_sheet", "check_samples", "check_slides", "check_images", "resolve_path"]


def read_sheet(path: str | Path, problems: list[Problem]) -> pd.DataFrame | None:
    """Read a tab-separated sheet as strings (empty cells -> NaN); ``None`` if unreadable."""
    path = Path(path)
    if not path.is_file():
        problems.append(Problem(str(path), "file not found"))
        return None
    try:
        df = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        problems.append(Problem(str(path), f"cannot be read as a tab-separated table: {err}"))
        return None
    df.columns = [str(c).strip() for c in df.columns]
    # blank lines are dropped but keep their place, so row i is still on line i + 2
    return df.dropna(how="all")


def resolve_path(sheet: str | Path, value: str) -> Path:
    """A path from a sheet cell: relative paths are relative to the sheet's own folder."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else Path(sheet).resolve().parent / p


def _schema_rows(df: pd.DataFrame, schema_name: str, file: str, problems: list[Problem]) -> None:
    """Validate each row against a sheet schema; numeric-typed columns are coerced first."""
    schema = load_schema(schema_name)
    validator = jsonschema.Draft202012Validator(schema)
    props = schema.get("properties", {})
    for missing in [c for c in schema.get("required", []) if c not in df.columns]:
        problems.append(Problem(file, f"required column {missing!r} is missing"))
    if any(c not in df.columns for c in schema.get("required", [])):
        return
    for i, row in df.iterrows():
        record: dict[str, Any] = {}
        for col, value in row.items():
            if pd.isna(value):
                if col in schema.get("required", []):
                    problems.append(Problem(file, f"empty {col!r}", sheet_line(i)))
                continue
            types = props.get(col, {}).get("type")
            types = types if isinstance(types, list) else [types]
            if "number" in types:
                try:
                    value = float(value)
                except ValueError:
                    problems.append(
                        Problem(file, f"{col!r} is not a number: {value!r}", sheet_line(i))
                    )
                    continue
            record[col] = value
        for err in validator.iter_errors(record):
            field = "/".join(str(p) for p in err.path)
            msg = f"{field}: {err.message}" if field else err.message
            problems.append(Problem(file, msg, sheet_line(i)))


def _duplicates(df: pd.DataFrame, column: str, file: str, problems: list[Problem]) -> None:
    dup = df[column].notna() & df.duplicated(column, keep=False)
    for value, rows in df[dup].groupby(column).groups.items():
        lines = ", ".join(str(sheet_line(r)) for r in rows)
        problems.append(Problem(file, f"duplicate {column} {value!r} on lines {lines}"))


def _numeric_column(df: pd.DataFrame, column: str, file: str, problems: list[Problem]) -> pd.Series:
    """Coerce ``column`` to float, reporting every non-numeric non-empty cell."""
    values = pd.to_numeric(df[column], errors="coerce")
    bad = df[column].notna() & values.isna()
    for i in df.index[bad]:
        problems.append(
            Problem(file, f"{column!r} is not a number: {df.at[i, column]!r}", sheet_line(i))
        )
    return values


def check_samples(
    df: pd.DataFrame, file: str, config: Mapping[str, Any], problems: list[Problem]
) -> pd.DataFrame:
    """Validate samples.tsv; return it with endpoint and numeric clinical columns as floats."""
    _schema_rows(df[["patient_id"]] if "patient_id" in df else df, "samples", file, problems)
    if "patient_id" not in df.columns:
        return df
    df = df.copy()
    df["patient_id"] = df["patient_id"].str.strip()
    _duplicates(df, "patient_id", file, problems)
    clinical = config["clinical"]
    needed: dict[str, str] = {}
    for name, ep in config["endpoints"].items():
        needed[ep["time"]] = f"time column of endpoint {name!r}"
        needed[ep["event"]] = f"event column of endpoint {name!r}"
    for col in clinical["numeric"]:
        needed[col] = "numeric clinical variable"
    for col in clinical["categorical"]:
        needed[col] = "categorical clinical variable"
    for name, col in config["labels"].items():
        needed[col] = f"column of label {name!r}"
    for col, role in needed.items():
        if col not in df.columns:
            problems.append(Problem(file, f"column {col!r} ({role}) is missing"))
    for ep in config["endpoints"].values():
        if ep["time"] in df.columns:
            t = _numeric_column(df, ep["time"], file, problems)
            for i in df.index[t < 0]:
                problems.append(
                    Problem(file, f"negative time {ep['time']}={t[i]:g}", sheet_line(i))
                )
            df[ep["time"]] = t
        if ep["event"] in df.columns:
            e = _numeric_column(df, ep["event"], file, problems)
            for i in df.index[e.notna() & ~e.isin([0, 1])]:
                problems.append(
                    Problem(
                        file,
                        f"event {ep['event']}={df.at[i, ep['event']]!r} is not 0 or 1",
                        sheet_line(i),
                    )
                )
            df[ep["event"]] = e
    for col in clinical["numeric"]:
        if col in df.columns:
            df[col] = _numeric_column(df, col, file, problems)
    return df


def check_slides(
    df: pd.DataFrame, file: str, patients: set[str] | None, problems: list[Problem]
) -> pd.DataFrame:
    """Validate slides.tsv: schema, unique slide ids, known patients, existing files.

    ``patients`` is ``None`` when the samples sheet is unusable: rows are then checked on
    their own, without the cross-reference.
    """
    _schema_rows(df, "slides", file, problems)
    if not {"slide_id", "patient_id", "path"} <= set(df.columns):
        return df
    _duplicates(df, "slide_id", file, problems)
    _known_patients(df, file, patients, problems)
    _existing_files(df, file, problems)
    if "mpp" in df.columns:
        df = df.assign(mpp=pd.to_numeric(df["mpp"], errors="coerce"))
    return df


def check_images(
    df: pd.DataFrame,
    file: str,
    patients: set[str] | None,
    channels: list[str],
    problems: list[Problem],
) -> pd.DataFrame:
    """Validate images.tsv: schema, known patients and channels, one row per (patient, channel)."""
    _schema_rows(df, "images", file, problems)
    if not {"patient_id", "channel", "path"} <= set(df.columns):
        return df
    df = df.assign(channel=df["channel"].str.strip().str.lower())
    for i in df.index[df["channel"].notna() & ~df["channel"].isin(channels)]:
        problems.append(
            Problem(
                file,
                f"unknown channel {df.at[i, 'channel']!r} (known: {', '.join(channels)})",
                sheet_line(i),
            )
        )
    key = df["patient_id"] + "/" + df["channel"]
    for value, rows in df[key.duplicated(keep=False)].groupby(key).groups.items():
        lines = ", ".join(str(sheet_line(r)) for r in rows)
        problems.append(Problem(file, f"duplicate patient/channel {value!r} on lines {lines}"))
    _known_patients(df, file, patients, problems)
    _existing_files(df, file, problems)
    return df


def _known_patients(
    df: pd.DataFrame, file: str, patients: set[str] | None, problems: list[Problem]
) -> None:
    if patients is None:
        return
    for i in df.index[df["patient_id"].notna() & ~df["patient_id"].isin(patients)]:
        problems.append(
            Problem(
                file,
                f"patient {df.at[i, 'patient_id']!r} is not in the samples sheet",
                sheet_line(i),
            )
        )


def _existing_files(df: pd.DataFrame, file: str, problems: list[Problem]) -> None:
    for i, value in df["path"].items():
        if pd.isna(value):
            continue
        path = resolve_path(file, value)
        if not path.exists():
            problems.append(Problem(file, f"file not found: {path}", sheet_line(i)))
