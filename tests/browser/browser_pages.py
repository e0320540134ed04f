"""What the browser tests do in a page: Chromium from Debian, JupyterLab's "Run All Cells", sliders, figures.

Everything here is read from the live DOM: ipywidgets 8 sliders are ``.widget-slider`` with a noUiSlider
``.noUi-handle`` (focusable, arrow keys move it) and a ``.widget-readout``; plotly figures are ``.js-plotly-plot``
elements whose ``data`` / ``layout`` properties are plotly.js's own copy of the figure.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from browser_servers import Server

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
RUN_TIMEOUT_S = 240.0  # the training notebooks' smoke runs on a fresh machine
SETTLE_TIMEOUT_S = 15.0
ARROW_PRESSES = 3

# a figure's state as plotly.js holds it: trace arrays and the layout's visible text (titles, annotations)
SNAPSHOT_JS = """() => ({
  figures: [...document.querySelectorAll('.js-plotly-plot')].map(plot => JSON.stringify({
    data: (plot.data || []).map(t => ({x: t.x, y: t.y, z: t.z, a: t.a, b: t.b, c: t.c, u: t.u, v: t.v,
                                       text: t.text, name: t.name, visible: t.visible})),
    shapes: plot.layout && plot.layout.shapes, annotations: plot.layout && plot.layout.annotations,
    title: plot.layout && plot.layout.title,
  })),
  readouts: [...document.querySelectorAll('.widget-readout')].map(e => e.innerText.trim()),
  texts: [...document.querySelectorAll('.widget-html, .widget-label, .widget-valid, .widget-output')]
           .map(e => e.innerText.trim()),
})"""
# error outputs and tracebacks, as JupyterLab and Voila render them (errors use the stderr mime type)
ERRORS_JS = """() => [...document.querySelectorAll(
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"],'
    + ' .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')].map(e => e.innerText)"""
TRACEBACK = re.compile(r"Traceback|^\w*(Error|Exception)\b", re.MULTILINE)
WIDGET_FAILURE = re.compile(r"Error displaying widget|Failed to load model class|Could not create a view")


def chromium_path() -> str | None:
    """Debian's Chromium on PATH (``apt-get install chromium``), or None."""
    return shutil.which("chromium")


def launch(playwright: Any, profile: Path):
    """A persistent Chromium context with a fresh user data dir ``profile`` (must not exist yet)."""
    if profile.exists():
        raise ValueError(f"profile: {profile} already exists; the browser must start with a fresh user data dir")
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True, viewport=VIEWPORT
    )


@dataclass
class ConsoleLog:
    """Console errors and uncaught page errors, collected while a page lives."""

    messages: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda message: self._console(message))
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.messages.append(f"console.error: {message.text}")

    def widget_failures(self) -> list[str]:
        return [line for line in self.messages if WIDGET_FAILURE.search(line) or "anywidget" in line.lower()]


def error_outputs(page: Any) -> list[str]:
    """Texts of every stderr/error output in the page that carries a traceback or an exception name."""
    return [text for text in page.evaluate(ERRORS_JS) if TRACEBACK.search(text)]


def widget_failures_in_page(page: Any) -> list[str]:
    """Texts where a widget failed to render ("Error displaying widget", unknown model class)."""
    texts = page.evaluate(
        "() => [...document.querySelectorAll('.jp-OutputArea-output, .jupyter-widgets')].map(e => e.innerText)"
    )
    return [text for text in texts if WIDGET_FAILURE.search(text)]


def widget_view_count(page: Any) -> int:
    """Rendered widget views in outputs: ipywidgets (``.jupyter-widgets``) and plotly FigureWidgets (an anywidget
    view is a bare ``.js-plotly-plot`` directly in the output, unlike a static figure's ``.jp-RenderedPlotly``)."""
    return page.evaluate(
        "() => document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets,"
        " .jp-OutputArea-output.lm-Panel > .js-plotly-plot').length"
    )


def snapshot(page: Any) -> dict[str, list[str]]:
    """Figures (plotly.js data and layout text), slider readouts and text widgets, as comparable strings."""
    return page.evaluate(SNAPSHOT_JS)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Call ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------- JupyterLab


def _sessions(server: Server) -> list[dict]:
    with urllib.request.urlopen(server.url("api/sessions"), timeout=5) as response:
        return json.loads(response.read())


def kernel_state(server: Server, notebook: str) -> str | None:
    """The execution state the server reports for the kernel of ``notebook`` (None before it has one)."""
    for session in _sessions(server):
        if Path(session.get("path", "")).name == notebook and session.get("kernel"):
            return session["kernel"].get("execution_state")
    return None


def _status_bar_idle(page: Any) -> bool:
    return bool(
        page.evaluate(
            "() => { const bar = document.querySelector('#jp-main-statusbar');"
            " return !!bar && /\\|\\s*Idle/.test(bar.innerText); }"
        )
    )


def wait_kernel_idle(page: Any, server: Server, notebook: str, timeout: float = 60.0) -> None:
    """Both the server and the page say the notebook's kernel is idle (started, connected, not busy)."""
    wait_for(
        lambda: kernel_state(server, notebook) == "idle" and _status_bar_idle(page),
        timeout,
        f"the kernel of {notebook} to be idle",
    )


def open_lab(page: Any, server: Server) -> None:
    """Load JupyterLab (a fresh workspace, nothing restored) and collapse the file browser."""
    page.goto(server.url("lab?reset"))
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp.commands.hasCommand('docmanager:open')", timeout=60_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    _hide_left_sidebar(page)


def _current_notebook(page: Any) -> str | None:
    return page.evaluate(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.node.classList.contains('jp-NotebookPanel') ? w.context.path : null; }"
    )


def open_notebook(page: Any, server: Server, notebook: str) -> None:
    """Open ``notebook`` (a path relative to the server's root) in the loaded JupyterLab; wait for an idle kernel."""
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path})", notebook)
    wait_for(lambda: _current_notebook(page) == notebook, 60.0, f"{notebook} to open")
    # the Launcher JupyterLab shows in an empty main area would take a tab in the screenshots
    page.evaluate(
        "() => { const app = window.jupyterapp; for (const w of Array.from(app.shell.widgets('main')))"
        " { if (w !== app.shell.currentWidget && !w.context) w.close(); } }"
    )
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=60_000)
    wait_kernel_idle(page, server, notebook)


def close_notebooks(page: Any) -> None:
    """Save (the copies; closing a modified notebook would ask) and close every open document."""
    page.evaluate(
        "async () => { const app = window.jupyterapp;"
        " for (const w of Array.from(app.shell.widgets('main'))) { if (w.context) await w.context.save(); }"
        " await app.commands.execute('application:close-all'); }"
    )
    wait_for(lambda: page.locator(".jp-NotebookPanel").count() == 0, 15.0, "every notebook to close")


def _hide_left_sidebar(page: Any) -> None:
    """Collapse the file browser (what View > Left Sidebar does) so figures get the full width in screenshots."""
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    wait_for(lambda: not page.locator("#jp-left-stack").is_visible(), 5.0, "the left sidebar to collapse")


def prompts(page: Any) -> list[str]:
    """The execution prompts ("[3]:", "[*]:", "[ ]:") of the current notebook's code cells that hold code
    (JupyterLab gives an empty cell no execution count) and whose input is shown (a collapsed cell has no prompt)."""
    return page.evaluate(
        """() => {
          const panel = window.jupyterapp.shell.currentWidget;
          if (!panel || !panel.content || !panel.content.widgets) return [];
          return panel.content.widgets
            .filter(cell => cell.model.type === 'code' && cell.model.sharedModel.getSource().trim())
            .filter(cell => !cell.inputHidden)  // a collapsed solution cell shows no prompt
            .map(cell => cell.node.querySelector('.jp-InputPrompt').innerText.trim());
        }"""
    )


def _all_executed(page: Any) -> bool:
    shown = prompts(page)
    return bool(shown) and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in shown)


def _click_menu(page: Any, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).first.click()


def run_all_cells(page: Any, server: Server, notebook: str, timeout: float = RUN_TIMEOUT_S) -> int:
    """Run > Run All Cells, then wait until every code cell shows an execution count and the kernel is idle.

    Run All can be swallowed while a kernel is still (re)starting (seen on a first run): when nothing is
    running and not every cell has executed, it is retried once. Returns the number of attempts (1 or 2).
    An error stops execution of the remaining cells; that is reported by :func:`error_outputs`, so this returns
    as soon as the kernel is idle with an error on the page.
    """
    for attempt in (1, 2):
        _click_menu(page, "Run", "Run All Cells")
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            time.sleep(0.5)
            idle = kernel_state(server, notebook) == "idle" and _status_bar_idle(page)
            running = any("*" in prompt for prompt in prompts(page))
            if idle and not running and (_all_executed(page) or error_outputs(page)):
                return attempt
            if idle and not running and time.monotonic() - started > 5.0:
                break  # nothing is running and cells are unexecuted: Run All was lost
        else:
            raise TimeoutError(f"{notebook}: cells still running after {timeout:.0f} s: {prompts(page)}")
        wait_kernel_idle(page, server, notebook)
    raise AssertionError(f"{notebook}: Run All Cells did not execute every cell twice in a row: {prompts(page)}")


# ---------------------------------------------------------------------------------------------- sliders


@dataclass
class SliderMove:
    """The result of moving one slider with the keyboard."""

    index: int
    readout_before: str
    readout_after: str
    changed: list[str]  # "figure 2", "text 0", ... whatever else changed on the page
    before: dict[str, list[str]] = field(repr=False, default_factory=dict)
    after: dict[str, list[str]] = field(repr=False, default_factory=dict)


def slider_count(page: Any) -> int:
    return page.locator(".widget-slider .noUi-handle").count()


def _differences(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    changed = []
    for kind, label in (("figures", "figure"), ("texts", "text")):
        old, new = before[kind], after[kind]
        if len(old) != len(new):
            changed.append(f"{label} count {len(old)} -> {len(new)}")
        changed.extend(f"{label} {i}" for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b)
    return changed


def move_slider(
    page: Any,
    index: int,
    presses: int = ARROW_PRESSES,
    key: str = "ArrowRight",
    wait_idle: Callable[[], None] | None = None,
) -> SliderMove:
    """Focus the ``index``-th slider handle, press ``key`` ``presses`` times, wait for the page to follow.

    Waits until the slider's readout has changed, then (``wait_idle``) until the kernel has run every
    ``observe`` callback, then until figures and text widgets stop changing. Only changes *other* than the
    slider's own readout are reported in ``changed``.
    """
    handle = page.locator(".widget-slider .noUi-handle").nth(index)
    readout = page.locator(".widget-slider").nth(index).locator(".widget-readout")
    handle.scroll_into_view_if_needed()
    before = snapshot(page)
    readout_before = readout.inner_text().strip() if readout.count() else ""
    handle.focus()
    for _ in range(presses):
        page.keyboard.press(key)
    if readout.count():
        wait_for(lambda: readout.inner_text().strip() != readout_before, 10.0, f"slider {index}'s readout to move")
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = snapshot(page)
    while time.monotonic() < deadline and not _differences(before, last):
        time.sleep(0.25)
        last = snapshot(page)
    if wait_idle is not None:
        wait_idle()
    last = settle(page, timeout=max(1.0, deadline - time.monotonic()))
    readout_after = readout.inner_text().strip() if readout.count() else ""
    return SliderMove(index, readout_before, readout_after, _differences(before, last), before, last)


def _at_maximum(page: Any, index: int) -> bool:
    """The slider sits at its maximum (noUiSlider's aria values), so ArrowRight would not move it."""
    handle = page.locator(".widget-slider .noUi-handle").nth(index)
    now, high = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    try:
        return float(now) >= float(high)
    except (TypeError, ValueError):
        return False


def _close(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers to a relative 1e-6 (a slider moved back can land one ulp off its start)."""
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float) or not isinstance(b, int | float):
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
        return a == b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


def same_state(a: dict[str, list[str]], b: dict[str, list[str]]) -> bool:
    """Two snapshots show the same figures (numbers to 1e-6), readouts and texts."""
    figures = len(a["figures"]) == len(b["figures"]) and all(
        _close(json.loads(x), json.loads(y)) for x, y in zip(a["figures"], b["figures"], strict=True)
    )
    return figures and a["readouts"] == b["readouts"] and a["texts"] == b["texts"]


def _wait_for_state(page: Any, expected: dict[str, list[str]], what: str) -> None:
    try:
        wait_for(lambda: same_state(snapshot(page), expected), SETTLE_TIMEOUT_S, what)
    except TimeoutError:
        current = snapshot(page)
        texts = [(old, new) for old, new in zip(expected["texts"], current["texts"], strict=False) if old != new]
        raise AssertionError(
            f"{what}: still different after {SETTLE_TIMEOUT_S:.0f} s - {_differences(expected, current)}; "
            f"texts (expected, shown): {texts}; readouts {expected['readouts']} vs {current['readouts']}"
        ) from None


def screenshot_at_first_slider(page: Any, path: Path) -> None:
    """Scroll the first slider's output (the slider and the figure it drives), or else the first figure, to the
    top, then capture the view."""
    page.evaluate(
        "() => { const s = document.querySelector('.widget-slider') || document.querySelector('.js-plotly-plot');"
        " const area = s && s.closest('.jp-OutputArea'); if (area) area.scrollIntoView({block: 'start'}); }"
    )
    time.sleep(0.3)
    page.screenshot(path=str(path))


def move_sliders_until_something_follows(
    page: Any, wait_idle: Callable[[], None] | None = None, max_sliders: int = 4
) -> list[SliderMove]:
    """Move sliders in page order until one changes a figure or a text readout; return every move made.

    The slider that changed something is then moved back: figures and readouts must return exactly to where
    they were (they follow the slider's value, not the history of moves). It is then moved forward again so
    the page shows the moved state; with ``wait_idle`` (a kernel-idle signal) that state must be reproduced
    exactly too.
    """
    moves = []
    for index in range(min(slider_count(page), max_sliders)):
        forward, back = ("ArrowLeft", "ArrowRight") if _at_maximum(page, index) else ("ArrowRight", "ArrowLeft")
        move = move_slider(page, index, key=forward, wait_idle=wait_idle)
        moves.append(move)
        if not move.changed:
            continue
        move_slider(page, index, key=back, wait_idle=wait_idle)
        _wait_for_state(page, move.before, f"slider {index}'s figures to return when it is moved back")
        move_slider(page, index, key=forward, wait_idle=wait_idle)
        if wait_idle is not None:
            _wait_for_state(page, move.after, f"slider {index}'s figures to reach the same state again")
        break
    return moves


# ---------------------------------------------------------------------------------------------- Voila

VOILA_STATE_JS = """() => ({
  complete: document.readyState === 'complete' && !document.querySelector('#loading'),
  pending: [...document.querySelectorAll('.jp-OutputArea-output')].filter(e => !e.children.length
             && !e.innerText.trim()).length,
})"""


def open_dashboard(page: Any, server: Server, notebook: str, timeout: float = RUN_TIMEOUT_S) -> None:
    """Open ``notebook`` as a Voila dashboard and wait until it has executed and every widget has rendered.

    Voila streams the page while the kernel executes (``#loading`` shown, document still loading); widget
    outputs arrive as empty placeholders that the widget manager fills afterwards.
    """
    page.goto(server.url(f"voila/render/{notebook}"), wait_until="commit", timeout=timeout * 1000)

    def rendered() -> bool:
        state = page.evaluate(VOILA_STATE_JS)
        return state["complete"] and state["pending"] == 0

    wait_for(rendered, timeout, f"the dashboard {notebook} to execute and render its widgets", interval=0.5)
    settle(page)


def settle(page: Any, last: dict[str, list[str]] | None = None, timeout: float = SETTLE_TIMEOUT_S) -> dict:
    """Wait until figures, readouts and text widgets are the same in two snapshots 0.5 s apart; return it."""
    last = snapshot(page) if last is None else last
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = snapshot(page)
        if current == last:
            break
        last = current
    return last


def visible_code_lines(page: Any, code_lines: list[str]) -> list[str]:
    """The lines of ``code_lines`` that appear verbatim in the page's visible text (should be none)."""
    text = page.evaluate("() => document.body.innerText")
    return [line for line in code_lines if line in text]


# ---------------------------------------------------------------------------------------------- figure labels

LABELS_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
  // titles from the figure as written (plotly.js fills "Click to enter ... title" placeholders into _fullLayout)
  const layout = plot.layout || {}, full = plot._fullLayout || {}, data = plot._fullData || [];
  const text = t => (t && (typeof t === 'string' ? t : t.text) || '').toString().trim();
  const used = new Set();
  data.filter(t => t.visible !== false && t.xaxis).forEach(t => { used.add(t.xaxis); used.add(t.yaxis); });
  const axes = [...used].map(id => {
    const key = id[0] + 'axis' + id.slice(1);
    return {axis: key, title: text(layout[key] && layout[key].title), shown: !!(full[key] && full[key].visible)};
  });
  const ternary = Object.keys(full).filter(k => /^ternary\\d*$/.test(k)).flatMap(k =>
    ['aaxis', 'baxis', 'caxis'].map(a => ({axis: k + '.' + a, title: text(((layout[k] || {})[a] || {}).title),
                                          shown: true})));
  const legendTraces = data.filter(t => t.visible !== false && t.showlegend !== false && t.name);
  return {
    title: text(layout.title) || (layout.annotations || []).map(a => text(a)).filter(Boolean).join(' | '),
    axes: axes.concat(ternary),
    traces: data.filter(t => t.visible !== false).length,
    legend: !!full.showlegend && legendTraces.length > 0,
    legendTraces: legendTraces.length,
  };
})"""


def figure_label_problems(page: Any) -> list[str]:
    """Figures without a title, shown axes without a title, several named traces without a legend."""
    problems = []
    for index, figure in enumerate(page.evaluate(LABELS_JS)):
        if not figure["title"]:
            problems.append(f"figure {index}: no title")
        problems += [
            f"figure {index}: {a['axis']} has no title" for a in figure["axes"] if a["shown"] and not a["title"]
        ]
        if figure["legendTraces"] > 1 and not figure["legend"]:
            problems.append(f"figure {index}: {figure['legendTraces']} named traces but no legend")
    return problems


def sliders_without_readout(page: Any) -> list[str]:
    """Descriptions of the visible sliders that show no current value (readout hidden or empty)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.widget-slider')].filter(s => s.offsetParent !== null).filter(s => {
             const r = s.querySelector('.widget-readout');
             return !r || r.offsetParent === null || !r.innerText.trim();
           }).map(s => (s.querySelector('.widget-label') || {}).innerText || '(no description)')"""
    )


# ---------------------------------------------------------------------------------------------- exercises

FIND_CELL_JS = """(match) => window.jupyterapp.shell.currentWidget.content.widgets.findIndex(
  cell => cell.model.type === 'code' && cell.model.sharedModel.getSource().includes(match))"""

RUN_CELL_JS = """([index, source]) => {
  const app = window.jupyterapp;
  const notebook = app.shell.currentWidget.content;
  notebook.widgets[index].model.sharedModel.setSource(source);
  notebook.activeCellIndex = index;
  return app.commands.execute('notebook:run-cell');
}"""

CELL_OUTPUT_JS = """(index) => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[index];
  const outputs = cell.model.outputs.toJSON();
  return {count: cell.model.executionCount, text: outputs.map(o => [].concat(o.text || '',
    o.data && o.data['text/plain'] || '', o.evalue || '').join('')).join('\\n')};
}"""


def run_cell_with_source(page: Any, server: Server, notebook: str, match: str, source: str) -> str:
    """Give the first code cell whose source contains ``match`` the new ``source``, run it as a student would
    (the cell's own Run command), and return the text of its outputs once the kernel is idle again."""
    index = page.evaluate(FIND_CELL_JS, match)
    if index < 0:
        raise AssertionError(f"{notebook}: no code cell contains {match!r}")
    before = page.evaluate(CELL_OUTPUT_JS, index)["count"]
    page.evaluate(RUN_CELL_JS, [index, source])
    wait_for(
        lambda: page.evaluate(CELL_OUTPUT_JS, index)["count"] not in (None, before) and _status_bar_idle(page),
        60.0,
        f"{notebook}: the edited cell {index} to run",
    )
    wait_kernel_idle(page, server, notebook)
    return page.evaluate(CELL_OUTPUT_JS, index)["text"]
