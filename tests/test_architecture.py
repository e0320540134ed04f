"""The shape of ``wttm_core`` (issue 12's "done when"), checked by reading the source with :mod:`ast`.

- **Layers.** A module imports only from its own layer or an earlier one::

      maths <- losses/theory <- facts <- models/data/teachers/runs <- engine <- faces (viz, lab, experiments, cli)

  Module-level and function-level imports both count (a function-level import is still a dependency).
- **Short functions.** No function (or method) is over 60 lines, counted from its ``def`` line to its last line,
  except the data tables listed in :data:`DATA_TABLES` with a reason.
- **A short step path.** The modules one reads for one distillation step (:data:`STEP_MODULE` and every
  ``wttm_core`` module it imports, transitively) total fewer than :data:`MAX_STEP_PATH_LINES` lines.

Offenders in files other helpers were still editing are listed in :data:`KNOWN_LAYER_VIOLATIONS` and
:data:`KNOWN_LONG_FUNCTIONS` (to be removed at integration: the lists also name the offenders those helpers'
branches bring, so that the test passes while they merge; a listed name that no longer offends is printed as
``fixed``). ``python tests/test_architecture.py`` prints every offender, listed or not.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "wttm_core"
MAX_FUNCTION_LINES = 60
STEP_MODULE = "wttm_core.engine.step"  # teacher forward, student forward, the method's loss terms, backward, update
MAX_STEP_PATH_LINES = 1200  # issue 12: was 1,866 in six files before the redesign

LAYERS = ("maths", "losses/theory", "facts", "models/data/teachers/runs", "engine", "faces")
# the first name under wttm_core -> its layer; "" is the package root, which re-exports the maths and the losses
LAYER_OF = {
    "functional": "maths",
    "_checks": "maths",
    "_fused": "maths",
    "_kernels": "maths",
    "": "losses/theory",
    "loss_terms": "losses/theory",
    "losses": "losses/theory",
    "theory": "losses/theory",
    "paper": "facts",
    "presets": "facts",
    "resources": "facts",
    "models": "models/data/teachers/runs",
    "data": "models/data/teachers/runs",
    "teachers": "models/data/teachers/runs",
    "rundir": "models/data/teachers/runs",
    "atomic": "models/data/teachers/runs",
    "runs": "models/data/teachers/runs",
    "engine": "engine",
    "viz": "faces",
    "lab": "faces",
    "experiments": "faces",
    "cli": "faces",
    "exercises": "faces",
    "notebook_runner": "faces",
    "present": "faces",
    "sweep": "faces",
}

# Functions over 60 lines that are data tables (a literal the code reads, not logic): "module:qualname" -> reason.
DATA_TABLES: dict[str, str] = {}

# Known offenders in files other helpers were still editing this session: to be removed at integration.
KNOWN_LAYER_VIOLATIONS: set[str] = set()  # to be removed at integration
KNOWN_LONG_FUNCTIONS: set[str] = set()  # to be removed at integration


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "wttm_core.engine.loop"
    path: Path
    tree: ast.Module

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


@functools.cache
def modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return found


def layer_of(module: str) -> str:
    """The layer of a dotted ``wttm_core`` module name; an unclassified module is an error naming it."""
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else ""
    if key not in LAYER_OF:
        raise AssertionError(f"{module}: not in any layer; add {key!r} to LAYER_OF in {Path(__file__).name}")
    return LAYER_OF[key]


def _imported(module: Module, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The ``wttm_core`` modules an import statement loads (``from pkg import name`` -> ``pkg.name`` when that is
    a module, else ``pkg``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "wttm_core"]
    base = node.module or ""
    if node.level:
        package = module.name.split(".")
        if not module.is_package:
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([base] if base else []))
    if base.split(".")[0] != "wttm_core":
        return []
    known = modules()
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def layer_violations() -> dict[str, str]:
    """Every import of a later layer: ``"importer imports target"`` -> where and which layers."""
    found: dict[str, str] = {}
    for module in modules().values():
        found.update(_violations_in(module))
    return found


def _violations_in(module: Module) -> dict[str, str]:
    mine = LAYERS.index(layer_of(module.name))
    found: dict[str, str] = {}
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for target in _imported(module, node):
            theirs = LAYERS.index(layer_of(target))
            if theirs > mine:
                where = f"line {node.lineno}, {LAYERS[mine]} <- {LAYERS[theirs]}"
                found.setdefault(f"{module.name} imports {target}", where)
    return found


def _functions(body: list[ast.stmt], prefix: str = ""):
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield f"{prefix}{node.name}", node
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        elif hasattr(node, "body"):  # if / try / with / for blocks at any level
            for block in ("body", "orelse", "finalbody", "handlers"):
                yield from _functions(getattr(node, block, []), prefix)


def long_functions() -> dict[str, int]:
    """``"module:qualname" -> lines`` for every function over the limit (data tables included)."""
    found = {}
    for module in modules().values():
        for qualname, node in _functions(module.tree.body):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                found[f"{module.name}:{qualname}"] = lines
    return found


def _runtime_imports(module: Module) -> list[str]:
    """The ``wttm_core`` modules ``module`` loads when it runs (module- and function-level imports, not the ones
    under ``if TYPE_CHECKING:``, which only type checkers read)."""
    skipped = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            skipped.update(id(child) for child in ast.walk(node))
    found = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped:
            found += _imported(module, node)
    return found


def step_path(start: str = STEP_MODULE) -> dict[str, int]:
    """``module -> lines`` for ``start`` and every ``wttm_core`` module it imports, transitively: the code one
    reads to follow one distillation step. The package ``__init__`` files Python runs on the way are not followed
    (they re-export names; the step does not call into them)."""
    known, found, todo = modules(), {}, [start]
    while todo:
        name = todo.pop()
        if name in found or name not in known or known[name].is_package:
            continue
        found[name] = len(known[name].path.read_text(encoding="utf-8").splitlines())
        todo += _runtime_imports(known[name])
    return found


def _print_step_path() -> int:
    path = step_path()
    for name, lines in sorted(path.items(), key=lambda item: -item[1]):
        print(f"  {lines:5d}  {name}")
    total = sum(path.values())
    print(f"step path from {STEP_MODULE}: {total} lines in {len(path)} modules (limit {MAX_STEP_PATH_LINES})")
    return total


def _report(kind: str, offenders: dict[str, object], known: set[str]) -> list[str]:
    """Print every offender (``(known)`` where listed) and return the ones not listed, with their detail."""
    rows = [f"{name} ({detail}){' (known)' if name in known else ''}" for name, detail in sorted(offenders.items())]
    rows += [
        f"listed, not offending here (fixed, or not merged yet): {name}" for name in sorted(known - offenders.keys())
    ]
    print(f"{kind}: {len(offenders)}" + "".join(f"\n  {row}" for row in rows))
    return [f"{name} ({detail})" for name, detail in sorted(offenders.items()) if name not in known]


def test_every_module_has_a_layer() -> None:
    unclassified = []
    for name in modules():
        try:
            layer_of(name)
        except AssertionError as error:
            unclassified.append(str(error))
    assert not unclassified, "\n".join(unclassified)


def test_no_module_imports_a_later_layer() -> None:
    found = layer_violations()
    new = _report("imports of a later layer", found, KNOWN_LAYER_VIOLATIONS)
    assert not new, "imports of a later layer (" + " <- ".join(LAYERS) + "):\n" + "\n".join(new)


def test_no_function_over_60_lines_outside_data_tables() -> None:
    found = {name: f"{lines} lines" for name, lines in long_functions().items()}
    new = _report(f"functions over {MAX_FUNCTION_LINES} lines", found, KNOWN_LONG_FUNCTIONS | DATA_TABLES.keys())
    assert not new, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(new)
    stale = sorted(DATA_TABLES.keys() - found.keys())
    assert not stale, f"DATA_TABLES names functions that are no longer over {MAX_FUNCTION_LINES} lines: {stale}"


def test_one_distillation_step_reads_in_under_1200_lines() -> None:
    path = step_path()
    # not vacuous: the step, its table of terms and the kernels are on the path; the loop and its
    # persistence, evaluation and speed paths are not
    assert {STEP_MODULE, "wttm_core.loss_terms", "wttm_core._kernels", "wttm_core._fused"} <= path.keys()
    outside = {"wttm_core.engine.loop", "wttm_core.engine.persistence", "wttm_core.engine.speed"}
    assert not outside & path.keys(), sorted(outside & path.keys())
    assert sum(path.values()) < MAX_STEP_PATH_LINES, f"{sum(path.values())} lines: {path}"


def test_the_checks_see_what_they_should() -> None:
    """The scanners are not vacuous: they find every module, resolve relative imports and count nested defs."""
    found = modules()
    assert {"wttm_core", "wttm_core.functional", "wttm_core.engine", "wttm_core.viz.style"} <= found.keys()
    sample = ast.parse(
        "import wttm_core.engine.loop\n"
        "def outer():\n    from . import functional\n    from .viz import style\n    def inner():\n"
        + "        x = 1\n"
        * 61
    )
    fake = Module("wttm_core._checks", PACKAGE / "_checks.py", sample)
    imports = [n for n in ast.walk(sample) if isinstance(n, ast.ImportFrom)]
    assert _imported(fake, imports[0]) == ["wttm_core.functional"]
    assert _violations_in(fake) == {
        "wttm_core._checks imports wttm_core.engine.loop": "line 1, maths <- engine",
        "wttm_core._checks imports wttm_core.viz.style": "line 4, maths <- faces",
    }
    assert {name: n.end_lineno - n.lineno + 1 for name, n in _functions(sample.body)} == {
        "outer": 65,
        "outer.inner": 62,
    }
    assert layer_of("wttm_core.engine.loop") == "engine" and layer_of("wttm_core") == "losses/theory"
    typed = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wttm_core import paper\n"
        "import wttm_core.functional\n"
    )
    assert _runtime_imports(Module("wttm_core.x", PACKAGE / "x.py", typed)) == ["wttm_core.functional"]


if __name__ == "__main__":
    _report("imports of a later layer", layer_violations(), KNOWN_LAYER_VIOLATIONS)
    long = {name: f"{lines} lines" for name, lines in long_functions().items()}
    _report(f"functions over {MAX_FUNCTION_LINES} lines", long, KNOWN_LONG_FUNCTIONS | DATA_TABLES.keys())
    _print_step_path()
