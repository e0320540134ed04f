"""JupyterLab and Voila as subprocesses for the browser tests: 127.0.0.1, a free port, a token, always stopped.

Each server gets its own Jupyter config, runtime, settings and workspace folders under a temporary directory, so
nothing the user configured leaks in and nothing of the test leaks out. JupyterLab's news ("announcements")
plugin is disabled (its toast covers screenshots and it would try to reach the network) and notebook windowing
is turned off so every cell of a long notebook stays in the page.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from wttm_core.present import voila_command

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0

LAB_PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
LAB_USER_SETTINGS = {
    # every cell stays in the DOM, so a figure at the end of a notebook is rendered and can be inspected
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no "fetch news?" question, no update check
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running server subprocess (in its own process group) and where to reach it."""

    name: str
    process: subprocess.Popen
    port: int
    token: str
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on this server, with the token as a query parameter."""
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{separator}token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, path: str, timeout: float = START_TIMEOUT_S) -> float:
        """Poll ``path`` until it answers 200; return the seconds it took. Fails early if the process died."""
        start = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url(path), timeout=5) as response:
                    if response.status == 200:
                        return time.monotonic() - start
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"{self.name} did not answer {path} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self) -> None:
        """SIGTERM to the whole process group (server and its kernels), SIGKILL if it lingers."""
        try:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(STOP_TIMEOUT_S)
            # kernels that outlived a clean server exit are still in the group
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        finally:
            if self._log is not None:
                self._log.close()


def _isolated_environment(workdir: Path) -> dict[str, str]:
    """Environment with private Jupyter folders under ``workdir`` and the repository importable."""
    config, runtime, data = workdir / "config", workdir / "runtime", workdir / "data"
    settings, workspaces = workdir / "lab-settings", workdir / "lab-workspaces"
    for folder in (config / "labconfig", runtime, data, settings, workspaces):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(LAB_PAGE_CONFIG))
    for relative, values in LAB_USER_SETTINGS.items():
        target = settings / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_DATA_DIR=str(data),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def _spawn(name: str, command: list[str], workdir: Path, port: int, token: str) -> Server:
    log_path = workdir / f"{name}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed by Server.stop
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=_isolated_environment(workdir),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Server(name=name, process=process, port=port, token=token, log_path=log_path, _log=log)


def _root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def start_jupyterlab(root: Path, workdir: Path) -> Server:
    """JupyterLab serving ``root`` on 127.0.0.1 (random port, random token); ready when this returns."""
    port, token = free_port(), secrets.token_hex(16)
    command = [
        str(BIN / "jupyter"),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        # window.jupyterapp: notebooks are opened and closed in one page (an app load costs ~8 s on 2 cores)
        "--LabApp.expose_app_in_browser=True",
        *_root_flag(),
    ]
    server = _spawn("jupyterlab", command, workdir, port, token)
    try:
        server.wait_ready("api/status")
    except BaseException:
        server.stop()
        raise
    return server


def start_voila(directory: Path, workdir: Path) -> Server:
    """Voila serving the notebooks in ``directory`` (``make present``'s command) on a random port, with a token."""
    port, token = free_port(), secrets.token_hex(16)
    command = [*voila_command(directory, port=port, token=token), "--Voila.port_retries=0"]
    server = _spawn("voila", command, workdir, port, token)
    try:
        server.wait_ready("")
    except BaseException:
        server.stop()
        raise
    return server
