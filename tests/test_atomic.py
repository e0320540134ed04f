"""Atomic writes: the target is the old file or the complete new one, with the usual permissions."""

from __future__ import annotations

import os

import pytest

from wttm_core.atomic import atomic_path, atomic_write, write_text_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_text_and_bytes_are_installed_with_the_umask_permissions(tmp_path, umask_027):
    write_text_atomic(tmp_path / "deep" / "a.json", "{}\n")  # parents are created
    with atomic_write(tmp_path / "b.pth", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "deep" / "a.json").read_text() == "{}\n"
    assert (tmp_path / "b.pth").read_bytes() == b"\x00\x01"
    for path in (tmp_path / "deep" / "a.json", tmp_path / "b.pth"):
        assert path.stat().st_mode & 0o777 == 0o640  # 0o666 minus umask 027, not mkstemp's 0o600


def test_text_is_utf8(tmp_path):
    write_text_atomic(tmp_path / "t.txt", "gamma γ, Rényi")
    assert (tmp_path / "t.txt").read_bytes() == "gamma γ, Rényi".encode()


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_keep_partial_installs_what_was_written_and_reraises(tmp_path):
    target = tmp_path / "run.ipynb"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, keep_partial=True, suffix=".tmp.ipynb") as tmp:
        assert tmp.name.endswith(".tmp.ipynb") and tmp.parent == tmp_path
        tmp.write_text("executed up to the failing cell")
        raise KeyboardInterrupt
    assert target.read_text() == "executed up to the failing cell"
    assert [p.name for p in tmp_path.iterdir()] == ["run.ipynb"]


def test_keep_partial_ignores_an_empty_temporary(tmp_path):
    target = tmp_path / "run.ipynb"
    target.write_text("previous run")
    with pytest.raises(ValueError), atomic_path(target, keep_partial=True):
        raise ValueError("kernel did not start")
    assert target.read_text() == "previous run"
    assert [p.name for p in tmp_path.iterdir()] == ["run.ipynb"]


def test_bad_mode_is_named(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"), atomic_write(tmp_path / "x", "a"):
        pass
    assert list(tmp_path.iterdir()) == []
