"""``<out>/index.html``: one offline page linking an HTML rendering of every executed notebook.

:func:`write_index` renders each executed notebook with nbconvert's HTML exporter into ``<out>/html/<name>.html``
(the figures show as the static images the runner had saved next to them, see :mod:`wttm_core.viz.export`) and
writes ``<out>/index.html``: a table of notebook (linked), status, run time, peak memory, size and, for a failed
notebook, where and why. The page is self-contained (no script, no remote style sheet) and also lists the
machine, the profile and the date, so a saved copy says where its numbers come from. ``<out>/summary.json`` holds
the same table for programs.
"""

from __future__ import annotations

import datetime
import html
import json
import logging
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wttm_core.atomic import write_text_atomic

__all__ = ["render_html", "write_index"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #007a3d; } .FAILED { color: #b00020; font-weight: bold; } .skipped { color: #777; }
"""


def render_html(notebook: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Write an HTML rendering of ``notebook`` to ``target`` (nbconvert, the lab template, inputs shown)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
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


def write_index(out: str | os.PathLike[str], results: Sequence[Mapping[str, Any]], *, profile: str = "") -> Path:
    """Render every executed notebook of ``results`` (dicts with ``name``, ``status``, ``seconds``, ``output``,
    ``peak_mb``, ``size_mb``, ``error``) into ``<out>/html/`` and write ``<out>/index.html``; return its path."""
    out = Path(out)
    rows = []
    for result in results:
        output = Path(result["output"])
        link = None
        if output.is_file():
            try:
                render_html(output, out / "html" / f"{output.stem}.html")
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
        "(figures are interactive there in JupyterLab).</p>\n</body></html>\n"
    )
    index = out / "index.html"
    write_text_atomic(index, page)
    summary = [{k: (str(v) if isinstance(v, Path) else v) for k, v in r.items()} for r in results]
    write_text_atomic(out / "summary.json", json.dumps({"profile": profile, "machine": machine, "results": summary}))
    return index
