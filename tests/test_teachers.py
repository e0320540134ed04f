"""Teachers: the standard list, and fetching a generated teacher archive from a local http.server (no real
network): download + unpack + load, resume of partial downloads, retries, digests, traversal, offline help."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from wttm_core.models import build_model, save_checkpoint
from wttm_core.teachers import (
    DEFAULT_URL,
    STANDARD_TEACHERS,
    TeacherDigestError,
    TeacherDownloadError,
    UnsafeArchiveError,
    fetch_teachers,
    find_teacher_checkpoint,
    load_teacher,
    recorded_digests,
    sha256_file,
)

FAST = {"retries": 2, "timeout": 5.0, "progress": False, "backoff": 0.01}


def test_standard_teachers_are_the_published_six() -> None:
    expected = {
        "wrn_40_2": 75.61,
        "resnet56": 72.34,
        "resnet110": 74.31,
        "resnet32x4": 79.42,
        "vgg13": 74.64,
        "ResNet50": 79.34,
    }
    assert {name: t.accuracy for name, t in STANDARD_TEACHERS.items()} == expected
    for name, teacher in STANDARD_TEACHERS.items():
        assert teacher.arch == name
        assert teacher.relative_path == f"{name}_vanilla/ckpt_epoch_240.pth"
    digests = {name: t.sha256 for name, t in STANDARD_TEACHERS.items() if t.sha256}
    assert digests == {"resnet32x4": "22aa12e2b632b19ddde155ccf2388671842ddd304824b3095e0a7fff364beb4f"}
    assert "70.27" in STANDARD_TEACHERS["resnet110"].note
    assert (
        DEFAULT_URL == "https://github.com/megvii-research/mdistiller/releases/download/checkpoints/cifar_teachers.tar"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        STANDARD_TEACHERS["resnet56"].accuracy = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        STANDARD_TEACHERS["x"] = STANDARD_TEACHERS["resnet56"]  # type: ignore[index]


# --- a teacher archive in the published format, and a small server for it -------------------------------


def _checkpoint_bytes(tmp: Path, arch: str, seed: int) -> bytes:
    torch.manual_seed(seed)
    path = save_checkpoint(tmp / f"{arch}-{seed}.pth", build_model(arch), arch=arch, epoch=240, accuracy=50.0)
    data = path.read_bytes()
    path.unlink()
    return data


def _tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def teacher_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two tiny real teachers (resnet8, wrn_16_1) in the standard layout, as the archive holds them."""
    tmp = tmp_path_factory.mktemp("teachers")
    return {
        "cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": _checkpoint_bytes(tmp, "resnet8", 0),
        "cifar_teachers/wrn_16_1_vanilla/ckpt_epoch_240.pth": _checkpoint_bytes(tmp, "wrn_16_1", 0),
    }


@pytest.fixture(scope="module")
def archive(teacher_files: dict[str, bytes]) -> bytes:
    return _tar(teacher_files)


@dataclasses.dataclass
class Server:
    """Serves ``payload`` at /cifar_teachers.tar with Range support and scripted failures."""

    payload: bytes = b""
    drop_first: int = 0  # close the connection without answering, this many times
    truncate_first: int = 0  # send only half the body, this many times
    honour_range: bool = True
    status: int | None = None  # answer every request with this error status
    requests: list[tuple[str | None, int, int]] = dataclasses.field(default_factory=list)  # (Range, status, bytes)
    url: str = ""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        state = self.server.state  # type: ignore[attr-defined]
        requested = self.headers.get("Range")
        if state.status is not None:
            state.requests.append((requested, state.status, 0))
            self.send_error(state.status)
            return
        if state.drop_first > 0:
            state.drop_first -= 1
            state.requests.append((requested, 0, 0))
            self.close_connection = True
            return
        data, start, status = state.payload, 0, 200
        if requested and state.honour_range:
            start = int(requested.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                state.requests.append((requested, 416, 0))
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if state.truncate_first > 0:
            state.truncate_first -= 1
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)
        state.requests.append((requested, status, len(body)))


@pytest.fixture
def server(archive: bytes) -> Iterator[Server]:
    state = Server(payload=archive)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/cifar_teachers.tar"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/cifar_teachers.tar"


# --- tests ------------------------------------------------------------------------------------------------


def test_download_unpack_and_load(tmp_path: Path, server: Server, teacher_files: dict[str, bytes], capsys) -> None:
    teachers_dir = fetch_teachers(tmp_path, server.url, retries=0, timeout=5.0, progress=True)
    assert "cifar_teachers.tar" in capsys.readouterr().err  # the progress bar
    assert teachers_dir == tmp_path / "cifar_teachers"
    for name, data in teacher_files.items():
        assert (tmp_path / name).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar_teachers"]  # archive and staging removed
    assert server.requests == [(None, 200, len(server.payload))]

    path = find_teacher_checkpoint("resnet8", tmp_path)
    assert path == tmp_path / "cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth"
    assert find_teacher_checkpoint("resnet8", teachers_dir) == path  # root may also be cifar_teachers itself
    model = load_teacher("wrn_16_1", tmp_path)
    assert not model.training and model.fc.out_features == 100
    # the unknown digest was recorded on this first verified use
    digest = hashlib.sha256(teacher_files["cifar_teachers/wrn_16_1_vanilla/ckpt_epoch_240.pth"]).hexdigest()
    assert recorded_digests(teachers_dir) == {"wrn_16_1_vanilla/ckpt_epoch_240.pth": digest}
    assert json.loads((teachers_dir / "digests.json").read_text()) == recorded_digests(teachers_dir)


def test_resume_a_partial_download_with_range(tmp_path: Path, server: Server) -> None:
    half = len(server.payload) // 3
    (tmp_path / "cifar_teachers.tar.part").write_bytes(server.payload[:half])
    fetch_teachers(tmp_path, server.url, **FAST)
    assert server.requests == [(f"bytes={half}-", 206, len(server.payload) - half)]
    assert find_teacher_checkpoint("resnet8", tmp_path).is_file()
    assert not (tmp_path / "cifar_teachers.tar.part").exists()


def test_a_server_ignoring_range_restarts_cleanly(tmp_path: Path, server: Server) -> None:
    server.honour_range = False
    (tmp_path / "cifar_teachers.tar.part").write_bytes(b"garbage" * 100)
    fetch_teachers(tmp_path, server.url, **FAST)
    assert server.requests == [("bytes=700-", 200, len(server.payload))]
    assert load_teacher("resnet8", tmp_path).fc.in_features == 64


def test_retry_after_dropped_connection_and_truncated_body(tmp_path: Path, server: Server) -> None:
    server.drop_first = 1
    server.truncate_first = 1
    fetch_teachers(tmp_path, server.url, **FAST)
    half = (len(server.payload)) // 2
    assert server.requests == [
        (None, 0, 0),  # connection closed without an answer
        (None, 200, half),  # body cut short
        (f"bytes={half}-", 206, len(server.payload) - half),  # resumed where it stopped
    ]
    assert find_teacher_checkpoint("wrn_16_1", tmp_path).is_file()


def test_unreachable_url_says_what_to_download_and_where(tmp_path: Path) -> None:
    url = _closed_port_url()
    dest = tmp_path / "teachers"
    with pytest.raises(TeacherDownloadError) as info:
        fetch_teachers(dest, url, **FAST)
    message = str(info.value)
    assert f"could not download the CIFAR-100 teachers from {url}" in message
    assert f"unpack it into {dest}" in message
    assert f"{dest}/cifar_teachers/<arch>_vanilla/ckpt_epoch_240.pth" in message
    assert isinstance(info.value, OSError)
    # the hint for a missing teacher says the same
    with pytest.raises(FileNotFoundError, match=r"no checkpoint for teacher 'resnet56'.*download https://github.com"):
        find_teacher_checkpoint("resnet56", dest)


def test_a_manually_placed_archive_is_unpacked_without_network(tmp_path: Path, archive: bytes) -> None:
    (tmp_path / "cifar_teachers.tar").write_bytes(archive)
    fetch_teachers(tmp_path, _closed_port_url(), **FAST, keep_archive=True)
    assert find_teacher_checkpoint("resnet8", tmp_path).is_file()
    assert (tmp_path / "cifar_teachers.tar").is_file()


def test_http_errors_that_retrying_cannot_fix_fail_at_once(tmp_path: Path, server: Server) -> None:
    server.status = 404
    with pytest.raises(TeacherDownloadError, match="Not Found"):
        fetch_teachers(tmp_path, server.url, **FAST)
    assert len(server.requests) == 1  # no retries for a 404
    server.status, server.requests = 503, []
    with pytest.raises(TeacherDownloadError, match="Service Unavailable"):
        fetch_teachers(tmp_path, server.url, **FAST)
    assert len(server.requests) == 1 + FAST["retries"]  # a 5xx may pass: retried


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"../evil.txt": b"x"}, None),
        ({"/tmp/wttm-evil.txt": b"x"}, None),
        ({"cifar_teachers/../../evil.txt": b"x"}, None),
        ({}, {"cifar_teachers/link": "/etc"}),
        ({}, {"cifar_teachers/link": "../../outside"}),
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "symlink-absolute", "symlink-escape"],
)
def test_traversal_archives_are_refused(tmp_path: Path, members: dict, links: dict | None) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    payload = _tar({"cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": b"ok", **members}, links)
    (dest / "cifar_teachers.tar").write_bytes(payload)
    with pytest.raises(UnsafeArchiveError, match="archive member"):
        fetch_teachers(dest, _closed_port_url(), **FAST)
    assert list(dest.iterdir()) == []  # nothing unpacked, the bad archive and the staging folder removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]
    assert not Path("/tmp/wttm-evil.txt").exists()


def test_known_digest_mismatch_installs_nothing(tmp_path: Path, archive: bytes, teacher_files) -> None:
    # a file posing as the resnet32x4 teacher, whose SHA-256 is published
    fake = _tar({**teacher_files, "cifar_teachers/resnet32x4_vanilla/ckpt_epoch_240.pth": b"not the teacher"})
    (tmp_path / "cifar_teachers.tar").write_bytes(fake)
    with pytest.raises(TeacherDigestError, match=r"resnet32x4_vanilla/ckpt_epoch_240.pth: SHA-256 [0-9a-f]{64}, "):
        fetch_teachers(tmp_path, _closed_port_url(), **FAST)
    assert list(tmp_path.iterdir()) == []


def test_recorded_digest_catches_a_replaced_teacher(tmp_path: Path, server: Server, teacher_files) -> None:
    fetch_teachers(tmp_path, server.url, **FAST)
    load_teacher("resnet8", tmp_path)  # records the digest
    good = find_teacher_checkpoint("resnet8", tmp_path)
    good_digest = sha256_file(good)

    # the server now hands out a different resnet8: refused, and the installed file is untouched
    other = _checkpoint_bytes(tmp_path, "resnet8", seed=1)
    server.payload = _tar({**teacher_files, "cifar_teachers/resnet8_vanilla/ckpt_epoch_240.pth": other})
    with pytest.raises(TeacherDigestError, match="resnet8_vanilla"):
        fetch_teachers(tmp_path, server.url, **FAST, force=True)
    assert sha256_file(good) == good_digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar_teachers"]

    # a file swapped on disk is caught when it is used
    good.write_bytes(other)
    with pytest.raises(TeacherDigestError, match="differs from the known digest"):
        load_teacher("resnet8", tmp_path)


def test_archive_digest_is_checked_when_given(tmp_path: Path, server: Server) -> None:
    with pytest.raises(TeacherDigestError, match="expected_sha256"):
        fetch_teachers(tmp_path, server.url, **FAST, expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []
    fetch_teachers(tmp_path, server.url, **FAST, expected_sha256=hashlib.sha256(server.payload).hexdigest())
    assert find_teacher_checkpoint("resnet8", tmp_path).is_file()


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="name: unknown teacher 'resnet57'"):
        find_teacher_checkpoint("resnet57", tmp_path)
    with pytest.raises(ValueError, match="retries"):
        fetch_teachers(tmp_path, retries=-1)
    with pytest.raises(ValueError, match="expected_sha256"):
        fetch_teachers(tmp_path, expected_sha256="abc")
    with pytest.raises(TypeError, match="dest"):
        fetch_teachers(3)  # type: ignore[arg-type]
