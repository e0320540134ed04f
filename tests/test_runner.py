"""The notebook runner (``wttm notebooks`` / ``make notebooks``) on small notebooks written here.

One run covers what a user sees: a failing notebook gives one line naming the notebook, the cell and the cause, its
partial executed notebook is kept, the notebooks after it still run, the exit status is 1, the summary table has
seconds / peak memory / size, kernel noise (ZeroMQ, "running over TCP without encryption") stays in the logs,
figures carry a static image, long cells report progress with an ETA, and ``index.html`` links an HTML rendering
of every notebook. The progress reporter and the image exporter are also tested on their own.
"""

from __future__ import annotations

import base64
import json
import re
import shutil

import nbformat
import pytest
from notebook_files import write_notebook

from wttm_core.lab import index, progress, runner
from wttm_core.viz import export

FIGURE_CELL = "import wttm_core.viz\nimport plotly.graph_objects as go\ngo.Figure(go.Scatter(x=[1, 2, 3], y=[2, 1, 3]))"
TRAINING_CELL = (
    "import time\nfrom wttm_core.lab.progress import Progress\np = Progress('training', 3)\n"
    "for e in range(3):\n    time.sleep(0.3)\n    p.advance(f'run epoch {e + 1}/3')"
)

MATHS_CELL = (
    r"The weight $p_i^{\gamma}$ of Eq. 23: $$\sum_i \frac{a_i}{b}$$ ([the paper](https://arxiv.org/abs/2402.11148))."
)


_write = write_notebook


@pytest.fixture(scope="module")
def executed(tmp_path_factory, monkeypatch_module) -> dict:
    """Run three notebooks (figures + progress, a failure, a plain one) once with the index page."""
    folder = tmp_path_factory.mktemp("nbs")
    _write(folder / "a_figure.ipynb", [("interactive = True", ["parameters"]), (FIGURE_CELL, []), (TRAINING_CELL, [])])
    _write(
        folder / "b_fails.ipynb",
        [("interactive = True", ["parameters"]), ("x = 41", []), ("raise RuntimeError('boom')", []), ("x += 1", [])],
    )
    _write(folder / "c_plain.ipynb", [("interactive = True", ["parameters"]), ("print('c ran', interactive)", [])])
    plain = nbformat.read(str(folder / "c_plain.ipynb"), as_version=4)
    plain.cells.insert(0, nbformat.v4.new_markdown_cell(MATHS_CELL))
    nbformat.write(plain, str(folder / "c_plain.ipynb"))
    work = tmp_path_factory.mktemp("work")
    monkeypatch_module.chdir(work)
    monkeypatch_module.setattr(runner, "PROGRESS_EVERY_S", 0.0)
    lines: list[str] = []
    monkeypatch_module.setattr(runner, "_log_stderr", lines.append)
    code = runner.main(["--notebooks", str(folder), "--out", "out", "--index", "--max-minutes", "30"])
    return {"code": code, "lines": lines, "out": work / "out"}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_failure_is_one_line_the_partial_notebook_is_kept_and_the_rest_still_runs(executed, capsys):
    assert executed["code"] == 1
    lines, out = executed["lines"], executed["out"]
    failed = [line for line in lines if "FAILED" in line]
    assert len(failed) == 1
    assert re.search(
        r"b_fails\.ipynb: FAILED in cell 4 \(.raise RuntimeError\(.boom.\).\): RuntimeError: boom", failed[0]
    )
    noise = "\n".join(lines)
    for word in ("Traceback", "ZMQ", "zmq", "without encryption", "Warning"):
        assert word not in noise
    partial = nbformat.read(str(out / "b_fails.ipynb"), as_version=4)
    assert partial.cells[-2].outputs[0]["ename"] == "RuntimeError"
    assert partial.cells[-1].get("execution_count") is None  # stopped at the failing cell
    assert "c ran False" in json.dumps(nbformat.read(str(out / "c_plain.ipynb"), as_version=4).cells[-1].outputs)
    assert any(line.startswith("[3/3] c_plain.ipynb: ok in") and "MB saved" in line for line in lines)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_progress_lines_report_epochs_and_an_eta(executed):
    progress_lines = [line for line in executed["lines"] if "epochs (run epoch" in line]
    assert progress_lines, executed["lines"]
    assert re.search(
        r"a_figure: cell 4/4, .*training: \d/3 epochs \(run epoch \d/3\), about \d+s left", progress_lines[0]
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_figure_carries_a_static_image_and_the_index_links_html(executed):
    out = executed["out"]
    figure_outputs = [
        o
        for c in nbformat.read(str(out / "a_figure.ipynb"), as_version=4).cells
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(figure_outputs) == 1
    if shutil.which("chromium") is None:
        pytest.skip("no chromium: figure images cannot be exported here (the figure stays interactive)")
    png = base64.b64decode(figure_outputs[0]["data"]["image/png"])
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    index = (out / "index.html").read_text()
    for name in ("a_figure", "b_fails", "c_plain"):
        assert f'href="html/{name}.html"' in index and (out / "html" / f"{name}.html").is_file()
        assert (out / "logs" / f"{name}.log").is_file()
    assert "FAILED" in index and "RuntimeError: boom" in index and "<script" not in index
    assert "data:image/png;base64" in (out / "html" / "a_figure.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["results"]] == ["ok", "FAILED", "ok"]
    assert all(r["peak_mb"] > 10 for r in summary["results"]), "the kernel's peak memory is measured"
    for r in summary["results"]:
        assert r["seconds"] > 0 and r["size_mb"] == pytest.approx((out / r["name"]).stat().st_size / 1e6)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_html_pages_load_nothing_from_the_network_and_typeset_maths_locally(executed):
    """Every page: no script, style sheet, font or image from a URL (hyperlinks in the text are allowed); the
    maths is typeset by the local MathJax the page points to (a relative URL to a file that exists)."""
    out = executed["out"]
    assert index.remote_loads((out / "index.html").read_text()) == []
    for name in ("a_figure", "b_fails", "c_plain"):
        page = (out / "html" / f"{name}.html").read_text()
        assert index.remote_loads(page) == [], name
        for word in ("require.js", "cdnjs", "unpkg", "mermaid.esm", "cdn.plot.ly", "plotly.min.js"):
            assert word not in page, (name, word)
        sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
        assert sources == [f"../{index.MATHJAX_DIR.as_posix()}/MathJax.js?config={index.MATHJAX_CONFIG}"], name
        assert (out / "html" / sources[0].split("?")[0]).resolve().is_file()
    plain = (out / "html" / "c_plain.html").read_text()
    assert "p_i^{\\gamma}" in plain and 'href="https://arxiv.org/abs/2402.11148"' in plain  # a link, not a load
    assert (out / index.MATHJAX_DIR / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()


def test_remote_loads_finds_scripts_sheets_and_imports_but_not_links():
    page = (
        '<a href="https://example.org/paper">paper</a><script src="https://cdn.example/x.js"></script>'
        "<link rel='stylesheet' href='//cdn.example/s.css'><style>@import url(https://f.example/a.css);"
        'b { background: url("http://i.example/b.png") }</style><img src=https://i.example/c.png>'
        '<script type="module">await import("https://cdn.example/m.mjs")</script><script src="../local.js"></script>'
    )
    found = index.remote_loads(page)
    assert len(found) == 6 and not any("example.org/paper" in f or "local.js" in f for f in found)


def test_local_mathjax_is_copied_once_and_whole(tmp_path):
    script = index.local_mathjax(tmp_path)
    assert script == tmp_path / index.MATHJAX_DIR / "MathJax.js" and script.is_file()
    marker = script.parent / "config" / "TeX-AMS-MML_HTMLorMML-full.js"
    stamp = marker.stat().st_mtime_ns
    assert index.local_mathjax(tmp_path) == script and marker.stat().st_mtime_ns == stamp  # not copied again
    assert [p.name for p in (tmp_path / index.MATHJAX_DIR.parent).iterdir()] == ["mathjax"]  # no staging left


def test_progress_reports_eta_from_the_first_unit(tmp_path, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(progress.PROGRESS_ENV, str(events))
    counter = progress.Progress("training", 4)
    assert counter.eta_seconds is None
    counter.advance("a")
    counter.advance("b")
    read, offset = progress.read_events(events)
    assert [e["done"] for e in read] == [1, 2] and read[-1]["total"] == 4 and read[-1]["eta_s"] is not None
    with open(events, "a") as handle:
        handle.write('{"event": "progress", "done"')  # a line still being written is left for the next read
    assert progress.read_events(events, offset) == ([], offset)
    monkeypatch.delenv(progress.PROGRESS_ENV)
    progress.Progress("x", 1).advance()  # no file named: nothing happens
    assert progress.format_seconds(75) == "1m15s" and progress.format_seconds(3725) == "1h02m"
    with pytest.raises(ValueError, match="total"):
        progress.Progress("x", -1)


def test_a_failed_image_export_is_one_line_and_the_figure_stays(monkeypatch, capsys):
    import kaleido
    import plotly.graph_objects as go
    import plotly.io as pio

    def broken(*args, **kwargs):
        raise RuntimeError("no browser here")

    previous = pio.renderers.default
    monkeypatch.setattr(kaleido, "start_sync_server", broken)
    monkeypatch.setattr(export, "_state", {"server": False, "failed": None})
    try:
        export.enable_figure_images("png")
        bundle = pio.renderers._build_mime_bundle(go.Figure(go.Bar(y=[1, 2])).to_dict())
        bundle_again = pio.renderers._build_mime_bundle(go.Figure(go.Bar(y=[3])).to_dict())
    finally:
        pio.renderers.default = previous
    assert "application/vnd.plotly.v1+json" in bundle and "image/png" not in bundle
    assert "image/png" not in bundle_again
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["figure images: export failed (RuntimeError: no browser here); figures stay interactive only"]
    with pytest.raises(ValueError, match="fmt"):
        export.figure_image(go.Figure(), "gif")


def test_runner_bad_arguments(tmp_path, capsys):
    assert runner.main(["--notebooks", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "notebook_dir" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_minutes"):
        runner.run_all(tmp_path, tmp_path / "o", max_minutes=0)
    with pytest.raises(ValueError, match="images"):
        runner.run_all(tmp_path, tmp_path / "o", images="gif")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_whole_run_limit_interrupts_the_running_cell_and_skips_the_rest(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    folder.mkdir()
    _write(folder / "a_slow.ipynb", [("interactive = True", ["parameters"]), ("import time\ntime.sleep(600)", [])])
    _write(folder / "b_next.ipynb", [("interactive = True", ["parameters"]), ("print('b')", [])])
    monkeypatch.setattr(runner, "GRACE_S", 20.0)
    lines: list[str] = []
    results = runner.run_all(folder, tmp_path / "out", max_minutes=0.5, images="none", log=lines.append)
    assert [r.status for r in results] == ["FAILED", "skipped"]
    assert (
        "stopped by the whole-run limit (--max-minutes); run again to continue (KeyboardInterrupt" in results[0].error
    )
    assert results[0].seconds < 200
    saved = nbformat.read(str(tmp_path / "out" / "a_slow.ipynb"), as_version=4)
    assert saved.cells[-1].outputs[0]["ename"] == "KeyboardInterrupt"  # interrupted like Ctrl-C, and saved
    assert lines[-1] == "[2/2] b_next.ipynb: skipped (the whole-run limit was reached)"


def test_wttm_notebooks_is_the_runner_with_the_index(tmp_path, capsys, monkeypatch):
    from wttm_core import cli

    seen = {}
    monkeypatch.setattr(runner, "run_all", lambda *args, **kwargs: seen.update(kwargs) or [])
    assert cli.main(["notebooks", "--notebooks", str(tmp_path), "--out", str(tmp_path / "o")]) == 2  # none there
    assert seen["logs"] == tmp_path / "o" / "logs"  # the index (and its logs folder) is on by default
    monkeypatch.undo()
    assert cli.main(["notebooks", "--notebooks", str(tmp_path), "--max-minutes", "0"]) == 2
    assert "max_minutes must be > 0" in capsys.readouterr().err


def test_side_by_side_panels_export_wide(monkeypatch):
    """Related panels side by side get a JupyterLab-wide image (1100 px); a single panel keeps 700 px."""
    import shutil
    import struct

    from wttm_core.viz.panels import side_by_side
    from wttm_core.viz.style import FigureSpec, base_layout

    if shutil.which("chromium") is None:
        pytest.skip("no chromium: figure images cannot be exported here")
    monkeypatch.setattr(export, "_state", {"server": False, "failed": None})
    single = FigureSpec([{"type": "scatter", "y": [1, 2]}], base_layout("a", "x", "y"))
    pair = side_by_side([single, single], title="two panels", width=None)  # no width of its own
    widths = []
    for spec in (single, pair):
        png = export.figure_image(spec.to_figure(), "png")
        assert png is not None and png.startswith(b"\x89PNG")
        widths.append(struct.unpack(">I", png[16:20])[0])  # IHDR: width in pixels
    assert widths == [export.SINGLE_WIDTH, export.PANELS_WIDTH] == [700, 1100]


class _FakeShell:
    kernel = object()

    def __init__(self, **namespace):
        self.user_ns = namespace


def test_a_batch_execution_is_a_kernel_without_a_jupyter_server_and_interactive_false(monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setattr(export, "_in_kernel", lambda: _FakeShell(interactive=False))
    assert export.batch_execution()
    monkeypatch.setattr(export, "_in_kernel", lambda: _FakeShell(interactive=True))
    assert not export.batch_execution()
    monkeypatch.setattr(export, "_in_kernel", lambda: _FakeShell())  # a notebook without the parameter
    assert not export.batch_execution()
    monkeypatch.setattr(export, "_in_kernel", lambda: _FakeShell(interactive=False))
    monkeypatch.setenv("JPY_SESSION_NAME", "/home/me/05_train_students.ipynb")  # JupyterLab started this kernel
    assert not export.batch_execution()
    monkeypatch.setattr(export, "_in_kernel", lambda: None)  # plain Python
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert not export.batch_execution()


def test_the_environment_variable_decides_and_plain_python_pays_nothing(monkeypatch):
    import plotly.io as pio

    previous = pio.renderers.default
    try:
        for setting in ("none", "", "auto"):  # off; and auto outside a kernel (plain Python, this test) does nothing
            monkeypatch.setenv(export.FIGURE_IMAGES_ENV, setting)
            export.enable_from_environment()
            assert pio.renderers.default == previous, setting
        monkeypatch.setenv(export.FIGURE_IMAGES_ENV, "svg")
        export.enable_from_environment()
        assert pio.renderers.default == "plotly_mimetype+wttm_image"
    finally:
        pio.renderers.default = previous


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_plain_papermill_runs_carry_images_in_batch_mode_only(tmp_path, monkeypatch):
    """papermill without the runner (as CI and ``wttm sweep`` run it), ``$WTTM_FIGURE_IMAGES`` unset: a figure shown
    while ``interactive`` is False carries a PNG, one shown after the notebook sets ``interactive = True`` does not."""
    if shutil.which("chromium") is None:
        pytest.skip("no chromium: figure images cannot be exported here")
    cells = [("interactive = True", ["parameters"]), (FIGURE_CELL, []), ("interactive = True\n" + FIGURE_CELL, [])]
    src = _write(tmp_path / "batch.ipynb", cells)
    monkeypatch.delenv(export.FIGURE_IMAGES_ENV, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    out = runner.execute_notebook(src, tmp_path / "out.ipynb", {"interactive": False})
    figures = [
        o.get("data", {})
        for c in nbformat.read(str(out), as_version=4).cells
        for o in c.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert ["image/png" in f for f in figures] == [True, False]


def test_render_html_alone_puts_mathjax_next_to_the_page(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(MATHS_CELL)]
    nbformat.write(notebook, str(tmp_path / "n.ipynb"))
    page = index.render_html(tmp_path / "n.ipynb", tmp_path / "pages" / "n.html").read_text()
    assert re.findall(r'<script[^>]*\bsrc="([^"]+)"', page) == [
        f"_static/mathjax/MathJax.js?config={index.MATHJAX_CONFIG}"
    ]
    assert (tmp_path / "pages" / "_static" / "mathjax" / "MathJax.js").is_file() and index.remote_loads(page) == []
