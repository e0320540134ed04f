"""Static images of the figures, saved next to the interactive ones so an executed notebook reads anywhere.

A static plotly figure in a notebook output carries only plotly's JSON mime type, which JupyterLab draws and
nothing else does: ``jupyter nbconvert --to html``, nbviewer and GitHub show an empty output. With
:func:`enable_figure_images` every figure a cell shows also carries a PNG (or SVG) of itself in the same output,
so JupyterLab still shows the interactive figure and every other viewer shows the image.

When: the environment variable :data:`FIGURE_IMAGES_ENV`, read when :mod:`wttm_core.viz` is imported, says
``png`` or ``svg`` (always; the notebook runner sets ``png`` for its kernels), ``none`` (never) or nothing /
``auto`` (the default): images in a *batch execution*, that is a notebook executed without a person at it -
papermill, nbclient, ``jupyter nbconvert --execute``, ``wttm sweep``, the tests - with the notebook's
``interactive`` parameter False (how the project's batch runs execute every notebook, see README). A kernel that a
Jupyter server started (JupyterLab, Notebook, Voila: ``$JPY_SESSION_NAME`` is set) is never a batch execution,
and neither is plain Python outside a kernel, so interactive use pays nothing and sees nothing new.

The image is made by ``kaleido`` (plotly's exporter; version 1 drives a Chrome or Chromium already on the
machine - Debian's ``chromium`` package works offline - through one browser kept open for the whole kernel,
about 0.3 s a figure after a 3-4 s start). When the export fails (no kaleido, no browser), one line on stderr
says so and the figures stay interactive only: a notebook never fails for lack of an image.
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

__all__ = [
    "FIGURE_IMAGES_ENV",
    "IMAGE_FORMATS",
    "batch_execution",
    "enable_figure_images",
    "enable_from_environment",
    "figure_image",
]

FIGURE_IMAGES_ENV = "WTTM_FIGURE_IMAGES"
IMAGE_FORMATS = ("png", "svg")
RENDERER = "wttm_image"
_MIME = {"png": "image/png", "svg": "image/svg+xml"}
OFF, AUTO = ("none", "off", "0", "false"), ("", "auto")
_state: dict[str, Any] = {"server": False, "failed": None}


def _warn_once(reason: str) -> None:
    if _state["failed"] is None:
        _state["failed"] = reason
        print(f"figure images: export failed ({reason}); figures stay interactive only", file=sys.stderr, flush=True)


SINGLE_WIDTH, PANELS_WIDTH = 700, 1100  # px: one panel; side-by-side panels (about a JupyterLab main area)


def _default_width(layout: dict[str, Any]) -> int:
    """The image width for a layout without one: wide enough that side-by-side panels (a second x axis, as
    :func:`wttm_core.viz.panels.side_by_side` makes) stay as readable as a single panel."""
    return PANELS_WIDTH if "xaxis2" in layout else SINGLE_WIDTH


def figure_image(figure: Any, fmt: str = "png") -> bytes | None:
    """``figure`` (a plotly figure or its dict) as PNG or SVG bytes, at its layout's size (default 700 x 450);
    ``None`` (after one line on stderr the first time) when it cannot be exported here."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"fmt must be one of {IMAGE_FORMATS}, got {fmt!r}")
    if _state["failed"] is not None:
        return None
    try:
        import kaleido
        from plotly.io._utils import validate_coerce_fig_to_dict

        if not _state["server"]:  # one browser for the whole process, closed at exit by kaleido itself
            kaleido.start_sync_server(mathjax=False, silence_warnings=True)
            _state["server"] = True
        fig = validate_coerce_fig_to_dict(figure, True)
        layout = fig.get("layout", {})
        width = layout.get("width") or _default_width(layout)
        opts = {"format": fmt, "width": width, "height": layout.get("height") or 450, "scale": 1}
        return kaleido.calc_fig_sync(fig, opts=opts)
    except Exception as error:  # any failure: no image, one line, the notebook goes on
        _warn_once(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
        return None


def _in_kernel() -> Any:
    """The running IPython kernel's shell, or ``None`` (plain Python, a terminal IPython)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    return shell if shell is not None and getattr(shell, "kernel", None) is not None else None


def _kernel_without_server() -> Any:
    """The running IPython kernel's shell when no Jupyter server started it (``$JPY_SESSION_NAME`` unset:
    papermill, nbclient, nbconvert), else ``None``."""
    shell = _in_kernel()
    return None if shell is None or os.environ.get("JPY_SESSION_NAME") else shell


def batch_execution() -> bool:
    """Whether the figure being shown belongs to a batch execution: an IPython kernel that no Jupyter server
    started, running a notebook whose ``interactive`` parameter is False."""
    shell = _kernel_without_server()
    return shell is not None and shell.user_ns.get("interactive", True) is False


def enable_figure_images(fmt: str = "png", *, only_in_batch: bool = False) -> None:
    """Make every plotly figure shown from now on carry a static ``fmt`` image next to its JSON. With
    ``only_in_batch`` only while :func:`batch_execution` holds, and the image renderer is added to the renderers
    plotly chose for this frontend rather than replacing them."""
    import plotly.io as pio
    from plotly.io._base_renderers import MimetypeRenderer

    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"fmt must be one of {IMAGE_FORMATS}, got {fmt!r}")

    class ImageRenderer(MimetypeRenderer):
        def to_mimebundle(self, fig_dict: dict[str, Any]) -> dict[str, Any]:
            if only_in_batch and not batch_execution():
                return {}
            image = figure_image(fig_dict, fmt)
            if image is None:
                return {}
            return {_MIME[fmt]: base64.b64encode(image).decode() if fmt == "png" else image.decode()}

    pio.renderers[RENDERER] = ImageRenderer()
    if not only_in_batch:  # asked for: the figure's JSON and its image, whatever plotly chose before
        pio.renderers.default = f"plotly_mimetype+{RENDERER}"
        return
    chosen = [name for name in (pio.renderers.default or "plotly_mimetype").split("+") if name and name != RENDERER]
    pio.renderers.default = "+".join([*chosen, RENDERER])  # added to what plotly chose for this frontend


def enable_from_environment() -> None:
    """Turn figure images on as :data:`FIGURE_IMAGES_ENV` says: ``png`` / ``svg`` always, ``none`` never, unset or
    ``auto``: PNG images in a batch execution (:func:`batch_execution`), checked as each figure is shown."""
    fmt = os.environ.get(FIGURE_IMAGES_ENV, "").strip().lower()
    if fmt in OFF:
        return
    if fmt in AUTO:
        if _kernel_without_server() is not None:
            enable_figure_images("png", only_in_batch=True)
        return
    if fmt not in IMAGE_FORMATS:
        print(f"{FIGURE_IMAGES_ENV}: expected one of {IMAGE_FORMATS}, got {fmt!r}; no figure images", file=sys.stderr)
        return
    enable_figure_images(fmt)
