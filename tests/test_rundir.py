"""The run-directory module: one home for the files, torch-free, with one owner per directory."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from wttm_core import rundir
from wttm_core.rundir import (
    LOCK_FILE,
    RunDirectoryError,
    RunLock,
    RunLockedError,
    check_run_directory,
    read_json,
    read_jsonl,
    write_json,
    write_jsonl,
)

CONFIG = {"arch": "resnet8", "seed": 1}


def test_the_module_needs_nothing_but_the_standard_library() -> None:
    tree = ast.parse(Path(rundir.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {
        "__future__",
        "contextlib",
        "json",
        "os",
        "socket",
        "sys",
        "tempfile",
        "fcntl",
        "errno",
        "time",
        "collections",
        "pathlib",
        "typing",
    }


def test_old_homes_are_aliases_of_the_one_home() -> None:
    from wttm_core import atomic, runs
    from wttm_core.engine import state

    assert atomic.atomic_write is rundir.atomic_write and atomic.write_text_atomic is rundir.write_text_atomic
    assert runs.read_jsonl is rundir.read_jsonl is state.read_jsonl
    assert state.write_json is rundir.write_json and state.RunDirectoryError is RunDirectoryError


def test_json_files_round_trip_and_errors_name_file_and_line(tmp_path: Path) -> None:
    write_json(tmp_path / "c.json", CONFIG)
    write_jsonl(tmp_path / "m.jsonl", [{"epoch": 1}, {"epoch": 2}])
    assert read_json(tmp_path / "c.json") == CONFIG and read_jsonl(tmp_path / "m.jsonl") == [{"epoch": 1}, {"epoch": 2}]
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\n{"epoch": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl, line 2: not valid JSON"):
        read_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        read_json(tmp_path / "list.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        read_json(tmp_path / "binary.json")


def test_the_decision_never_resumes_from_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert check_run_directory(run, CONFIG, resume=False, force=False) == "fresh"
    run.mkdir()
    (run / LOCK_FILE).write_text("")  # a lock file alone is an empty run directory
    assert check_run_directory(run, CONFIG, resume=False, force=False) == "fresh"
    with pytest.raises(RunDirectoryError, match="no run to resume"):
        check_run_directory(run, CONFIG, resume=True, force=False)
    write_json(run / "config.json", CONFIG)
    with pytest.raises(RunDirectoryError, match="start again with --force") as refused:
        check_run_directory(run, CONFIG, resume=True, force=False)
    assert "--resume-from-checkpoint" not in str(refused.value)  # no checkpoint.pth to offer
    (run / "checkpoint.pth").write_bytes(b"x")
    with pytest.raises(RunDirectoryError, match="--resume-from-checkpoint"):
        check_run_directory(run, CONFIG, resume=True, force=False)
    assert check_run_directory(run, CONFIG, resume="checkpoint", force=False) == "checkpoint"
    (run / "state.pth").write_bytes(b"x")
    assert check_run_directory(run, CONFIG, resume=True, force=False) == "resume"
    with pytest.raises(RunDirectoryError, match="contradict"):
        check_run_directory(run, CONFIG, resume="checkpoint", force=True)
    (run / "config.json").write_text("{broken")
    with pytest.raises(RunDirectoryError, match="unreadable"):
        check_run_directory(run, CONFIG, resume=True, force=False)


def test_a_lock_names_its_holder_and_survives_a_releasing_owner_unlinking_the_file(tmp_path: Path) -> None:
    lock = RunLock(tmp_path / "run").acquire()
    holder = json.loads((tmp_path / "run" / LOCK_FILE).read_text())
    assert holder["pid"] == os.getpid() and holder["host"]
    with pytest.raises(RunLockedError, match="one owner at a time"):
        RunLock(tmp_path / "run").acquire()
    # an owner that created the file removes it on a failure, while still holding it: a newcomer must lock the
    # file now at the path, not the unlinked one it may have opened before
    stale_fd = os.open(tmp_path / "run" / LOCK_FILE, os.O_RDWR)
    lock.release(cleanup=True)
    assert not (tmp_path / "run").exists()
    os.close(stale_fd)
    again = RunLock(tmp_path / "run").acquire()
    assert again.held and (tmp_path / "run" / LOCK_FILE).is_file()
    again.release()
    assert (tmp_path / "run" / LOCK_FILE).is_file()  # a successful owner leaves the (unlocked) file in place
    with RunLock(tmp_path / "run"):
        pass


def test_a_refusal_inside_a_users_folder_leaves_no_lock_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirectoryError), rundir.owned_run_directory(tmp_path):
        check_run_directory(tmp_path, CONFIG, resume=False, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_bytes_are_written_atomically_and_a_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "state.pth"
    rundir.write_bytes_atomic(target, b"old")

    def full(temporary: Path, destination: Path) -> None:
        raise OSError(28, "No space left on device", str(temporary))

    monkeypatch.setattr(rundir, "_install", full)
    with pytest.raises(OSError, match="No space left"):
        rundir.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.pth"]
