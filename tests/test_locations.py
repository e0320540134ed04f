"""Where things go and where they are found: runs and caches in the working folder, never in the package; the
shipped files (paper numbers, example runs, the small teacher, the notebooks) found from a checkout and from a
non-editable install, which also runs a notebook from another folder without writing into site-packages."""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from wttm_core import resources
from wttm_core.lab import shipped_teacher as st
from wttm_core.lab.experiments.orchestrate import WORK_DIR_ENV, ensure_teacher, load_data, project_root, resolve_path

ROOT = Path(__file__).resolve().parents[1]


def test_the_working_folder_is_the_env_the_checkout_or_the_cwd(tmp_path, monkeypatch):
    monkeypatch.delenv(WORK_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert project_root() == tmp_path.resolve() and resolve_path("build/x") == tmp_path.resolve() / "build/x"
    monkeypatch.chdir(ROOT / "notebooks")  # a JupyterLab kernel in a checkout: the checkout's build/
    assert project_root() == ROOT
    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path / "w"))
    assert project_root() == (tmp_path / "w").resolve()
    assert resolve_path("/abs/path") == Path("/abs/path")


@pytest.mark.slow
def test_a_teacher_is_cached_under_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(WORK_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    data = load_data("synthetic", 64, 32)
    out = ensure_teacher("resnet8", dataset="synthetic", epochs=1, data=data, device="cpu", quiet=True, log=print)
    assert out.parent == tmp_path.resolve() / "build" / "teachers" and (out / "checkpoint.pth").is_file()
    assert any((tmp_path / "build" / "locks").iterdir())


def test_shipped_files_are_found_and_setup_copies_the_same_list():
    assert resources.shipped("data/paper_results.csv").is_file()
    assert (resources.shipped("data/example_runs") / "manifest.json").is_file()
    assert resources.shipped("notebooks").is_dir()
    with pytest.raises(FileNotFoundError, match="not shipped"):
        resources.shipped("data/nothing.csv")
    with pytest.raises(ValueError, match="inside the project"):
        resources.shipped("../etc/passwd")
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED"
    )
    assert tuple(listed) == resources.SHIPPED


def test_the_shipped_teacher_is_small_and_its_digest_is_recorded():
    for teacher in st.SHIPPED_TEACHERS.values():
        path = resources.shipped(teacher.path)
        assert path.stat().st_size < 1_000_000
        assert hashlib.sha256(path.read_bytes()).hexdigest() == teacher.sha256
        assert f"!{teacher.path}" in (ROOT / ".gitignore").read_text().splitlines(), "git must keep the file"


def test_quantisation_round_trip_is_within_half_a_step():
    torch.manual_seed(0)
    state = {
        "conv.weight": torch.randn(8, 3, 3, 3),
        "bn.bias": torch.randn(8),
        "bn.num_batches_tracked": torch.tensor(5),
    }

    packed = st.quantize_state(state)
    assert packed["conv.weight"]["q"].dtype == torch.int8 and packed["bn.bias"].dtype == torch.float16
    back = st.dequantize_state(packed)
    step = packed["conv.weight"]["scale"].reshape(-1, 1, 1, 1)
    assert torch.all((back["conv.weight"] - state["conv.weight"]).abs() <= step / 2 + 1e-7)
    assert torch.equal(back["bn.num_batches_tracked"], state["bn.num_batches_tracked"])
    flat = st.flatten_state(packed)  # as stored: a few flat tensors
    assert [flat[k].dtype for k in ("int8", "scale", "half", "int")] == [
        torch.int8,
        torch.float32,
        torch.float16,
        torch.int64,
    ]
    again = st.dequantize_state(st.unflatten_state(flat))
    assert all(torch.equal(again[k], back[k]) for k in back)


@pytest.mark.slow
def test_the_default_profile_installs_the_shipped_teacher_instead_of_training(tmp_path, monkeypatch):
    monkeypatch.setenv(WORK_DIR_ENV, str(tmp_path))
    teacher = next(iter(st.SHIPPED_TEACHERS.values()))
    data = load_data("synthetic", teacher.train_size, teacher.test_size)
    messages: list[str] = []
    out = ensure_teacher(
        teacher.arch, dataset="synthetic", epochs=teacher.epochs, data=data, snapshot_epochs=[2, 4], log=messages.append
    )
    assert "shipped" in messages[0] and "digest checked" in messages[0] and "training" not in " ".join(messages)
    assert all((out / f"checkpoint_epoch{e}.pth").is_file() for e in teacher.snapshots)
    assert ensure_teacher(teacher.arch, dataset="synthetic", epochs=teacher.epochs, data=data, log=messages.append)
    assert messages[-1].startswith("teacher: reusing")
    smaller = load_data("synthetic", teacher.train_size - 1, teacher.test_size)  # other data: not this teacher
    from wttm_core.engine import TrainConfig

    probe = TrainConfig(arch=teacher.arch, method="ce", epochs=teacher.epochs, train_size=len(smaller[0]))
    assert st.find_shipped_teacher(probe, smaller, None) is None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_non_editable_install_runs_a_notebook_from_another_folder(tmp_path):
    """``pip install .`` (a real wheel build, no editable link) into a fresh venv that reuses this environment's
    packages; notebook 06 (which reads the shipped example runs) runs from an empty folder; nothing is written
    into the installed package."""
    source = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout: cannot list the project's files")
    for name in files.stdout.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            (source / name).write_bytes((ROOT / name).read_bytes())
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", where], text=True).strip())
    (site / "reuse-outer-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch etc., not wttm
    install = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(source)]
    subprocess.run(install, check=True, cwd=tmp_path)
    package = site / "wttm_core"
    assert (package / "_resources" / "data" / "paper_results.csv").is_file()
    assert (package / "_resources" / "notebooks" / "06_training_dynamics.ipynb").is_file()
    before = sorted(p for p in package.rglob("*") if "__pycache__" not in p.parts)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", WORK_DIR_ENV)}
    command = [python, "-m", "wttm_core.notebook_runner", "--profile", "smoke", "--only", "06_training_dynamics"]
    command += ["--index"]
    done = subprocess.run(command, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    imported = [python, "-c", "import wttm_core; print(wttm_core.__file__)"]
    assert str(package) in subprocess.check_output(imported, cwd=elsewhere, env=env, text=True)
    assert (elsewhere / "build" / "notebooks" / "06_training_dynamics.ipynb").is_file()
    assert (elsewhere / "build" / "notebooks" / "index.html").is_file()
    assert sorted(p for p in package.rglob("*") if "__pycache__" not in p.parts) == before
