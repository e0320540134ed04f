"""Launching the notebooks elsewhere and in class: Binder's environment.yml, the Colab guard cell, the README
badges and ``make present``'s helper (``wttm_core.present``).

``tests/test_packaging.py`` already checks that environment.yml and pyproject.toml name the same packages; this
file checks what they do not: that those packages cover every third-party import of the package and notebooks.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import re
import sys
import types
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from test_packaging import CONDA_TO_PYPI, _name

from wttm_core.notebook_runner import declared_parameters
from wttm_core.present import (
    MANIFEST,
    declares_interactive,
    interactive_notebooks,
    main,
    presentation_notebook,
    reads_interactive,
    voila_command,
    write_presentation,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROJECT_GIT_URL = "git+https://github.com/wttm-lab/wttm.git"
HOME = "https://github.com/wttm-lab/wttm"


def _python(source: str) -> str:
    """A code cell's source as the Python IPython runs (``%pip`` becomes ``get_ipython().run_line_magic``)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _code_cells(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in cells
        if c["cell_type"] == "code"
    ]


# ----------------------------------------------------------------------------------- environment.yml (Binder)


def _imported_top_level_modules() -> dict[str, set[str]]:
    """Top-level modules imported by wttm_core and the notebooks -> where (stdlib and the project excluded)."""
    sources = [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "wttm_core").rglob("*.py"))]
    sources += [(str(nb.relative_to(ROOT)), _python(code)) for nb in NOTEBOOKS for code in _code_cells(nb)]
    found: dict[str, set[str]] = {}
    for where, source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                # google.colab exists only on Colab, behind the guard cell checked below
                if top not in sys.stdlib_module_names and top not in {"wttm_core", "google", "__future__"}:
                    found.setdefault(top, set()).add(where)
    return found


def _distribution_closure(names: set[str]) -> set[str]:
    """``names`` and everything they require (installed metadata, markers evaluated without extras)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requirements:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(requirement.name))
    return seen


def test_environment_yml_is_a_conda_mapping_binder_can_read():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert isinstance(env, dict) and isinstance(env.get("name"), str) and isinstance(env.get("dependencies"), list)
    for entry in env["dependencies"]:
        assert isinstance(entry, str) or (isinstance(entry, dict) and set(entry) == {"pip"}), entry


def test_environment_yml_provides_every_third_party_import_of_the_package_and_notebooks():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    declared = {CONDA_TO_PYPI.get(_name(d), _name(d)) for d in env["dependencies"] if isinstance(d, str)}
    provided = _distribution_closure(declared)
    module_to_dists = metadata.packages_distributions()
    missing = {}
    for module, where in _imported_top_level_modules().items():
        dists = {_name(d) for d in module_to_dists.get(module, [])}
        if not dists & provided:
            missing[module] = (sorted(dists) or ["not installed"], sorted(where)[:3])
    assert not missing, f"imported but not provided by environment.yml (module: distributions, files): {missing}"


# ----------------------------------------------------------------------------------- the Colab guard cell


class _Shell:
    """Stands in for IPython's ``get_ipython()``: records the magics the cell runs."""

    def __init__(self) -> None:
        self.magics: list[tuple[str, str]] = []

    def run_line_magic(self, name: str, line: str, *args: object) -> None:
        self.magics.append((name, line))

    def system(self, command: str) -> None:
        self.magics.append(("!", command))


def _fake_colab(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put google.colab (with output.enable_custom_widget_manager) into sys.modules; return the call log."""
    calls: list[str] = []
    google, colab, output = (types.ModuleType(n) for n in ("google", "google.colab", "google.colab.output"))
    output.enable_custom_widget_manager = lambda *args, **kwargs: calls.append("enable_custom_widget_manager")
    google.colab, colab.output = colab, output
    for module in (google, colab, output):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return calls


def _run_cell(source: str) -> _Shell:
    shell = _Shell()
    exec(compile(_python(source), "<first code cell>", "exec"), {"get_ipython": lambda: shell})
    return shell


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_only_guards_the_colab_install(notebook: Path):
    first = _code_cells(notebook)[0]
    tree = ast.parse(_python(first))
    guards = [node for node in tree.body if isinstance(node, ast.If)]
    others = [node for node in tree.body if not isinstance(node, ast.If | ast.Import | ast.ImportFrom)]
    assert len(guards) == 1 and not others, f"{notebook.name}: first code cell must be imports + one `if` guard"
    test = guards[0].test
    assert (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Constant)
        and test.left.value == "google.colab"
        and isinstance(test.ops[0], ast.In)
        and ast.unparse(test.comparators[0]) == "sys.modules"
    ), f'{notebook.name}: guard must be `if "google.colab" in sys.modules:`, found `{ast.unparse(test)}`'
    assert not guards[0].orelse, f"{notebook.name}: the guard must do nothing elsewhere (no else branch)"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_guard_cell_does_nothing_here_and_installs_the_project_on_colab(
    notebook: Path, monkeypatch: pytest.MonkeyPatch
):
    first = _code_cells(notebook)[0]
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert _run_cell(first).magics == [], f"{notebook.name}: the first cell runs something outside Colab"

    _fake_colab(monkeypatch)
    installs = [line for name, line in _run_cell(first).magics if "install" in line]
    assert len(installs) == 1, f"{notebook.name}: on Colab the first cell must install once, ran {installs}"
    assert PROJECT_GIT_URL in installs[0] and re.search(r"\bwttm\b", installs[0]), installs[0]


# ----------------------------------------------------------------------------------- README badges


BINDER_BADGE = re.compile(
    r"\[!\[[^\]]*\]\(https://mybinder\.org/badge_logo\.svg\)\]\((https://mybinder\.org/v2/gh/wttm-lab/wttm/main[^)]*)\)"
)
COLAB_BADGE = re.compile(
    r"\[!\[[^\]]*\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]"
    r"\(https://colab\.research\.google\.com/github/wttm-lab/wttm/blob/main/([^)]+)\)"
)


def test_readme_has_binder_and_colab_badges_that_point_at_existing_files():
    readme = (ROOT / "README.md").read_text()
    binder = BINDER_BADGE.findall(readme)
    assert binder, "README.md lacks a Binder badge for wttm-lab/wttm (branch main)"
    for link in binder:
        target = re.search(r"urlpath=(?:lab/tree|lab|tree)/?([^&)]*)", link)
        if target and target.group(1):
            assert (ROOT / target.group(1)).exists(), f"Binder badge opens a missing path: {target.group(1)}"
    colab = COLAB_BADGE.findall(readme)
    assert colab, "README.md lacks an 'Open in Colab' badge for a notebook of wttm-lab/wttm (branch main)"
    for path in colab:
        assert (ROOT / path).is_file() and path.endswith(".ipynb"), f"Colab badge opens a missing notebook: {path}"


# ----------------------------------------------------------------------------------- wttm_core.present


def _notebook(path: Path, cells: list[tuple[str, str, list[str]]]) -> Path:
    """Write a minimal nbformat-4.5 notebook with (cell type, source, tags) cells; code cells carry an output."""
    payload = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"id": f"c{i}", "cell_type": kind, "source": source, "metadata": {"tags": tags} if tags else {}}
            | (
                {"outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}], "execution_count": 1}
                if kind == "code"
                else {}
            )
            for i, (kind, source, tags) in enumerate(cells)
        ],
    }
    path.write_text(json.dumps(payload))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "notebooks"
    src.mkdir()
    guard = 'import sys\nif "google.colab" in sys.modules:\n    %pip install -q wttm\n'
    _notebook(
        src / "b_live.ipynb",
        [
            ("markdown", "# B", []),
            ("code", guard, []),
            ("code", "interactive = False\nT: float = 4.0", ["parameters"]),
            ("code", "view = 'sliders' if interactive else 'static'", []),
        ],
    )
    _notebook(src / "a_declares.ipynb", [("code", "interactive = True", ["parameters"]), ("code", "x = 1", [])])
    _notebook(src / "c_batch.ipynb", [("code", "epochs = 3", ["parameters"]), ("code", "interactive = 2", [])])
    _notebook(src / "d_none.ipynb", [("code", "x = 1", [])])
    return src


def test_interactive_notebooks_are_those_whose_parameters_cell_declares_it(folder: Path):
    assert [p.name for p in interactive_notebooks(folder)] == ["a_declares.ipynb", "b_live.ipynb"]
    assert reads_interactive(folder / "b_live.ipynb") and not reads_interactive(folder / "a_declares.ipynb")
    assert not declares_interactive(folder / "c_batch.ipynb")  # assigned outside the parameters cell only


def test_presentation_copy_injects_interactive_true_after_the_parameters_cell_without_outputs(folder: Path):
    copy = presentation_notebook(folder / "b_live.ipynb")
    tags = [cell["metadata"].get("tags", []) for cell in copy["cells"]]
    assert tags.index(["injected-parameters"]) == tags.index(["parameters"]) + 1
    injected = copy["cells"][tags.index(["injected-parameters"])]
    namespace: dict = {}
    exec(injected["source"], namespace)
    assert namespace["interactive"] is True
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in copy["cells"])
    # a second injection replaces the first, as papermill does
    again = presentation_notebook(_write_json(folder / "copy.ipynb", copy), {"interactive": False, "T": 2.0})
    assert [c["metadata"].get("tags") for c in again["cells"]].count(["injected-parameters"]) == 1
    import nbformat

    nbformat.validate(nbformat.from_dict(copy))


def _write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload))
    return path


def test_presentation_copy_rejects_bad_input(folder: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="parameters"):
        presentation_notebook(folder / "d_none.ipynb")
    with pytest.raises(TypeError, match="parameters"):
        presentation_notebook(folder / "b_live.ipynb", [("interactive", True)])
    with pytest.raises(ValueError, match="path"):
        presentation_notebook(_write_json(tmp_path / "bad.ipynb", {"cells": "no"}))
    with pytest.raises(ValueError, match="directory"):
        interactive_notebooks(tmp_path / "missing")


def test_write_presentation_mirrors_the_interactive_notebooks_atomically(folder: Path, tmp_path: Path):
    out = tmp_path / "present"
    written = write_presentation(folder, out)
    assert [p.name for p in written] == ["a_declares.ipynb", "b_live.ipynb"]
    # no temp files; the manifest records what it wrote
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "a_declares.ipynb", "b_live.ipynb"]
    assert json.loads((folder / "b_live.ipynb").read_text())["cells"][1]["outputs"], "the source was modified"
    # a copy this command wrote for a notebook that is no longer interactive is stale: removed
    (folder / "a_declares.ipynb").unlink()
    assert [p.name for p in write_presentation(folder, out)] == ["b_live.ipynb"]
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "b_live.ipynb"]
    with pytest.raises(ValueError, match="destination"):
        write_presentation(folder, folder)


def test_write_presentation_never_touches_a_file_it_did_not_write(folder: Path, tmp_path: Path):
    """Issue 13, case 1: a student's own notebook in the output folder survived neither --out nor --dry-run."""
    out = tmp_path / "present"
    out.mkdir()
    (out / "stale.ipynb").write_text("{}")  # the student's own
    with pytest.raises(ValueError, match="not empty and was not written by wttm present"):
        write_presentation(folder, out)
    assert main(["--notebooks", str(folder), "--out", str(out), "--dry-run"]) == 2
    assert main(["--notebooks", str(folder), "--out", str(out)]) == 2
    assert sorted(p.name for p in out.iterdir()) == ["stale.ipynb"] and (out / "stale.ipynb").read_text() == "{}"
    # in a folder it owns, a file of the same name it did not write (or that was changed) is refused too
    owned = tmp_path / "owned"
    write_presentation(folder, owned)
    (owned / "b_live.ipynb").write_text("my edits")
    (owned / "mine.ipynb").write_text("mine")
    with pytest.raises(ValueError, match="b_live.ipynb was not written by wttm present"):
        write_presentation(folder, owned)
    assert (owned / "b_live.ipynb").read_text() == "my edits" and (owned / "mine.ipynb").read_text() == "mine"
    (owned / "b_live.ipynb").unlink()
    write_presentation(folder, owned)  # a file the user added is left alone
    assert (owned / "mine.ipynb").read_text() == "mine"


def test_write_presentation_takes_parameters_per_notebook(folder: Path, tmp_path: Path):
    def parameters(path: Path) -> dict:
        return {"interactive": True} | ({"T": 2.0} if "T" in declared_parameters(path) else {})

    write_presentation(folder, tmp_path / "out", parameters)
    injected = {}
    for copy in sorted((tmp_path / "out").glob("*.ipynb")):
        cell = next(
            c for c in json.loads(copy.read_text())["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
        )
        namespace: dict = {}
        exec("".join(cell["source"]), namespace)
        injected[copy.name] = {k: v for k, v in namespace.items() if not k.startswith("__")}
    assert injected == {"a_declares.ipynb": {"interactive": True}, "b_live.ipynb": {"interactive": True, "T": 2.0}}


def test_voila_command_binds_localhost_hides_code_and_validates(tmp_path: Path):
    command = voila_command(tmp_path, port=8123, token="abc123")
    assert str(tmp_path) in command and "--no-browser" in command
    assert {"--Voila.ip=127.0.0.1", "--Voila.port=8123", "--VoilaConfiguration.strip_sources=True"} <= set(command)
    assert "--Voila.token=abc123" in command and not any("token" in c for c in voila_command(tmp_path))
    for port in (0, 70000, "8866", True):
        with pytest.raises(ValueError, match="port"):
            voila_command(tmp_path, port=port)
    with pytest.raises(ValueError, match="token"):
        voila_command(tmp_path, token="a b")


def test_present_dry_run_writes_the_copies_and_prints_the_dashboards(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "present"
    assert main(["--notebooks", str(folder), "--out", str(out), "--port", "8124", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "http://127.0.0.1:8124/voila/render/b_live.ipynb" in printed and "--Voila.ip=127.0.0.1" in printed
    assert not out.exists()  # --dry-run writes (and deletes) nothing
    token = re.search(r"b_live.ipynb\?token=([0-9a-f]{32})", printed)
    assert token and f"--Voila.token={token.group(1)}" in printed  # a random token, printed in the URLs
    assert "--VoilaConfiguration.show_tracebacks=False" in printed and "--Voila.port_retries=0" in printed
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--notebooks", str(empty), "--out", str(tmp_path / "o2"), "--dry-run"]) == 1
