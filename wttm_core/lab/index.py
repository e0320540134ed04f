"""``<out>/index.html``: one offline page linking an HTML rendering of every executed notebook.

:func:`write_index` renders each executed notebook with nbconvert's HTML exporter into ``<out>/html/<name>.html``
(the figures show as the static images saved next to them, see :mod:`wttm_core.viz.export`) and writes
``<out>/index.html``: a table of notebook (linked), status, run time, peak memory, size and, for a failed
notebook, where and why. The page is self-contained (no script, no remote style sheet) and also lists the
machine, the profile and the date, so a saved copy says where its numbers come from. ``<out>/summary.json`` holds
the same table for programs.

Everything reads offline: the HTML renderings load no script or style sheet from the network. nbconvert's lab
template would fetch require.js, MathJax and mermaid from a CDN; here require.js, mermaid and the widget manager
are left out (the executed notebooks carry no widget state and no JavaScript output), and the maths (the
notebooks' LaTeX) is typeset by a local copy of MathJax 2.7 from the ``jupyter-server-mathjax`` package (in the
``notebooks`` extra), copied once into ``<out>/_static/mathjax/`` and loaded through a relative URL, so the whole
folder can be copied, zipped or opened from a USB stick. Without that package the pages fall back to
nbconvert's CDN MathJax (one line says so): the text and the figures still read, the formulas only online.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wttm_core.atomic import write_text_atomic

__all__ = ["MATHJAX_DIR", "local_mathjax", "remote_loads", "render_html", "write_index"]

MATHJAX_DIR = Path("_static") / "mathjax"  # under the output folder
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"  # the combined configurations jupyter-server-mathjax ships
# nbconvert's lab template without what it would load from the network: require.js (no output here needs it),
# mermaid (no diagram here) and the widget manager (no widget state is stored); MathJax comes from mathjax_url.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
NO_MATHJAX = (
    "html: jupyter-server-mathjax is not installed (pip install 'wttm[notebooks]'); the pages typeset their "
    "formulas with MathJax from the network"
)
_said = {"no_mathjax": False}
_URL_REST = r"[^\s\"'<>)]*"  # the rest of the URL, so that each finding names what would be fetched
_REMOTE_LOADS = (  # what makes a browser fetch something: scripts, style sheets, frames, images, CSS and JS imports
    r"<(?:script|img|iframe|embed|source|audio|video)\b[^>]*\bsrc\s*=\s*[\"']?(https?:)?//",
    r"<link\b[^>]*\bhref\s*=\s*[\"']?(https?:)?//",
    r"@import\s+[\"'](https?:)?//",  # @import url(...) is the url() below
    r"url\(\s*[\"']?(https?:)?//",
    r"\bimport\s*\(\s*[\"'`](https?:)?//",
)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #007a3d; } .FAILED { color: #b00020; font-weight: bold; } .skipped { color: #777; }
"""


def remote_loads(page: str) -> list[str]:
    """The places in an HTML ``page`` that would make a browser fetch a script, style sheet, font, frame or image
    from the network (``http://``, ``https://`` or ``//`` URLs in ``src``, ``<link href>``, CSS ``url()`` /
    ``@import`` and JavaScript ``import()``); plain hyperlinks (``<a href>``) are not loads and are not listed."""
    found = []
    for pattern in _REMOTE_LOADS:
        found += [m.group(0) for m in re.finditer(pattern + _URL_REST, page, flags=re.IGNORECASE)]
    return found


def local_mathjax(out: str | os.PathLike[str]) -> Path | None:
    """``<out>/_static/mathjax/MathJax.js``, copied there from ``jupyter-server-mathjax`` the first time (a whole
    copy or none: it is assembled in a temporary folder first); ``None``, after one line on stderr, when that
    package is not installed."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        if not _said["no_mathjax"]:
            _said["no_mathjax"] = True
            print(NO_MATHJAX, file=sys.stderr)
        return None
    source = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    target = Path(out) / MATHJAX_DIR
    script = target / "MathJax.js"
    if script.is_file() and script.read_bytes() == (source / "MathJax.js").read_bytes():
        return script
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mathjax-", dir=target.parent) as scratch:
        staged = Path(scratch) / "mathjax"
        shutil.copytree(source, staged)
        if target.exists():  # an older copy this function made: replaced whole
            shutil.rmtree(target)
        staged.rename(target)
    return script


def render_html(
    notebook: str | os.PathLike[str], target: str | os.PathLike[str], *, mathjax: str | os.PathLike[str] | None = None
) -> Path:
    """Write an HTML rendering of ``notebook`` to ``target`` (nbconvert's lab template, inputs shown) that loads
    nothing from the network: ``mathjax`` is the local ``MathJax.js`` to typeset with (default: a copy made by
    :func:`local_mathjax` next to ``target``), referenced by a URL relative to ``target``."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    target = Path(target)
    script = Path(mathjax) if mathjax is not None else local_mathjax(target.parent)
    options: dict[str, Any] = {}
    if script is not None:
        relative = Path(os.path.relpath(script.resolve(), target.parent.resolve())).as_posix()
        options["mathjax_url"] = f"{relative}?config={MATHJAX_CONFIG}"
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"wttm_offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="wttm_offline.html.j2",
        **options,
    )
    quiet = logging.getLogger("traitlets")  # nbconvert's remarks (e.g. images without alt text) are not news here
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        body, _ = exporter.from_notebook_node(nbformat.read(str(notebook), as_version=4))
    finally:
        quiet.setLevel(level)
    write_text_atomic(target, body)
    return Path(target)


def _row(result: Mapping[str, Any], link: str | None) -> str:
    name = html.escape(str(result["name"]))
    cell = f'<a href="{html.escape(link)}">{name}</a>' if link else name
    peak = f"{result['peak_mb']:.0f}" if result.get("peak_mb") else "-"
    size = f"{result['size_mb']:.2f}" if result.get("size_mb") is not None else "-"
    status = html.escape(str(result["status"]))
    cause = html.escape(str(result.get("error", "")))
    return (
        f"<tr><td>{cell}</td><td class='{status}'>{status}</td><td class='num'>{result['seconds']:.1f}</td>"
        f"<td class='num'>{peak}</td><td class='num'>{size}</td><td>{cause}</td></tr>"
    )


def _maths_note(mathjax: Path | None) -> str:
    if mathjax is None:
        return "The formulas are typeset by MathJax from the network (jupyter-server-mathjax is not installed)."
    where = f"<code>{MATHJAX_DIR.as_posix()}/</code>"
    return f"The formulas are typeset by the copy of MathJax in {where}: the whole folder reads offline."


def write_index(out: str | os.PathLike[str], results: Sequence[Mapping[str, Any]], *, profile: str = "") -> Path:
    """Render every executed notebook of ``results`` (dicts with ``name``, ``status``, ``seconds``, ``output``,
    ``peak_mb``, ``size_mb``, ``error``) into ``<out>/html/`` and write ``<out>/index.html``; return its path."""
    out = Path(out)
    rows = []
    mathjax = local_mathjax(out) if any(Path(r["output"]).is_file() for r in results) else None
    for result in results:
        output = Path(result["output"])
        link = None
        if output.is_file():
            try:
                render_html(output, out / "html" / f"{output.stem}.html", mathjax=mathjax)
                link = f"html/{output.stem}.html"
            except Exception as error:  # a notebook that cannot be rendered is still listed
                result = {**result, "error": f"{result.get('error', '')} (no HTML: {type(error).__name__})".strip()}
        rows.append(_row(result, link))
    total = sum(r["seconds"] for r in results)
    machine = f"{platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>wttm notebooks</title>"
        f"<style>{_STYLE}</style></head><body>\n<h1>wttm: executed notebooks</h1>\n"
        f"<p>Profile <b>{html.escape(profile or '-')}</b>, run {stamp} on {html.escape(machine)}; "
        f"{total:.0f} s in all.</p>\n<table>\n<tr><th>notebook</th><th>status</th><th>seconds</th>"
        "<th>peak memory (MB)</th><th>size (MB)</th><th>cause</th></tr>\n" + "\n".join(rows) + "\n</table>\n"
        "<p>Each link opens a static HTML rendering; the executed <code>.ipynb</code> files sit next to this page "
        f"(figures are interactive there in JupyterLab). {_maths_note(mathjax)}</p>\n</body></html>\n"
    )
    index = out / "index.html"
    write_text_atomic(index, page)
    summary = [{k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for r in results]
    write_text_atomic(out / "summary.json", json.dumps({"profile": profile, "machine": machine, "results": summary}))
    return index
