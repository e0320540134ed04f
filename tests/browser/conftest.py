"""Fixtures for the browser tests: one Chromium, one JupyterLab, Voila, all on 127.0.0.1 and always shut down.

The servers serve COPIES of the notebooks (JupyterLab's autosave rewrites what it opens) with
``interactive = True`` injected after the parameters cell, as ``make present`` prepares them; a notebook that
declares a ``profile`` (the training notebooks) also gets the CI profile ``smoke``, since these tests check the
interface, not the training. Set ``WTTM_BROWSER_NOTEBOOKS`` to point the tests at another folder of notebooks.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser_pages import ConsoleLog, chromium_path, launch, open_lab  # noqa: E402
from browser_servers import REPO, Server, start_jupyterlab  # noqa: E402

from wttm_core.notebook_runner import declared_parameters  # noqa: E402
from wttm_core.present import interactive_notebooks, write_presentation  # noqa: E402

NOTEBOOKS = Path(os.environ.get("WTTM_BROWSER_NOTEBOOKS", REPO / "notebooks"))
SCREENSHOTS = REPO / "build" / "screenshots"
NO_CHROMIUM = "chromium not installed: apt-get install chromium"
BROWSER_PROFILE = "smoke"


def browser_parameters(path: Path) -> dict[str, object]:
    """``interactive=True``, and the CI ``profile`` where the notebook declares one."""
    return {"interactive": True} | ({"profile": BROWSER_PROFILE} if "profile" in declared_parameters(path) else {})


def tells_reader_about_sliders(path: Path) -> bool:
    """The notebook's prose mentions a slider: then a slider must render and move something."""
    cells = json.loads(Path(path).read_text())["cells"]
    return any(cell["cell_type"] == "markdown" and "slider" in "".join(cell["source"]).lower() for cell in cells)


def discovered_notebooks() -> list[str]:
    """Names of the notebooks whose parameters cell declares ``interactive`` (collected at import time)."""
    return [path.name for path in interactive_notebooks(NOTEBOOKS)] if NOTEBOOKS.is_dir() else []


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip(NO_CHROMIUM)
    return path


@pytest.fixture(scope="session")
def presented_notebooks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary root holding interactive=True copies of every interactive notebook."""
    root = tmp_path_factory.mktemp("notebooks")
    written = write_presentation(NOTEBOOKS, root, browser_parameters)
    assert written, f"no notebook in {NOTEBOOKS} declares `interactive` in its parameters cell"
    return root


@pytest.fixture(scope="session")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One Chromium (persistent context on a fresh user data dir) for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium") / "profile")
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="session")
def jupyterlab(chromium: str, presented_notebooks: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_jupyterlab(presented_notebooks, tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


class LabPage:
    """The one JupyterLab tab every notebook is opened in, with its console log."""

    def __init__(self, context: object, server: Server) -> None:
        self.server = server
        self.page = context.new_page()
        self.console = ConsoleLog()
        self.console.attach(self.page)
        open_lab(self.page, server)

    def reload(self) -> None:
        """After a failure: a fresh app (dialogs, half-run notebooks and all gone)."""
        open_lab(self.page, self.server)


@pytest.fixture(scope="session")
def lab_page(browser, jupyterlab: Server) -> Iterator[LabPage]:
    lab = LabPage(browser, jupyterlab)
    try:
        yield lab
    finally:
        lab.page.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """``build/screenshots/``; failure screenshots of an earlier session are removed so none is mistaken as new."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for stale in SCREENSHOTS.glob("*-failure.png"):
        stale.unlink()
    return SCREENSHOTS


class StageTimings:
    """Seconds per notebook and step, written to ``build/screenshots/timings.json`` (atomically) at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.monotonic()
        self.entries: dict[str, dict[str, float]] = {}

    def record(self, name: str, **seconds: float) -> None:
        self.entries.setdefault(name, {}).update({key: round(value, 2) for key, value in seconds.items()})

    def write(self) -> None:
        payload = {"stage_s": round(time.monotonic() - self.started, 2), "notebooks": self.entries}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text(json.dumps(payload, indent=1) + "\n")
        os.replace(temporary, self.path)


@pytest.fixture(scope="session")
def stage_timings(screenshots: Path) -> Iterator[StageTimings]:
    timings = StageTimings(screenshots / "timings.json")
    try:
        yield timings
    finally:
        timings.write()


@dataclass(frozen=True)
class ExercisePlan:
    """What a student does to a notebook's exercises in the browser test: the first "implement it yourself" cell
    (a code cell with ``# TODO`` followed by its collapsed ``solution`` cell) gets the worked solution typed in, and
    the first checked numeric answer (a line ``answer_N = None  # a number``) gets a wrong number.

    Found from the notebook itself, so a notebook joins the test by following the pattern of 00-04 (tags
    ``exercise`` / ``solution``; see notebooks/TEACHING.md)."""

    todo_match: str | None
    solution_source: str | None
    answer_match: str | None
    wrong_answer_source: str | None


def exercise_plan(path: Path) -> ExercisePlan:
    cells = json.loads(Path(path).read_text())["cells"]
    sources = ["".join(c["source"]) for c in cells]
    todo = solution = answer = wrong = None
    for i, cell in enumerate(cells[:-1]):
        nxt = cells[i + 1]
        if cell["cell_type"] == "code" and "# TODO" in sources[i] and "solution" in nxt["metadata"].get("tags", []):
            todo, solution = sources[i], sources[i + 1]
            break
    for i, cell in enumerate(cells):
        found = re.search(r"^(answer_\d+) = None  # a number.*$", sources[i], flags=re.M)
        if cell["cell_type"] == "code" and "check_answer(" in sources[i] and found:
            answer = found.group(0)
            wrong = sources[i].replace(found.group(0), f"{found.group(1)} = -12345.0")
            break
    first_line = todo.splitlines()[0] if todo else None
    return ExercisePlan(first_line, solution, answer, wrong)
