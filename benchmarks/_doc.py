"""Shared by the benchmark scripts: write a table section into docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def replace_section(section: str, table: str, doc: Path = DOC) -> None:
    """Replace ``section`` (its heading up to the next ``## ``) in ``doc`` by ``table``, or
    append ``table`` when the section is not there yet."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n\n"
    if section in text:
        head, _, tail = text.partition(section)
        nxt = tail.find("\n## ")
        text = head + table + (tail[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + table
    doc.write_text(text)
