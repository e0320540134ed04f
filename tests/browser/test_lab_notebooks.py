"""Every interactive notebook in a real JupyterLab in Chromium: Run All Cells, no error, a slider moves a figure.

One JupyterLab in one Chromium tab serves all notebooks: each is opened, run, saved (it is a copy) and closed,
and its kernel is shut down afterwards (two CPU cores); after a failure the app is reloaded. A screenshot of
each notebook after the interaction goes to ``build/screenshots/<notebook>.png``; seconds per step go to
``build/screenshots/timings.json``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from browser_pages import (
    close_notebooks,
    error_outputs,
    figure_label_problems,
    move_sliders_until_something_follows,
    open_notebook,
    run_all_cells,
    run_cell_with_source,
    screenshot_at_first_slider,
    settle,
    slider_count,
    sliders_without_readout,
    snapshot,
    wait_for,
    wait_kernel_idle,
    widget_failures_in_page,
    widget_view_count,
)
from browser_servers import Server
from conftest import NOTEBOOKS as NOTEBOOK_DIR
from conftest import LabPage, StageTimings, discovered_notebooks, exercise_plan, tells_reader_about_sliders

from wttm_core.present import reads_interactive

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOKS = discovered_notebooks()
WIDGET_RENDER_TIMEOUT_S = 30.0
SLIDER_IDLE_TIMEOUT_S = 30.0


def _shutdown_kernels(server: Server) -> None:
    """Delete every session (and with it its kernel) so the next notebook has the CPUs to itself."""
    with urllib.request.urlopen(server.url("api/sessions"), timeout=5) as response:
        sessions = json.loads(response.read())
    for session in sessions:
        request = urllib.request.Request(server.url(f"api/sessions/{session['id']}"), method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_and_its_slider_moves_a_figure(
    notebook: str, stage_timings: StageTimings, lab_page: LabPage, screenshots: Path
) -> None:
    page, jupyterlab, console = lab_page.page, lab_page.server, lab_page.console
    console.messages.clear()
    started = time.monotonic()
    failed = True
    try:
        open_notebook(page, jupyterlab, notebook)
        opened = time.monotonic()
        attempts = run_all_cells(page, jupyterlab, notebook)
        executed = time.monotonic()

        errors = error_outputs(page)
        assert not errors, f"{notebook}: error output after Run All Cells:\n" + "\n---\n".join(errors)

        source = NOTEBOOK_DIR / notebook
        if tells_reader_about_sliders(source):
            # the kernel is idle, but widget views mount afterwards (a FigureWidget loads plotly.js first)
            wait_for(lambda: slider_count(page) > 0, WIDGET_RENDER_TIMEOUT_S, f"{notebook}'s sliders to render")
        settle(page)
        assert not widget_failures_in_page(page), (
            f"{notebook}: a widget failed to render: {widget_failures_in_page(page)}"
        )
        assert not console.widget_failures(), f"{notebook}: widget errors in the console: {console.widget_failures()}"

        if reads_interactive(source):
            assert widget_view_count(page), f"{notebook}: switches on `interactive` but shows no widget with it True"
        if tells_reader_about_sliders(source):
            assert slider_count(page), f"{notebook}: its text mentions sliders but none rendered"
        moves = []
        if slider_count(page):
            figures = snapshot(page)["figures"]
            moves = move_sliders_until_something_follows(
                page, wait_idle=lambda: wait_kernel_idle(page, jupyterlab, notebook, timeout=SLIDER_IDLE_TIMEOUT_S)
            )
            assert moves and moves[-1].changed, (
                f"{notebook}: moving sliders with the keyboard changed no figure and no readout: "
                f"{[(m.index, m.readout_before, m.readout_after) for m in moves]} ({len(figures)} figures on the page)"
            )
            assert moves[-1].readout_after != moves[-1].readout_before, f"{notebook}: the slider's readout did not move"
        moved = time.monotonic()
        assert not error_outputs(page), f"{notebook}: error output after moving a slider: {error_outputs(page)}"
        assert not sliders_without_readout(page), (
            f"{notebook}: sliders without a readout: {sliders_without_readout(page)}"
        )
        unlabelled = figure_label_problems(page)
        assert not unlabelled, f"{notebook}: figures need titles, axis titles and legends (issue 7): {unlabelled}"

        screenshot_at_first_slider(page, screenshots / f"{Path(notebook).stem}.png")
        # last (running a cell scrolls the page), a student at work: the worked solution typed into the "implement it
        # yourself" cell, a wrong number into a checked exercise (the checker hints, it does not reveal the answer)
        plan = exercise_plan(source)
        if plan.todo_match:
            said = run_cell_with_source(page, jupyterlab, notebook, plan.todo_match, plan.solution_source)
            assert "Well done" in said, f"{notebook}: the checker did not accept the worked solution: {said!r}"
        if plan.answer_match:
            said = run_cell_with_source(page, jupyterlab, notebook, plan.answer_match, plan.wrong_answer_source)
            assert "Not quite" in said and "Hint:" in said, f"{notebook}: a wrong answer got no hint: {said!r}"
            assert "The answer is" not in said, f"{notebook}: the answer was revealed on the first miss"
        assert not error_outputs(page), f"{notebook}: error output after the exercises: {error_outputs(page)}"
        exercised = time.monotonic()
        stage_timings.record(
            notebook,
            open_s=opened - started,
            run_all_s=executed - opened,
            slider_s=moved - executed,
            exercises_s=exercised - moved,  # includes the label check and the screenshot
            total_s=time.monotonic() - started,
            run_all_attempts=attempts,
            sliders=slider_count(page),
            figures=len(snapshot(page)["figures"]),
        )
        if moves:
            print(
                f"{notebook}: slider {moves[-1].index} {moves[-1].readout_before} -> {moves[-1].readout_after} "
                f"changed {moves[-1].changed}"
            )
        failed = False
    finally:
        if failed:
            print(f"{notebook}: browser console errors:", *console.messages[-20:], sep="\n  ")
            try:
                page.screenshot(path=str(screenshots / f"{Path(notebook).stem}-failure.png"))
            except Exception as error:  # the page itself may be gone; the original failure matters
                print(f"no failure screenshot: {error}")
        # as a person would: close the tab, then shut its kernel down (shutting a kernel down under an open
        # notebook leaves FigureWidget views that keep trying to sync: "Could not send widget sync message")
        if not failed:
            close_notebooks(page)
        _shutdown_kernels(jupyterlab)
        if failed:
            lab_page.reload()
