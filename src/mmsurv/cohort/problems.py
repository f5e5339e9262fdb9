"""Input problems reported with file, row and reason."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "CohortError", "sheet_line"]


@dataclass(frozen=True)
class Problem:
    """One defect of the input: where it is and what is wrong.

    ``row`` is the 1-based line number in the file (the header is line 1), or ``None`` when the
    problem concerns the whole file; for matrices ``column`` names the sample column.
    """

    file: str
    reason: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", line {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


class CohortError(ValueError):
    """Raised with every problem of the cohort at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the cohort inputs:\n  {lines}")


def sheet_line(index: int) -> int:
    """Line number in a headed sheet of the 0-based data row ``index``."""
    return int(index) + 2
