"""Gene sets from local GMT files: strict parsing, merging and restriction to measured genes.

GMT (Gene Matrix Transposed, the MSigDB / GSEA format) holds one gene set per line, with
tab-separated fields::

    NAME<TAB>DESCRIPTION<TAB>GENE_1<TAB>GENE_2 ...

Gene sets are read only from local files: nothing here (nor in
:mod:`mmsurv.omics.radiogenomics`, which receives the sets as a dict) downloads a library.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GmtError", "read_gmt", "read_gene_sets", "restrict"]


class GmtError(ValueError):
    """A GMT file that cannot be read or does not follow the format.

    Parameters
    ----------
    path
        The file.
    line
        1-based line number of the offending line, or ``None`` for a whole-file problem.
    reason
        What is wrong.
    """

    def __init__(self, path: str | os.PathLike[str], line: int | None, reason: str) -> None:
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return type(self), (self.path, self.line, self.reason)


@dataclass(frozen=True)
class _Entry:
    """One parsed GMT line: set name, its 1-based line number and its genes."""

    name: str
    line: int
    genes: list[str]


def _parse_line(path: Path, number: int, text: str) -> _Entry:
    """Parse one non-blank GMT line (see :func:`read_gmt` for the rules)."""
    fields = text.split("\t")
    if len(fields) < 3:
        reason = (
            f"expected at least 3 tab-separated fields (name, description, genes), "
            f"found {len(fields)}"
        )
        if "\t" not in text and " " in text.strip():
            reason += "; the line has spaces but no tabs (GMT fields are tab-separated)"
        raise GmtError(path, number, reason)
    name = fields[0].strip()
    if not name:
        raise GmtError(path, number, "empty gene set name")
    genes: dict[str, None] = {}  # insertion-ordered set: duplicates kept once, order kept
    for field in fields[2:]:
        gene = field.strip()
        if not gene:
            continue
        if any(c.isspace() for c in gene):
            raise GmtError(
                path,
                number,
                f"gene set {name!r}: gene field {gene!r} contains whitespace "
                "(GMT fields are tab-separated)",
            )
        genes[gene] = None
    if not genes:
        raise GmtError(path, number, f"gene set {name!r} has no genes")
    return _Entry(name, number, list(genes))


def _read_entries(path: str | os.PathLike[str]) -> list[_Entry]:
    """All gene sets of one GMT file with their line numbers, in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GmtError(path, None, f"cannot read GMT file ({err})") from err
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        entry = _parse_line(path, number, raw)
        if entry.name in seen:
            raise GmtError(
                path,
                number,
                f"duplicate gene set name {entry.name!r} (lines {seen[entry.name]} and {number})",
            )
        seen[entry.name] = number
        entries.append(entry)
    if not entries:
        raise GmtError(path, None, "no gene sets (empty GMT file)")
    return entries


def read_gmt(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read one GMT file.

    Rules: blank lines are skipped; every other line needs at least 3 tab-separated fields
    (name, description, genes...); the name is stripped and must not be empty; genes are
    stripped, empty gene fields ignored and a gene repeated within a set kept once (first
    position); a set needs at least one gene; set names are unique within the file.

    Parameters
    ----------
    path
        The GMT file (UTF-8).

    Returns
    -------
    dict of str to list of str
        Set name -> genes, both in file order.

    Raises
    ------
    GmtError
        For a missing or unreadable file, a file without any set, or a line that breaks the
        rules above (the message names the file, the 1-based line and the reason).
    """
    return {e.name: e.genes for e in _read_entries(path)}


def read_gene_sets(paths: Sequence[str | os.PathLike[str]]) -> dict[str, list[str]]:
    """Read and merge several GMT files (see :func:`read_gmt`).

    Parameters
    ----------
    paths
        GMT files, read in order; at least one.

    Returns
    -------
    dict of str to list of str
        Set name -> genes, in file order then line order.

    Raises
    ------
    GmtError
        As :func:`read_gmt`, and for a set name found in two files (the message names both
        files and lines).
    ValueError
        When ``paths`` is empty.
    TypeError
        When ``paths`` is a single path rather than a sequence of paths.
    """
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError("paths must be a sequence of GMT paths, not a single path")
    if len(paths) == 0:
        raise ValueError("no GMT files given")
    merged: dict[str, list[str]] = {}
    origin: dict[str, tuple[str, int]] = {}
    for path in paths:
        for entry in _read_entries(path):
            if entry.name in origin:
                first_path, first_line = origin[entry.name]
                raise GmtError(
                    path,
                    entry.line,
                    f"gene set {entry.name!r} is also defined in {first_path}, line {first_line}",
                )
            origin[entry.name] = (str(path), entry.line)
            merged[entry.name] = entry.genes
    return merged


def restrict(
    gene_sets: Mapping[str, Sequence[str]], genes: Iterable[str], min_size: int, max_size: int
) -> dict[str, list[str]]:
    """Intersect each set with the measured genes and keep those of an allowed size.

    Parameters
    ----------
    gene_sets
        Set name -> genes.
    genes
        The measured genes (e.g. the columns of an expression matrix, or a test background).
    min_size, max_size
        Inclusive bounds on the number of a set's genes that were measured.

    Returns
    -------
    dict of str to list of str
        Set name -> its measured genes (set order kept, duplicates dropped), for the sets
        whose restricted size is in ``[min_size, max_size]``, in the input order.

    Raises
    ------
    ValueError
        When ``min_size`` < 1 or ``min_size`` > ``max_size``.
    """
    if min_size < 1 or min_size > max_size:
        raise ValueError(
            f"need 1 <= min_size <= max_size, got min_size={min_size}, max_size={max_size}"
        )
    measured = set(genes)
    out: dict[str, list[str]] = {}
    for name, members in gene_sets.items():
        kept = list(dict.fromkeys(g for g in members if g in measured))
        if min_size <= len(kept) <= max_size:
            out[name] = kept
    return out
