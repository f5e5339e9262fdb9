"""GMT gene sets: strict parsing, merging across files and restriction to measured genes."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from mmsurv.omics.gene_sets import GmtError, read_gene_sets, read_gmt, restrict


def _write(tmp_path: Path, text: str, name: str = "sets.gmt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_gmt_parses_names_order_stripping_and_duplicates(tmp_path):
    path = _write(
        tmp_path,
        "SET_B\tsecond listed first\tG3\tG1\t G2 \n"
        "\n"  # blank lines are skipped
        "  SET_A \thttp://example.org\tG1\t\tG1\tG4\r\n"  # empty field, duplicate, CRLF
        "SET_C\t\tG9\n",  # empty description is fine
    )
    sets = read_gmt(path)
    assert list(sets) == ["SET_B", "SET_A", "SET_C"]
    assert sets["SET_B"] == ["G3", "G1", "G2"]
    assert sets["SET_A"] == ["G1", "G4"]
    assert sets["SET_C"] == ["G9"]


def test_demo_style_gmt_round_trips(tmp_path):
    from mmsurv.demo.omics import write_gmt

    written = [("DEMO_RISK_MODULE", "synthetic: planted", ["A1", "B2"]), ("DEMO_X", "x", ["C3"])]
    sets = read_gmt(_write(tmp_path, write_gmt(written)))
    assert sets == {"DEMO_RISK_MODULE": ["A1", "B2"], "DEMO_X": ["C3"]}


def _error(path: Path) -> GmtError:
    with pytest.raises(GmtError) as info:
        read_gmt(path)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("OK\td\tG1\nSET_X desc G1 G2\n", 2, r"at least 3 tab-separated.*spaces but no tabs"),
        ("OK\td\tG1\n\nSET_X\tdesc\n", 3, r"at least 3 tab-separated fields.*found 2"),
        ("\tdesc\tG1\n", 1, r"empty gene set name"),
        ("OK\td\tG1\nEMPTY\tdesc\t\t \t\n", 2, r"'EMPTY' has no genes"),
        ("OK\td\tG1 G2\n", 1, r"contains whitespace"),
        (
            "DUP\td\tG1\nOTHER\td\tG2\n\nDUP\td\tG3\n",
            4,
            r"duplicate gene set name 'DUP' \(lines 1 and 4\)",
        ),
    ],
)
def test_malformed_line_is_reported_with_file_line_and_reason(tmp_path, text, line, reason):
    path = _write(tmp_path, text)
    err = _error(path)
    assert isinstance(err, ValueError)
    assert (err.path, err.line) == (str(path), line)
    assert re.search(reason, err.reason)
    assert str(err).startswith(f"{path}, line {line}: ")
    assert re.search(reason, str(err))


@pytest.mark.parametrize("text", ["", "\n  \n\t\n"])
def test_empty_file_is_an_error(tmp_path, text):
    path = _write(tmp_path, text)
    err = _error(path)
    assert err.line is None
    assert str(err) == f"{path}: no gene sets (empty GMT file)"


def test_missing_and_undecodable_files_are_errors(tmp_path):
    missing = tmp_path / "nope.gmt"
    err = _error(missing)
    assert err.line is None and str(missing) in str(err) and "cannot read" in str(err)
    binary = tmp_path / "binary.gmt"
    binary.write_bytes(b"SET\td\t\xff\xfe\n")
    assert "cannot read" in str(_error(binary))


def test_gmt_error_pickles():
    err = pickle.loads(pickle.dumps(GmtError("a.gmt", 3, "bad")))
    assert (err.path, err.line, err.reason, str(err)) == ("a.gmt", 3, "bad", "a.gmt, line 3: bad")


def test_read_gene_sets_merges_files_in_order(tmp_path):
    a = _write(tmp_path, "S1\td\tG1\tG2\n", "a.gmt")
    b = _write(tmp_path, "S2\td\tG3\nS3\td\tG1\n", "b.gmt")
    assert read_gene_sets([a, str(b)]) == {"S1": ["G1", "G2"], "S2": ["G3"], "S3": ["G1"]}


def test_read_gene_sets_duplicate_across_files_names_both(tmp_path):
    a = _write(tmp_path, "S1\td\tG1\nSHARED\td\tG2\n", "a.gmt")
    b = _write(tmp_path, "\nSHARED\td\tG3\n", "b.gmt")
    with pytest.raises(GmtError) as info:
        read_gene_sets([a, b])
    err = info.value
    assert (err.path, err.line) == (str(b), 2)
    assert str(err) == f"{b}, line 2: gene set 'SHARED' is also defined in {a}, line 2"


def test_read_gene_sets_rejects_no_files_and_a_bare_path(tmp_path):
    with pytest.raises(ValueError, match="no GMT files"):
        read_gene_sets([])
    with pytest.raises(TypeError, match="sequence"):
        read_gene_sets(str(_write(tmp_path, "S\td\tG\n")))


def test_restrict_intersects_and_respects_sizes():
    sets = {
        "small": ["A", "B", "Z"],  # 2 measured
        "exact_min": ["A", "B", "C", "Y"],  # 3 measured
        "exact_max": ["E", "D", "C", "B"],  # 4 measured, order kept
        "big": ["A", "B", "C", "D", "E"],  # 5 measured
        "none": ["X", "Y"],
    }
    out = restrict(sets, ["A", "B", "C", "D", "E"], min_size=3, max_size=4)
    assert out == {"exact_min": ["A", "B", "C"], "exact_max": ["E", "D", "C", "B"]}
    assert list(restrict(sets, list("ABCDE"), min_size=1, max_size=10)) == [
        "small",
        "exact_min",
        "exact_max",
        "big",
    ]


@pytest.mark.parametrize(("lo", "hi"), [(0, 5), (6, 5)])
def test_restrict_rejects_bad_bounds(lo, hi):
    with pytest.raises(ValueError, match="min_size"):
        restrict({"S": ["A"]}, ["A"], min_size=lo, max_size=hi)
