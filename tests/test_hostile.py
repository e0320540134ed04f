"""A hostile and careless user against every face of the lab (issue 13): nothing lost, nothing silently wrong,
no traceback for a user error.

Each numbered case of issue 13 has a test named ``test_case_<n>_...``; the rest is this file's own battery
(malformed arguments for every sub-command, bad files, races, kills). Most cases run in-process
(``main([...])`` with the ``SystemExit`` caught); a subprocess is used only where a second process is the point
(locks, kills, races) or the interpreter's exit matters.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml

from wttm_core import rundir, teachers
from wttm_core.cli import main
from wttm_core.models import build_model, load_checkpoint, read_checkpoint, save_checkpoint
from wttm_core.rundir import LOCK_FILE, RunDirectoryError, RunLock, RunLockedError

REPO = Path(__file__).resolve().parent.parent
TINY = ["--dataset", "synthetic", "--train-size", "64", "--test-size", "32", "--batch-size", "32"]
TINY += ["--device", "cpu", "--seed", "3", "--deterministic", "--quiet", "--amp", "off"]


def wttm(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``wttm argv`` in-process; (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    """The one line of an error on stderr (progress bars of a download aside); no traceback."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def distill(teacher: Path, out: Path, *extra: str, epochs: int = 1) -> list[str]:
    argv = ["distill", "--student", "resnet8", "--teacher-checkpoint", str(teacher), "--method", "kd", *TINY]
    return [*argv, "--epochs", str(epochs), "--out", str(out), *extra]


def snapshot(folder: Path) -> dict[str, str]:
    """Name -> SHA-256 of the run's files (the lock file names its last holder, so it is left out)."""
    files = (p for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_FILE)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, teacher_file: Path) -> Path:
    """A one-epoch distillation run directory (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert main(distill(teacher_file, out)) == 0
    return out


def copy_run(run: Path, to: Path) -> Path:
    to.mkdir()
    for path in run.iterdir():
        (to / path.name).write_bytes(path.read_bytes())
    return to


# ------------------------------------------------------------------------------------------------ case 1
def test_case_1_present_never_deletes_a_students_notebook(tmp_path: Path, capsys) -> None:
    out = tmp_path / "present"
    out.mkdir()
    (out / "my_homework.ipynb").write_text('{"cells": []}')
    for extra in ([], ["--dry-run"]):
        code, _, err = wttm(["present", "--notebooks", REPO / "notebooks", "--out", out, *extra], capsys)
        assert code == 2 and "--out" in one_line(err) and "not written by wttm present" in err
    assert sorted(p.name for p in out.iterdir()) == ["my_homework.ipynb"]


# ------------------------------------------------------------------------------------------------ case 2
def test_case_2_resume_without_state_refuses_and_keeps_every_file(tmp_path, finished_run, teacher_file, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    (run / "state.pth").unlink()
    before = snapshot(run)
    code, _, err = wttm(distill(teacher_file, run, "--resume"), capsys)
    line = one_line(err)
    assert code == 2 and "no state.pth" in line and "--resume-from-checkpoint" in line and "--force" in line
    assert snapshot(run) == before  # best.pth, checkpoint.pth, metrics.jsonl untouched


def test_case_2_resume_from_checkpoint_continues_where_state_was_lost(tmp_path, teacher_file, monkeypatch, capsys):
    from wttm_core.engine import loop

    out = tmp_path / "run"
    epochs_owner = getattr(loop, "Cohort", None) or loop.Trainer  # the class whose _run_epoch runs one epoch
    real_epoch = epochs_owner._run_epoch

    def killed_after_one_epoch(self, epoch, *args):  # epoch 1 is committed, then the process "dies"
        real_epoch(self, epoch, *args)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(epochs_owner, "_run_epoch", killed_after_one_epoch)
    assert wttm(distill(teacher_file, out, epochs=2), capsys)[0] == 130
    monkeypatch.undo()
    first = rundir.read_jsonl(out / "metrics.jsonl")
    assert len(first) == 1 and read_checkpoint(out / "checkpoint.pth")["epoch"] == 1
    (out / "state.pth").unlink()
    code, _, err = wttm(distill(teacher_file, out, "--resume", epochs=2), capsys)
    assert code == 2 and "--resume-from-checkpoint" in one_line(err)
    code, _, err = wttm(distill(teacher_file, out, "--resume-from-checkpoint", epochs=2), capsys)
    assert code == 0, err
    rows = rundir.read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == first[0]
    assert rundir.read_json(out / "summary.json")["complete"] and (out / "state.pth").is_file()


def test_resume_on_an_empty_or_absent_folder_is_refused_and_creates_nothing(tmp_path, teacher_file, capsys):
    for out in (tmp_path / "absent" / "deep" / "run", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        code, _, err = wttm(distill(teacher_file, out, "--resume"), capsys)
        assert code == 2 and "no run to resume" in one_line(err)
    assert not (tmp_path / "absent").exists() and list((tmp_path / "empty").iterdir()) == []


# ------------------------------------------------------------------------------------------------ case 3
def test_case_3_resume_and_force_together_are_refused(tmp_path: Path, finished_run: Path, teacher_file, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    code, _, err = wttm(distill(teacher_file, run, "--resume", "--force"), capsys)
    assert code == 2 and "contradict" in one_line(err)
    assert snapshot(run) == before
    with pytest.raises(RunDirectoryError, match="contradict"):
        rundir.check_run_directory(run, {}, resume=True, force=True)


# ------------------------------------------------------------------------------------------------ case 4
HOLD = (
    "import sys, time\nfrom wttm_core.rundir import RunLock\n"
    "RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(120)\n"
)


def _holder(directory: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(directory)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_case_4_a_run_directory_has_one_owner_and_sigkill_frees_it(tmp_path: Path, finished_run, teacher_file, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    before = snapshot(run)
    holder = _holder(run)
    try:
        code, _, err = wttm(distill(teacher_file, run, "--resume"), capsys)
        line = one_line(err)
        assert code == 2 and f"in use by pid {holder.pid}" in line and "-c" in line
        assert snapshot(run) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunLock(run) as lock:  # the kernel dropped the lock with the process
        assert lock.held


def test_case_4_two_fresh_runs_started_together_do_not_race(tmp_path: Path, teacher_file: Path) -> None:
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "wttm_core.cli", *map(str, distill(teacher_file, out))]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in processes]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "in use by pid" in loser or "already holds this run" in loser
    assert len(rundir.read_jsonl(out / "metrics.jsonl")) == 1 and rundir.read_json(out / "summary.json")["complete"]


def test_lock_in_process_names_the_holder_and_leaves_no_trace_after_a_refusal(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "new").acquire()
    with pytest.raises(RunLockedError, match=rf"in use by pid {os.getpid()} on "):
        RunLock(tmp_path / "new").acquire()
    first.release()
    with pytest.raises(ValueError, match="boom"), rundir.owned_run_directory(tmp_path / "fresh"):
        raise ValueError("boom")
    assert not (tmp_path / "fresh").exists()  # the refused run's lock file and folder are gone
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(RunDirectoryError, match="not a directory"):
        RunLock(tmp_path / "a_file").acquire()


# ------------------------------------------------------------------------------------------------ case 5
def _tar(path: Path, files: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return path


CHAIN = {
    "cifar_teachers/p": (tarfile.SYMTYPE, "."),
    "cifar_teachers/esc": (tarfile.SYMTYPE, "p/p/.."),
}


@pytest.mark.parametrize("data_filter", [True, False], ids=["with-data-filter", "python-3.11.0-without-it"])
@pytest.mark.parametrize(
    "links",
    [
        CHAIN,
        {"cifar_teachers/hard": (tarfile.LNKTYPE, "cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth")},
        {"cifar_teachers/resnet8_vanilla/dangling.pth": (tarfile.SYMTYPE, "nowhere.pth")},
        {
            "cifar_teachers/wrn_16_1_vanilla/ckpt_epoch_240.pth": (
                tarfile.SYMTYPE,
                "../resnet8_vanilla/ckpt_epoch_240.pth",
            )
        },
    ],
    ids=["symlink-chain", "hard-link", "dangling-symlink", "symlink-inside"],
)
def test_case_5_every_link_member_is_refused(tmp_path, monkeypatch, links, data_filter) -> None:
    if not data_filter:
        monkeypatch.setattr(teachers, "_DATA_FILTER", None)
    dest = tmp_path / "dest"
    dest.mkdir()
    files = {"cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": b"x"}
    if links is CHAIN:
        files["cifar_teachers/esc/evil.txt"] = b"escaped"
    _tar(dest / "cifar_teachers.tar", files, links)
    with pytest.raises(teachers.UnsafeArchiveError, match="link"):
        teachers.fetch_teachers(dest, "http://127.0.0.1:9/none.tar", retries=0, progress=False)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_case_5_the_resolved_path_check_stops_an_existing_link_in_the_destination(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "cifar_teachers").symlink_to(outside)
    archive = _tar(tmp_path / "a.tar", {"cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": b"x"})
    with pytest.raises(teachers.UnsafeArchiveError, match="resolves outside"):
        teachers.safe_extract(archive, dest)
    assert list(outside.iterdir()) == []


def test_case_5_a_non_archive_is_one_line(tmp_path: Path, capsys) -> None:
    for name, payload in (("garbage", os.urandom(3000)), ("empty", b""), ("truncated", None)):
        dest = tmp_path / name
        dest.mkdir()
        if payload is None:
            whole = _tar(tmp_path / "whole.tar", {"cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": b"y" * 5000})
            payload = whole.read_bytes()[:2000]
        (dest / "cifar_teachers.tar").write_bytes(payload)
        code, _, err = wttm(["teachers", "--fetch", dest, "--url", "http://127.0.0.1:9/x.tar"], capsys)
        line = one_line(err)
        assert code == 2 and ("not a readable tar archive" in line or "damaged" in line or "truncated" in line), line
        assert not (dest / "cifar_teachers").exists()


class _ArchiveHandler(BaseHTTPRequestHandler):
    payload = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)


def test_case_5_a_link_archive_served_over_http_installs_nothing(tmp_path: Path, capsys) -> None:
    archive = _tar(tmp_path / "a.tar", {"cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": b"x"}, CHAIN)
    _ArchiveHandler.payload = archive.read_bytes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ArchiveHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cifar_teachers.tar"
        code, _, err = wttm(["teachers", "--fetch", tmp_path / "dest", "--url", url], capsys)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 2 and "symbolic link" in one_line(err)
    assert list((tmp_path / "dest").iterdir()) == []


def _teacher_bytes(tmp: Path, seed: int) -> bytes:
    torch.manual_seed(seed)
    path = save_checkpoint(tmp / f"t{seed}.pth", build_model("resnet8"), arch="resnet8", epoch=1, accuracy=1.0)
    return path.read_bytes()


def test_case_5_the_digest_of_the_file_loaded_is_checked_through_a_link_or_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "data" / "cifar_teachers"
    (root / "resnet8_vanilla").mkdir(parents=True)
    good, bad = _teacher_bytes(tmp_path, 0), _teacher_bytes(tmp_path, 1)
    installed = root / "resnet8_vanilla" / "ckpt_epoch_240.pth"
    installed.write_bytes(good)
    teachers.load_teacher("resnet8", tmp_path / "data")  # records the digest
    installed.write_bytes(bad)  # replaced on disk
    link = tmp_path / "elsewhere" / "teacher.pth"
    link.parent.mkdir()
    link.symlink_to(installed)
    choice = teachers.resolve_teacher("resnet8", link, teacher_dir=tmp_path / "data")
    assert choice.sha256 == hashlib.sha256(good).hexdigest()
    with pytest.raises(teachers.TeacherDigestError, match="differs from the known digest"):
        teachers.load_resolved_teacher(choice)
    # a copy laid out as a published teacher must have the published digest
    fake = tmp_path / "copy" / "resnet32x4_vanilla" / "ckpt_epoch_240.pth"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(good)
    choice = teachers.resolve_teacher("resnet32x4", fake, teacher_dir=tmp_path / "data")
    assert choice.sha256 == teachers.STANDARD_TEACHERS["resnet32x4"].sha256
    with pytest.raises(teachers.TeacherDigestError):
        teachers.load_resolved_teacher(choice)
    # a checkpoint of the user's own (another layout) has no digest to match
    own = tmp_path / "mine.pth"
    own.write_bytes(good)
    assert teachers.resolve_teacher(None, own).sha256 is None and teachers.resolve_teacher(None, own).arch == "resnet8"


# ------------------------------------------------------------------------------------------------ case 6
@pytest.mark.slow
def test_case_6_dashboards_need_the_token_and_a_local_host(tmp_path: Path) -> None:
    import secrets
    import socket
    import urllib.error

    from wttm_core.lab.present import voila_command

    folder = tmp_path / "nb"
    folder.mkdir()
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "a",
                "metadata": {},
                "outputs": [],
                "source": "raise RuntimeError('server path /srv/secret')",
            }
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "a.ipynb").write_text(json.dumps(notebook))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    command = voila_command(folder, port=port, token=token, allowed_hosts=["classroom.local"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def status(host: str, query: str = f"?token={token}") -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/voila/render/a.ipynb{query}", headers={"Host": host})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=60) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if status(f"127.0.0.1:{port}") == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "voila did not start"
            time.sleep(0.5)
        assert status(f"localhost:{port}") == 200 and status(f"classroom.local:{port}") == 200
        assert status(f"evil.example:{port}") == 403  # DNS rebinding
        assert status(f"127.0.0.1:{port}", query="") in (302, 403)  # no token: the login page, not the dashboard
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/voila/render/a.ipynb?token={token}", timeout=60) as page:
            assert "/srv/secret" not in page.read().decode()  # tracebacks are hidden
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


# ------------------------------------------------------------------------------------------------ case 7
class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["eval", "teacher", "state"])
def test_case_7_a_malicious_file_is_one_line_exit_2_naming_the_global(tmp_path, where, finished_run, capsys):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "x": _Payload(marker)}, evil)
    if where == "eval":
        argv = ["eval", "--arch", "resnet8", "--checkpoint", evil, "--dataset", "synthetic", "--test-size", "32"]
    elif where == "teacher":
        argv = distill(evil, tmp_path / "never")
    else:
        run = copy_run(finished_run, tmp_path / "run")
        (run / "state.pth").write_bytes(evil.read_bytes())
        teacher = json.loads((run / "config.json").read_text())["teacher_checkpoint"]
        argv = distill(Path(teacher), run, "--resume")
    code, _, err = wttm(argv, capsys)
    line = one_line(err)
    assert code == 2 and not marker.exists()
    if where == "state":
        assert "state.pth" in line and "--resume-from-checkpoint" in line
    else:
        assert "posix.system" in line or "os.system" in line
        assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign", "another-run", "random"])
def test_case_7_a_corrupt_or_foreign_state_names_the_file_and_offers_the_checkpoint(
    tmp_path, damage, finished_run, capsys
):
    run = copy_run(finished_run, tmp_path / "run")
    state = run / "state.pth"
    if damage == "truncated":
        state.write_bytes(state.read_bytes()[:5000])
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "foreign":
        torch.save({"weights": torch.zeros(2)}, state)
    elif damage == "another-run":
        payload = torch.load(state, weights_only=True)
        payload["config"] = dict(payload["config"], seed=99)
        torch.save(payload, state)
    else:
        state.write_bytes(os.urandom(4096))
    before = snapshot(run)
    teacher = json.loads((run / "config.json").read_text())["teacher_checkpoint"]
    code, _, err = wttm(distill(Path(teacher), run, "--resume"), capsys)
    line = one_line(err)
    assert code == 2 and str(state) in line and "--resume-from-checkpoint" in line, line
    assert snapshot(run) == before


# ------------------------------------------------------------------------------------------------ case 8
def test_case_8_a_huge_class_count_is_refused_before_any_model_is_built(tmp_path, monkeypatch, capsys) -> None:
    import wttm_core.models.checkpoint as C

    small = save_checkpoint(tmp_path / "s.pth", build_model("resnet8"), arch="resnet8", epoch=1, accuracy=1.0)
    payload = torch.load(small, weights_only=True)
    payload["num_classes"] = 10_000_000
    torch.save(payload, tmp_path / "declares.pth")
    expanded = dict(payload, num_classes=10_000_000)
    model = dict(payload["model"])
    model["fc.weight"] = torch.zeros(64).expand(10_000_000, 64)  # a few bytes viewed as 2.5 GB
    model["fc.bias"] = torch.zeros(1).expand(10_000_000)
    expanded["model"] = model
    torch.save(expanded, tmp_path / "expanded.pth")
    assert (tmp_path / "expanded.pth").stat().st_size < 1_000_000

    built = []
    real_build = C.build_model
    monkeypatch.setattr(C, "build_model", lambda arch, n=100: built.append(n) or real_build(arch, n))
    with pytest.raises(ValueError, match="num_classes=10000000"):
        load_checkpoint(tmp_path / "declares.pth")
    with pytest.raises(ValueError, match="claims shape"):
        load_checkpoint(tmp_path / "expanded.pth")
    assert all(n <= 100 for n in built)
    for name in ("declares.pth", "expanded.pth"):
        argv = ["eval", "--checkpoint", tmp_path / name, "--dataset", "synthetic", "--test-size", "32"]
        code, _, err = wttm(argv, capsys)
        assert code == 2 and name in one_line(err)


# ------------------------------------------------------------------------------------------------ case 9
def _cell(cell_id: str, source: str, tags: tuple[str, ...] = ()) -> dict:
    metadata = {"tags": list(tags)} if tags else {}
    return {"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": metadata, "outputs": []} | {
        "source": source
    }


NOTEBOOK = {
    "cells": [
        _cell("p", "gamma = 0.5\nscale = 1\nresults_dir = None", ("parameters",)),
        _cell(
            "b",
            "if results_dir:\n    from wttm_core.sweep import write_results\n"
            "    write_results(results_dir, {'y': gamma * scale})",
        ),
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def _sweep(tmp_path: Path, **spec: object) -> Path:
    notebook = tmp_path / "nb.ipynb"
    if not notebook.exists():
        notebook.write_text(json.dumps(NOTEBOOK))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "notebook": str(notebook), **spec}))
    return path


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"grid": {"gama": [1, 2]}}, "'gama'"),
        ({"grid": {"gamma": [1]}, "parameters": {"scael": 2}}, "'scael'"),
        ({"points": [{"gamma": 1}, {"not an identifier": 2}]}, "'not an identifier'"),
        ({"grid": {"gamma": [1]}, "results_parameter": "out_dir"}, "'out_dir'"),
        ({"grid": {"gamma": [1], "results_dir": ["/tmp/x"]}}, "set by the sweep itself"),
    ],
    ids=["grid", "parameters", "points", "results-parameter", "results-dir-in-grid"],
)
def test_case_9_unknown_sweep_keys_are_refused_before_anything_runs(tmp_path, spec, named, capsys) -> None:
    code, _, err = wttm(["sweep", _sweep(tmp_path, **spec), "--out", tmp_path / "out"], capsys)
    line = one_line(err)
    assert code == 2 and named in line
    if "identifier" not in line and "set by the sweep" not in line:
        assert "known: gamma, results_dir, scale" in line
    assert not (tmp_path / "out").exists()


def test_case_9_folder_names_keep_signs() -> None:
    from wttm_core.lab.sweep import point_id

    assert point_id({"gamma": -1}).startswith("gamma=-1-") and point_id({"gamma": 1}).startswith("gamma=1-")
    assert point_id({"gamma": -1}) != point_id({"gamma": 1})


@pytest.mark.slow
def test_case_9_a_changed_sweep_reruns_what_changed(tmp_path: Path) -> None:
    from wttm_core.lab.sweep import load_sweep, read_results, run_sweep

    quiet = {"log": lambda message: None, "out": tmp_path / "out"}
    first = run_sweep(load_sweep(_sweep(tmp_path, grid={"gamma": [-1]}, parameters={"scale": 1})), **quiet)
    assert [o.status for o in first.outcomes] == ["done"]
    again = run_sweep(load_sweep(_sweep(tmp_path, grid={"gamma": [-1]}, parameters={"scale": 1})), **quiet)
    assert [o.status for o in again.outcomes] == ["skipped"]
    changed = run_sweep(load_sweep(_sweep(tmp_path, grid={"gamma": [-1]}, parameters={"scale": 3})), **quiet)
    assert [o.status for o in changed.outcomes] == ["done"]
    assert read_results(changed.outcomes[0].directory / "results") == [{"y": -3}]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(notebook.read_text().replace("gamma * scale", "gamma * scale * 2"))
    edited = run_sweep(load_sweep(_sweep(tmp_path, grid={"gamma": [-1]}, parameters={"scale": 3})), **quiet)
    assert [o.status for o in edited.outcomes] == ["done"]
    assert read_results(edited.outcomes[0].directory / "results") == [{"y": -6}]


# ------------------------------------------------------------------------------------------------ case 10
def _bad_teacher(tmp_path: Path, kind: str) -> Path:
    state = build_model("resnet8").state_dict()
    if kind == "nan":
        state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    else:
        state = {k: v.to(torch.int64) if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path / f"{kind}.pth"
    torch.save({"model": state, "arch": "resnet8", "epoch": 1, "accuracy": 1.0}, path)
    return path


@pytest.mark.parametrize("case", ["weight-1e999", "nan-teacher", "integer-teacher"])
def test_case_10_what_can_be_checked_is_checked_before_config_json(tmp_path, teacher_file, case, capsys) -> None:
    out = tmp_path / "never"
    if case == "weight-1e999":
        argv = distill(teacher_file, out)
        argv[argv.index("kd")] = "kd+1e999*wttm"
        argv += ["--gamma", "0.3", "--beta", "1"]
        expected = "finite"
    else:
        argv = distill(_bad_teacher(tmp_path, case.split("-")[0]), out)
        expected = "NaN" if case == "nan-teacher" else "int64"
    code, _, err = wttm(argv, capsys)
    assert code == 2 and expected in one_line(err)
    assert not out.exists()


def test_case_10_a_full_disk_is_one_line_with_the_cause_and_nothing_half_written(
    tmp_path, teacher_file, monkeypatch, capsys
) -> None:
    real_install = rundir._install

    def full_disk(temporary: Path, target: Path) -> None:
        if target.name == "checkpoint.pth":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary))
        real_install(temporary, target)

    monkeypatch.setattr(rundir, "_install", full_disk)
    out = tmp_path / "run"
    code, _, err = wttm(distill(teacher_file, out), capsys)
    line = one_line(err)
    assert code == 1 and "No space left on device" in line
    assert rundir.read_json(out / "config.json")["arch"] == "resnet8"  # complete
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name != LOCK_FILE) == []
    assert not (out / "checkpoint.pth").exists() and not (out / "state.pth").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_case_10_a_real_full_disk(tmp_path: Path, teacher_file: Path, capsys) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = disk / "run"
        code, _, err = wttm(distill(teacher_file, out), capsys)
        line = one_line(err)
        assert code == 1 and "No space left on device" in line
        assert rundir.read_json(out / "config.json")["arch"] == "resnet8"
        assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != LOCK_FILE]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_case_10_messages_are_not_cut(tmp_path: Path, teacher_file: Path, capsys) -> None:
    long_method = "kd+" + "x" * 900
    argv = distill(teacher_file, tmp_path / "o")
    argv[argv.index("kd")] = long_method
    code, _, err = wttm(argv, capsys)
    assert code == 2 and long_method in one_line(err)


def test_case_10_notebook_06_with_a_wrong_runs_dir_says_so(tmp_path: Path) -> None:
    from wttm_core.lab.experiments.examples import load_examples

    for runs_dir in (tmp_path / "no_such_folder", tmp_path):
        with pytest.raises(
            FileNotFoundError, match=r"runs_dir: no runs under .* \((it does not exist|no metrics.jsonl below it)\)"
        ):
            load_examples(runs_dir, log=lambda message: None)
    assert list(tmp_path.iterdir()) == []  # no example set was built anywhere near it


# ------------------------------------------------------------------------------------------------ battery
def _garbage_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "empty": b"",
        "random": os.urandom(2048),
        "json": b'{"model": 1}',
        "zip-not-torch": None,
        "legacy-pickle": pickle.dumps({"model": {"w": 1}}),
        "list": None,
        "state-dict-of-strings": None,
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.pth"
        if name == "zip-not-torch":
            import zipfile

            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("a.txt", "hello")
        elif name == "list":
            torch.save([torch.zeros(1)], path)
        elif name == "state-dict-of-strings":
            torch.save({"model": {"conv1.weight": "nope"}}, path)
        else:
            path.write_bytes(data)  # type: ignore[arg-type]
        paths[name] = path
    paths["directory"] = tmp_path
    paths["missing"] = tmp_path / "absent.pth"
    return paths


def test_battery_bad_checkpoint_files_for_eval_and_distill(tmp_path: Path, capsys) -> None:
    for name, path in _garbage_files(tmp_path).items():
        for argv in (
            ["eval", "--arch", "resnet8", "--checkpoint", path, "--dataset", "synthetic", "--test-size", "16"],
            distill(path, tmp_path / f"out-{name}"),
        ):
            code, _, err = wttm(argv, capsys)
            assert code == 2, (name, argv[0], err)
            one_line(err)
            assert not (tmp_path / f"out-{name}").exists()


DISTILL = ["distill", "--student", "resnet8", "--teacher-checkpoint", "{teacher}", "--out", "{tmp}/o"]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["train-teacher"],
        ["train-teacher", "--arch", "resnet8"],
        ["train-teacher", "--arch", "resnet9000", "--out", "{tmp}/o"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--epochs", "-1"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--epochs", "abc"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--batch-size", "0"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--lr", "nan"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--lr", "1e999"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--device", "tpu"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--amp", "fp8"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--loader", "magic"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--dataset", "imagenet"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--dataset", "cifar100", "--data-dir", "/nope"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--milestones", "5", "2"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/file", "--epochs", "1"],
        ["train-teacher", "--arch", "resnet8", "--out", "{tmp}/o", "--resume", "--force"],
        ["distill", "--student", "resnet8", "--out", "{tmp}/o"],
        ["distill", "--student", "resnet8", "--teacher", "resnet57", "--out", "{tmp}/o"],
        ["distill", "--student", "resnet8", "--teacher-checkpoint", "/nope.pth", "--out", "{tmp}/o"],
        [*DISTILL, "--method", "magic"],
        [*DISTILL, "--gamma", "-1"],
        [*DISTILL, "--method", "wttm+nan*kd"],
        [*DISTILL, "--weighting", "x", "--gamma", "1", "--beta", "1"],
        ["eval"],
        ["eval", "--checkpoint", "{teacher}", "--arch", "resnet9000"],
        ["eval", "--checkpoint", "{teacher}", "--arch", "wrn_16_1", "--dataset", "synthetic"],
        ["eval", "--checkpoint", "{teacher}", "--batch-size", "x"],
        ["presets", "--bogus"],
        ["teachers", "--fetch", "{tmp}/file"],
        ["present", "--port", "abc"],
        ["present", "--port", "0"],
        ["present", "--notebooks", "/no/such/folder"],
        ["present", "--out", "{tmp}/file"],
        ["present", "--allow-host", "a/b"],
        ["sweep"],
        ["sweep", "{tmp}/absent.yaml"],
        ["sweep", "{tmp}/file"],
    ],
)
def test_battery_malformed_arguments_are_one_line_exit_2_and_write_nothing(argv, tmp_path, teacher_file, capsys):
    (tmp_path / "file").write_text("not: [valid")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(tmp=tmp_path, teacher=teacher_file) for a in argv]
    code, _, err = wttm(argv, capsys)
    line = one_line(err)
    assert code == 2 and line.startswith("wttm"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_battery_the_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    """A subprocess, for the real interpreter exit: a malicious checkpoint and a bad flag."""
    evil = tmp_path / "evil.pth"
    torch.save({"model": {}, "x": _Payload(tmp_path / "PWNED")}, evil)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "wttm_core.cli", "eval", "--arch", "resnet8", "--checkpoint", str(evil)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and not (tmp_path / "PWNED").exists()
    assert len(done.stderr.strip().splitlines()) == 1 and "posix.system" in done.stderr


def test_battery_python_m_entry_points_return_exit_codes(tmp_path: Path, capsys) -> None:
    from wttm_core import present, sweep

    assert sweep.main([str(tmp_path / "absent.yaml")]) == 2
    assert present.main(["--port", "x"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_battery_a_planted_lock_link_is_refused_and_its_target_untouched(tmp_path: Path, teacher_file, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (run / LOCK_FILE).symlink_to(target)
    code, _, err = wttm(distill(teacher_file, run), capsys)
    assert code == 2 and "not a plain file" in one_line(err)
    assert target.read_text() == "precious"


@pytest.mark.parametrize("kind", ["sparse", "quantized"])
def test_battery_exotic_tensors_in_a_checkpoint_are_one_line(tmp_path: Path, kind: str, capsys) -> None:
    state = build_model("resnet8").state_dict()
    key = next(k for k, v in state.items() if v.dim() == 2)
    if kind == "sparse":
        state[key] = state[key].to_sparse()
    else:
        state[key] = torch.quantize_per_tensor(state[key], 0.1, 0, torch.qint8)
    torch.save({"model": state, "arch": "resnet8"}, tmp_path / "x.pth")
    code, _, err = wttm(
        ["eval", "--checkpoint", tmp_path / "x.pth", "--dataset", "synthetic", "--test-size", "8"], capsys
    )
    assert code == 2 and key in one_line(err)


def test_battery_a_planted_manifest_entry_cannot_reach_outside_the_folder(tmp_path: Path, capsys) -> None:
    from wttm_core.lab.present import MANIFEST

    victim = tmp_path / "victim.ipynb"
    victim.write_text("precious")
    out = tmp_path / "present"
    out.mkdir()
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    manifest = {"format": "wttm-present/1", "files": {"../victim.ipynb": digest, str(victim): digest}}
    (out / MANIFEST).write_text(json.dumps(manifest))
    code, printed, err = wttm(["present", "--notebooks", REPO / "notebooks", "--out", out, "--dry-run"], capsys)
    assert code == 0 and "victim" not in printed + err
    from wttm_core.lab.present import write_presentation

    write_presentation(REPO / "notebooks", out)
    assert victim.read_text() == "precious"
