"""Classroom mode: an interactive notebook as a Voila dashboard (``make present``) in Chromium.

Voila serves the same interactive=True copies that ``python -m wttm_core.present`` writes, with the same command
line (plus a random port and a token). The test opens the dashboards whose prose mentions a slider, by name,
until one shows a slider, and checks there: no error output, no source code visible,
every widget rendered (ipywidgets 8 and plotly's anywidget-based FigureWidget), and a keyboard move of the
slider changes a figure or a readout. Screenshot: ``build/screenshots/voila-<notebook>.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_pages import (
    ConsoleLog,
    error_outputs,
    move_sliders_until_something_follows,
    open_dashboard,
    screenshot_at_first_slider,
    slider_count,
    snapshot,
    visible_code_lines,
    widget_failures_in_page,
)
from browser_servers import Server, start_voila
from conftest import NOTEBOOKS, StageTimings, browser_parameters, tells_reader_about_sliders

from wttm_core.present import write_presentation

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def dashboards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make present``'s folder: interactive=True copies of the interactive notebooks."""
    folder = tmp_path_factory.mktemp("present")
    assert write_presentation(NOTEBOOKS, folder, browser_parameters), f"no interactive notebook in {NOTEBOOKS}"
    return folder


@pytest.fixture(scope="module")
def voila(chromium: str, dashboards: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_voila(dashboards, tmp_path_factory.mktemp("voila"))
    try:
        yield server
    finally:
        server.stop()


def _code_lines(notebook: Path) -> list[str]:
    """Distinctive source lines of the notebook's code cells (long enough not to occur in prose by chance)."""
    lines = []
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines += [line.strip() for line in source.splitlines() if len(line.strip()) >= 20]
    return lines


# What only the hidden cells show: a worked solution's verdict from the checker, a markdown solution
# (the exercise and TODO cells are hidden in a dashboard too: there is no code there to fill in).
_HIDDEN_TEXTS = ("Well done", "Solution to", "Worked solution")


def _with_sliders(folder: Path) -> list[Path]:
    """The dashboards whose prose tells the reader about sliders, by name (01 first)."""
    return [path for path in sorted(folder.glob("*.ipynb")) if tells_reader_about_sliders(path)]


@pytest.mark.timeout(300)
def test_a_dashboard_renders_without_code_and_its_slider_moves_a_figure(
    stage_timings: StageTimings, voila: Server, dashboards: Path, browser, screenshots: Path
) -> None:
    candidates = _with_sliders(dashboards)
    assert candidates, f"no interactive notebook in {NOTEBOOKS} mentions a slider, so there is no dashboard to move"
    tried = []
    for notebook in candidates:
        page = browser.new_page()
        console = ConsoleLog()
        console.attach(page)
        started = time.monotonic()
        try:
            open_dashboard(page, voila, notebook.name)
            rendered = time.monotonic()
            errors = error_outputs(page)
            assert not errors, f"voila {notebook.name}: error output:\n" + "\n---\n".join(errors)
            failures = widget_failures_in_page(page) + console.widget_failures()
            assert not failures, f"voila {notebook.name}: widgets failed to render: {failures}"
            shown = visible_code_lines(page, _code_lines(notebook))
            assert not shown, f"voila {notebook.name}: source code is visible in the dashboard: {shown[:3]}"
            hidden = [text for text in _HIDDEN_TEXTS if text in page.inner_text("body")]
            assert not hidden, f"voila {notebook.name}: instructor or solution content is shown: {hidden}"
            tried.append(notebook.name)
            if not slider_count(page):
                continue
            figures = len(snapshot(page)["figures"])
            moves = move_sliders_until_something_follows(page)
            assert moves[-1].changed, (
                f"voila {notebook.name}: moving sliders changed no figure and no readout "
                f"({[(m.readout_before, m.readout_after) for m in moves]}, {figures} figures)"
            )
            screenshot_at_first_slider(page, screenshots / f"voila-{notebook.stem}.png")
            stage_timings.record(
                f"voila/{notebook.name}",
                render_s=rendered - started,
                slider_s=time.monotonic() - rendered,
                figures=figures,
                sliders=slider_count(page),
            )
            print(
                f"voila {notebook.name}: {moves[-1].readout_before} -> {moves[-1].readout_after}, {moves[-1].changed}"
            )
            return
        except BaseException:
            try:
                page.screenshot(path=str(screenshots / f"voila-{notebook.stem}-failure.png"), full_page=True)
            except Exception as error:  # the page may be gone; the original failure matters
                print(f"no failure screenshot: {error}")
            raise
        finally:
            page.close()
    pytest.fail(f"no dashboard showed a slider; rendered without one: {tried}")
