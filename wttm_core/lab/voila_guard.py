"""Voila that answers only local ``Host`` names: ``python -m wttm_core.lab.voila_guard [--allow-host=NAME] ...``.

Standalone Voila switches jupyter_server's ``Host`` check off (``allow_remote_access=True``), so any web page
could reach a classroom dashboard through DNS rebinding and start kernels. This launcher turns the check back
on: a request is served when its ``Host`` is a loopback address, ``localhost`` or a name given with
``--allow-host`` (repeatable; removed from the arguments before Voila reads them), and refused with 403
otherwise. Every other argument is Voila's own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from voila.app import Voila

ALLOW_HOST = "--allow-host="


class GuardedVoila(Voila):
    """Voila with jupyter_server's ``Host`` header check on, for :data:`local_hostnames`."""

    local_hostnames: tuple[str, ...] = ("localhost",)

    def init_settings(self) -> dict[str, Any]:
        settings = super().init_settings()
        settings["allow_remote_access"] = False
        settings["local_hostnames"] = list(self.local_hostnames)
        return settings


def main(argv: Sequence[str] | None = None) -> None:
    """Split off ``--allow-host=NAME`` arguments, then run Voila with the rest."""
    args = list(sys.argv[1:] if argv is None else argv)
    hosts = [arg.removeprefix(ALLOW_HOST) for arg in args if arg.startswith(ALLOW_HOST)]
    GuardedVoila.local_hostnames = ("localhost", *hosts)
    GuardedVoila.launch_instance([arg for arg in args if not arg.startswith(ALLOW_HOST)])


if __name__ == "__main__":
    main()
