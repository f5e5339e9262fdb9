"""Atomic writes: nothing under the final name on failure, plain-file permissions on success."""

from __future__ import annotations

import os

import pytest

from mmsurv.io import atomic_path


def test_a_failed_writer_leaves_no_file(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_the_file_gets_the_umask_permissions_not_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out.tsv") as tmp:
            tmp.write_text("ok")
    finally:
        os.umask(old)
    assert (tmp_path / "out.tsv").stat().st_mode & 0o777 == 0o644
