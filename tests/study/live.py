"""A live study server and a headless Chromium, for the browser tests and the screenshots.

``serve(app)`` runs an ASGI app under uvicorn in a background thread on a free
loopback port and yields its base URL. ``find_chromium()`` finds Debian's
``chromium`` (or ``$BEHAVIORSFT_CHROMIUM``), which Playwright drives through
``executable_path``: ``playwright install`` and its browser download are not used.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM_ENV = "BEHAVIORSFT_CHROMIUM"
CHROMIUM_HINT = (
    f"install it (sudo apt install chromium) or point ${CHROMIUM_ENV} at a Chromium binary"
)


def find_chromium() -> str | None:
    """``$BEHAVIORSFT_CHROMIUM`` if set (it must exist), else ``chromium`` on the PATH."""
    given = os.environ.get(CHROMIUM_ENV)
    if given:
        return given if os.path.exists(given) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing_browser_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (python) is not installed: pip install -e '.[dev]'"
    if find_chromium() is None:
        given = os.environ.get(CHROMIUM_ENV)
        if given:
            return f"${CHROMIUM_ENV}={given} does not exist"
        return f"no chromium found: {CHROMIUM_HINT}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any, *, timeout_s: float = 20.0) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a thread; yields ``http://127.0.0.1:PORT``."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn stopped before it served on 127.0.0.1:{port}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port} in {timeout_s} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium (Debian's) through Playwright; raises if none is found."""
    path = find_chromium()
    if path is None:
        raise RuntimeError(f"no chromium found: {CHROMIUM_HINT}")
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    return playwright.chromium.launch(
        executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
