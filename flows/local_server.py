"""A Prefect server for one CLI invocation when no PREFECT_API_URL is set: Prefect's own ephemeral
server (SubprocessASGIServer), started so that it dies with the CLI — also on ``kill -9``, which
runs no exit handler: the child asks the kernel for SIGKILL when its parent dies (Linux
PR_SET_PDEATHSIG; elsewhere Prefect's own atexit stop is all there is)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tasks.adapters.children import die_with_parent


@contextmanager
def temporary_server(startup_timeout: int = 180) -> Iterator[str | None]:
    """Yield the API URL of a running server: PREFECT_API_URL's when set, else a temporary one."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer

    class _Server(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            real = subprocess.Popen

            def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
                if sys.platform.startswith("linux"):
                    kwargs.setdefault("preexec_fn", die_with_parent)
                return real(*args, **kwargs)

            subprocess.Popen = popen  # type: ignore[misc]
            try:
                return super()._run_uvicorn_command()
            finally:
                subprocess.Popen = real  # type: ignore[misc]

    server = _Server()
    server.start(timeout=startup_timeout)
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
    finally:
        server.stop()
