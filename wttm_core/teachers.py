"""The six standard CIFAR-100 teachers: what they are, where to get them, how to unpack and check them.

Every KD paper on CIFAR-100 (including TTM / WTTM, Zheng & Yang, ICLR 2024, Tables 1 and 3) distils from the
same published teachers of the CRD code base. Their original host has been unreachable since 2022; the copy
in use is the mdistiller release archive :data:`DEFAULT_URL`, which unpacks to
``cifar_teachers/<arch>_vanilla/ckpt_epoch_240.pth``.

- :data:`STANDARD_TEACHERS`: name -> :class:`Teacher` (architecture, published top-1, relative path, SHA-256
  where known). Only one digest is published; the others are recorded in ``cifar_teachers/digests.json``
  the first time a file loads strictly into its architecture (:func:`load_teacher`), and checked from then on.
  Digests are never invented.
- :func:`fetch_teachers` downloads the archive (progress bar, retries with backoff, resume of a partial
  download with an HTTP Range request), unpacks it without path traversal, checks the known digests and
  installs the files atomically. Offline it fails with one message that says what to download and where to
  unpack it.
- :func:`find_teacher_checkpoint` / :func:`load_teacher` locate and load a teacher.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType

from torch import nn
from tqdm.auto import tqdm

from wttm_core._checks import check_int, check_number
from wttm_core.atomic import atomic_write
from wttm_core.models import MODEL_NAMES, load_checkpoint

#: The mdistiller release asset holding the CRD teachers (about 364 MB).
DEFAULT_URL = "https://github.com/megvii-research/mdistiller/releases/download/checkpoints/cifar_teachers.tar"
ARCHIVE_NAME = "cifar_teachers.tar"
ARCHIVE_ROOT = "cifar_teachers"
CHECKPOINT_NAME = "ckpt_epoch_240.pth"
DIGESTS_FILE = "digests.json"
_CHUNK = 1 << 20


def teacher_relative_path(arch: str) -> str:
    """``<arch>_vanilla/ckpt_epoch_240.pth``: where a teacher lives inside ``cifar_teachers/``."""
    return f"{arch}_vanilla/{CHECKPOINT_NAME}"


@dataclass(frozen=True)
class Teacher:
    """One published CIFAR-100 teacher."""

    name: str
    arch: str
    #: Test top-1 (%) as published by the CRD code base.
    accuracy: float
    #: Path inside ``cifar_teachers/``.
    relative_path: str
    #: SHA-256 of the checkpoint file, or None where no digest is published (recorded on first verified use).
    sha256: str | None = None
    note: str = ""
    source: str = DEFAULT_URL


def _teacher(arch: str, accuracy: float, sha256: str | None = None, note: str = "") -> Teacher:
    return Teacher(arch, arch, accuracy, teacher_relative_path(arch), sha256, note)


#: The six standard teachers (name = architecture name).
STANDARD_TEACHERS: Mapping[str, Teacher] = MappingProxyType(
    {
        t.name: t
        for t in (
            _teacher("wrn_40_2", 75.61),
            _teacher("resnet56", 72.34),
            _teacher(
                "resnet110",
                74.31,
                note="A user measured the published resnet110 teacher at 70.27% top-1 instead of the stated "
                "74.31%; evaluate it (wttm eval) before relying on it.",
            ),
            _teacher("resnet32x4", 79.42, "22aa12e2b632b19ddde155ccf2388671842ddd304824b3095e0a7fff364beb4f"),
            _teacher("vgg13", 74.64),
            _teacher("ResNet50", 79.34),
        )
    }
)


class TeacherDownloadError(OSError):
    """The teacher archive could not be downloaded; the message says how to get it by hand."""


class TeacherDigestError(ValueError):
    """A file's SHA-256 differs from the published or recorded digest; the file was not installed / used."""


class UnsafeArchiveError(ValueError):
    """The archive has a member that would land outside the destination (absolute path, ``..``, link out)."""


# --- digests ----------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_digests(teachers_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The digests recorded in ``<teachers_dir>/digests.json`` (relative path -> hex SHA-256); {} if none."""
    path = Path(teachers_dir) / DIGESTS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it to start recording afresh") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path} must map relative paths to hex digests")
    return data


def known_digest(relative_path: str, teachers_dir: str | os.PathLike[str]) -> str | None:
    """The published digest of a file inside ``cifar_teachers/``, else the recorded one, else None."""
    for teacher in STANDARD_TEACHERS.values():
        if teacher.relative_path == relative_path and teacher.sha256:
            return teacher.sha256
    return recorded_digests(teachers_dir).get(relative_path)


def record_digest(teachers_dir: str | os.PathLike[str], relative_path: str, digest: str) -> None:
    """Add ``relative_path -> digest`` to ``digests.json`` (written atomically)."""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"digest must be 64 lowercase hex characters, got {digest!r}")
    digests = recorded_digests(teachers_dir)
    digests[relative_path] = digest
    with atomic_write(Path(teachers_dir) / DIGESTS_FILE, "w") as handle:
        json.dump(dict(sorted(digests.items())), handle, indent=2)
        handle.write("\n")


# --- locating and loading ---------------------------------------------------------------------------------


def _teacher_arch(name: object, argument: str = "name") -> str:
    if not isinstance(name, str):
        raise TypeError(f"{argument} must be a string, got {type(name).__name__}")
    if name in STANDARD_TEACHERS:
        return STANDARD_TEACHERS[name].arch
    if name in MODEL_NAMES:
        return name
    raise ValueError(
        f"{argument}: unknown teacher {name!r}; standard teachers: {', '.join(STANDARD_TEACHERS)} "
        f"(any architecture name with an <arch>_vanilla folder works too)"
    )


def _manual_instructions(dest: Path, url: str) -> str:
    return (
        f"download {url} by hand (browser, or: curl -L -o {dest / ARCHIVE_NAME} {url}) and unpack it into "
        f"{dest} (tar -xf {dest / ARCHIVE_NAME} -C {dest}) so that "
        f"{dest}/{ARCHIVE_ROOT}/<arch>_vanilla/{CHECKPOINT_NAME} exists; or leave the archive at "
        f"{dest / ARCHIVE_NAME} and run fetch_teachers / `wttm teachers --fetch {dest}` again to unpack and check it"
    )


def find_teacher_checkpoint(name: str, root: str | os.PathLike[str]) -> Path:
    """Path of a teacher's checkpoint under ``root``.

    ``root`` is the folder the archive was unpacked into (holding ``cifar_teachers/``) or the
    ``cifar_teachers`` folder itself. ``name`` is a standard teacher or any architecture name.
    Raises FileNotFoundError saying what to download and where to put it.
    """
    arch = _teacher_arch(name)
    root = Path(root)
    relative = teacher_relative_path(arch)
    for candidate in (root / ARCHIVE_ROOT / relative, root / relative):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no checkpoint for teacher {name!r} under {root} (looked for {root / ARCHIVE_ROOT / relative}): "
        f"run fetch_teachers({str(root)!r}) or `wttm teachers --fetch {root}`, or "
        + _manual_instructions(root, DEFAULT_URL)
    )


@dataclass(frozen=True)
class TeacherChoice:
    """Which teacher a run uses: its architecture, its file and the digest that file must have."""

    arch: str
    path: Path
    #: The published or recorded SHA-256 the file must have; None for a checkpoint of the user's own.
    sha256: str | None
    #: Where the file's digest is recorded on first verified use (the ``cifar_teachers/`` folder of
    #: ``teacher_dir`` holding it), or None.
    record_in: Path | None = None


def _teachers_layout(path: Path) -> tuple[str, Path] | None:
    """``(arch, teachers folder)`` when ``path`` is laid out as ``<folder>/<arch>_vanilla/ckpt_epoch_240.pth``."""
    if path.name != CHECKPOINT_NAME or not path.parent.name.endswith("_vanilla"):
        return None
    arch = path.parent.name.removesuffix("_vanilla")
    return (arch, path.parent.parent) if arch in MODEL_NAMES else None


def _file_arch(path: Path) -> str:
    from wttm_core.models import infer_arch, read_checkpoint

    arch = infer_arch(path, read_checkpoint(path))
    if arch is None:
        raise ValueError(f"teacher_checkpoint: cannot tell the architecture of {path}; name it with teacher")
    return arch


def resolve_teacher(
    teacher: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    *,
    teacher_dir: str | os.PathLike[str] = "data",
) -> TeacherChoice:
    """The one answer to "which architecture, which file, which digest" for a teacher.

    ``teacher`` is a standard teacher's name or an architecture; ``checkpoint`` a file (default: the standard
    file under ``teacher_dir``, see :func:`find_teacher_checkpoint`). Without ``teacher`` the architecture is
    the file's own (its ``arch`` entry or its ``<arch>_vanilla`` folder). A file in a teachers folder's layout
    (``<arch>_vanilla/ckpt_epoch_240.pth``), or one that resolves through symbolic links to such a file, must
    have the published digest or the one recorded next to it, wherever it was reached from; any other file is
    the user's own and has no digest.
    Raises ``ValueError`` for an unknown name or a missing / unreadable file, ``FileNotFoundError`` (saying
    what to download) for a standard teacher that is not installed.
    """
    if teacher is None and checkpoint is None:
        raise ValueError("teacher: give a teacher and/or a teacher checkpoint")
    arch = _teacher_arch(teacher, "teacher") if teacher is not None else None
    if checkpoint is None:
        try:
            path = find_teacher_checkpoint(str(teacher), teacher_dir)
        except FileNotFoundError:
            if teacher in STANDARD_TEACHERS:
                raise
            raise ValueError(
                f"teacher_checkpoint: {teacher!r} is not a standard teacher and {teacher_dir} holds no "
                f"{teacher}_vanilla/ folder; give the path of a trained checkpoint"
            ) from None
    else:
        path = Path(checkpoint)
        if not path.is_file():
            raise ValueError(f"teacher_checkpoint: no such file {checkpoint}")
    arch = arch or _file_arch(path)
    real = Path(os.path.realpath(path))
    for candidate in (path, real):
        located = _teachers_layout(candidate)
        if located is None or located[0] != arch:
            continue
        home = None
        with contextlib.suppress(FileNotFoundError, ValueError):
            home = find_teacher_checkpoint(arch, teacher_dir)
        record_in = located[1] if home is not None and os.path.samefile(home, real) else None
        return TeacherChoice(arch, path, known_digest(teacher_relative_path(arch), located[1]), record_in)
    return TeacherChoice(arch, path, None)


def load_resolved_teacher(choice: TeacherChoice, *, num_classes: int | None = None, record: bool = True) -> nn.Module:
    """Load the file of ``choice`` strictly into its architecture (eval mode, CPU), checking the digest of the
    very bytes that are loaded (:class:`TeacherDigestError` on a mismatch). A standard teacher's file without
    a digest gets it recorded in ``digests.json`` once it has loaded strictly (``record=True``)."""
    from wttm_core.models import DigestMismatchError

    recording = choice.sha256 is None and choice.record_in is not None and record
    # to record a digest, hash the file first: the load then checks that it reads exactly those bytes
    expected = sha256_file(choice.path) if recording else choice.sha256
    try:
        model = load_checkpoint(choice.path, arch=choice.arch, num_classes=num_classes, expected_sha256=expected)
    except DigestMismatchError as exc:
        raise TeacherDigestError(
            f"{exc}; the file is not the published teacher (corrupt or replaced). Delete it and fetch the "
            "teachers again."
        ) from None
    if recording:
        record_digest(choice.record_in, teacher_relative_path(choice.arch), expected)  # type: ignore[arg-type]
    return model


def load_teacher(name: str, root: str | os.PathLike[str], *, record: bool = True) -> nn.Module:
    """Find, verify and load a teacher strictly into its architecture (eval mode, CPU).

    A file with a published or recorded digest must match it (:class:`TeacherDigestError` otherwise). A file
    without one gets its digest recorded in ``digests.json`` once it has loaded strictly (``record=True``),
    so later substitutions are detected. See :func:`resolve_teacher`.
    """
    return load_resolved_teacher(resolve_teacher(name, teacher_dir=root), record=record)


# --- downloading ------------------------------------------------------------------------------------------


class _RestartDownload(OSError):
    """The partial file cannot be resumed; start from byte 0."""


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download_once(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """One HTTP request: resume ``part`` from its current size, or write it from scratch."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "wttm-teachers"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing after `offset`: complete already, or the file changed
            match = re.search(r"/(\d+)", exc.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:
                return
            part.unlink()
            raise _RestartDownload("the partial download does not fit the remote file") from None
        raise
    with response:
        status = getattr(response, "status", None)
        length = response.headers.get("Content-Length")
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
        if offset and status == 206 and match:
            if int(match.group(1)) != offset:
                part.unlink()
                raise _RestartDownload("the server resumed at the wrong offset")
            total = None if match.group(3) == "*" else int(match.group(3))
            mode = "ab"
        else:  # a full response: the server ignored the Range header, or there was nothing to resume
            offset, mode = 0, "wb"
            total = int(length) if length is not None else None
        with (
            open(part, mode) as handle,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                handle.write(chunk)
                bar.update(len(chunk))
    size = part.stat().st_size
    if total is not None and size != total:
        raise http.client.IncompleteRead(b"", total - size)


def _is_permanent(exc: BaseException) -> bool:
    """HTTP client errors other than timeouts / rate limits will not go away by retrying."""
    return isinstance(exc, urllib.error.HTTPError) and 400 <= exc.code < 500 and exc.code not in (408, 429)


def download_file(
    url: str,
    target: str | os.PathLike[str],
    *,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
    backoff: float = 1.0,
) -> Path:
    """Download ``url`` to ``target`` via ``<target>.part``, resuming and retrying; rename when complete.

    Connection errors, timeouts, 5xx answers and truncated bodies are retried up to ``retries`` times, after
    ``backoff * 2**k`` seconds; each retry resumes the partial file with an HTTP Range request (or starts over
    when the server ignores it). Raises the last error when all attempts fail.
    """
    target = Path(target)
    part = target.with_name(target.name + ".part")
    for attempt in range(retries + 1):
        try:
            _download_once(url, part, timeout=timeout, progress=progress)
            break
        except (OSError, http.client.HTTPException) as exc:
            if _is_permanent(exc) or attempt == retries:
                raise
            time.sleep(0 if isinstance(exc, _RestartDownload) else backoff * 2**attempt)
    os.replace(part, target)
    return target


# --- unpacking --------------------------------------------------------------------------------------------


#: tarfile's extraction filter (Python >= 3.12 and 3.11.4+), or None where this Python lacks it (3.11.0-3.11.3).
_DATA_FILTER = getattr(tarfile, "data_filter", None)
_FILTER_ERROR: type[Exception] | tuple[()] = getattr(tarfile, "FilterError", ())


def _check_member(member: tarfile.TarInfo, dest: Path) -> None:
    """Reject a member that is not a plain file or folder (every link, device, fifo: the standard archive has
    none) or whose path, resolved on disk, would land outside ``dest``."""
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("\\") or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    if ".." in path.parts or ".." in PurePosixPath(name.replace("\\", "/")).parts:
        raise UnsafeArchiveError(f"archive member {name!r} climbs out of the destination ('..')")
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        raise UnsafeArchiveError(f"archive member {name!r} is a {kind} link (to {member.linkname!r}); refused")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"archive member {name!r} is a device or fifo")
    root = os.path.realpath(dest)
    resolved = os.path.realpath(os.path.join(root, *path.parts))
    if os.path.commonpath([root, resolved]) != root:
        raise UnsafeArchiveError(f"archive member {name!r} resolves outside the destination ({resolved})")
    if _DATA_FILTER is not None:
        try:
            _DATA_FILTER(member, root)
        except _FILTER_ERROR as exc:
            raise UnsafeArchiveError(f"archive member {name!r} refused by tarfile's data filter: {exc}") from None


def _open_archive(archive: str | os.PathLike[str]) -> tarfile.TarFile:
    try:
        return tarfile.open(archive)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError) and exc.errno is not None:
            raise
        raise ValueError(f"{archive} is not a readable tar archive ({exc}); is it the teacher archive?") from None


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Unpack a tar archive of plain files and folders into ``dest``, after checking every member.

    Links of any kind, devices and fifos are refused outright, as are absolute and ``..`` paths and paths that
    resolve outside ``dest`` (:class:`UnsafeArchiveError`); tarfile's ``"data"`` filter checks each member
    too where this Python has it. Files are written by this function (no owner, mode or link metadata from
    the archive is applied), so the result is the same on Pythons without the filter. A file that is not a
    tar archive, or a truncated one, raises ``ValueError``.
    """
    dest = Path(dest)
    with _open_archive(archive) as tar:
        try:
            members = tar.getmembers()
            for member in members:
                _check_member(member, dest)
            for member in members:
                _extract_member(tar, member, dest)
        except (tarfile.TarError, EOFError) as exc:
            raise ValueError(f"{archive} is damaged ({type(exc).__name__}: {exc}); download it again") from None


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    target = dest.joinpath(*PurePosixPath(member.name).parts)
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:  # pragma: no cover - a regular file always has data
        raise UnsafeArchiveError(f"archive member {member.name!r} has no data")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with source, os.fdopen(os.open(target, flags, 0o644), "wb") as handle:
        shutil.copyfileobj(source, handle, _CHUNK)
        if handle.tell() != member.size:
            raise ValueError(f"archive member {member.name!r} is truncated; download the archive again")


def _install(archive: Path, dest: Path) -> Path:
    """Unpack into a staging folder, verify known digests, then move the files into ``dest/cifar_teachers``.

    Nothing reaches ``dest/cifar_teachers`` unless every file with a known digest matches it.
    """
    teachers_dir = dest / ARCHIVE_ROOT
    staging = Path(tempfile.mkdtemp(prefix=".cifar_teachers-", dir=dest))
    try:
        safe_extract(archive, staging)
        unpacked = staging / ARCHIVE_ROOT
        if not unpacked.is_dir():
            raise ValueError(f"{archive} does not contain a {ARCHIVE_ROOT}/ folder; is it the teacher archive?")
        files = sorted(p for p in unpacked.rglob("*") if p.is_file() and not p.is_symlink() and p.name != DIGESTS_FILE)
        bad = []
        for file in files:
            relative = file.relative_to(unpacked).as_posix()
            expected = known_digest(relative, teachers_dir)
            if expected is not None and (actual := sha256_file(file)) != expected:
                file.unlink()
                bad.append(f"{relative}: SHA-256 {actual}, expected {expected}")
        if bad:
            raise TeacherDigestError(
                f"{archive} holds files that differ from the known digests (nothing was installed, the "
                "archive was removed): " + "; ".join(bad)
            )
        for file in files:
            if not file.exists():
                continue
            target = teachers_dir / file.relative_to(unpacked)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return teachers_dir


def _has_all_standard(teachers_dir: Path) -> bool:
    return all((teachers_dir / t.relative_path).is_file() for t in STANDARD_TEACHERS.values())


def _check_fetch_arguments(
    dest: object, url: object, retries: object, timeout: object, expected_sha256: object
) -> None:
    if not isinstance(dest, (str, os.PathLike)):
        raise TypeError(f"dest must be a str or os.PathLike, got {type(dest).__name__}")
    if not isinstance(url, str) or not url:
        raise ValueError(f"url must be a non-empty string, got {url!r}")
    check_int("retries", retries, low=0)
    check_number("timeout", timeout, low=0, low_open=True)  # seconds
    if expected_sha256 is not None and (
        not isinstance(expected_sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected_sha256)
    ):
        raise ValueError(f"expected_sha256 must be 64 hex characters, got {expected_sha256!r}")


def fetch_teachers(
    dest: str | os.PathLike[str],
    url: str = DEFAULT_URL,
    *,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
    expected_sha256: str | None = None,
    backoff: float = 1.0,
    force: bool = False,
    keep_archive: bool = False,
) -> Path:
    """Download and unpack the CIFAR-100 teacher archive into ``dest``; return ``dest/cifar_teachers``.

    - Skips everything when all six standard teachers are already there (unless ``force``).
    - Uses ``dest/cifar_teachers.tar`` if it is already there (a manual download); otherwise downloads
      ``url`` with a progress bar, ``retries`` retries with exponential ``backoff`` and HTTP Range resume of
      ``dest/cifar_teachers.tar.part``.
    - ``expected_sha256``: optional digest of the archive itself; a mismatch removes it.
    - Unpacks without path traversal, checks every file that has a published or recorded digest (a
      mismatch raises :class:`TeacherDigestError` and installs nothing), moves the files into place one
      atomic rename each, and deletes the archive unless ``keep_archive``.

    Raises :class:`TeacherDownloadError` when the archive cannot be downloaded, with what to fetch by hand
    and where to unpack it.
    """
    _check_fetch_arguments(dest, url, retries, timeout, expected_sha256)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    teachers_dir = dest / ARCHIVE_ROOT
    if not force and _has_all_standard(teachers_dir):
        return teachers_dir

    archive = dest / ARCHIVE_NAME
    if force or not archive.is_file():
        try:
            download_file(url, archive, retries=retries, timeout=timeout, progress=progress, backoff=backoff)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise TeacherDownloadError(
                f"could not download the CIFAR-100 teachers from {url} ({reason}). To install them without "
                "this download, " + _manual_instructions(dest, url)
            ) from exc

    try:
        if expected_sha256 is not None and (actual := sha256_file(archive)) != expected_sha256.lower():
            raise TeacherDigestError(
                f"{archive}: SHA-256 {actual} differs from expected_sha256 {expected_sha256.lower()} "
                "(the archive was removed)"
            )
        _install(archive, dest)
    except (ValueError, tarfile.TarError):  # digest mismatch, unsafe or wrong or corrupt archive
        with contextlib.suppress(FileNotFoundError):
            archive.unlink()
        raise
    if not keep_archive:
        archive.unlink()
    return teachers_dir
