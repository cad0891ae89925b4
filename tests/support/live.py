"""Serve a WSGI app on a real loopback socket for a test, so clients talk HTTP as in production."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import pytest
from werkzeug.serving import make_server


class LiveServer:
    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, poll_interval: float = 0.05):
        self._server = make_server(host, port, app, threaded=True)
        self.poll_interval = poll_interval
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(poll_interval,),
                                        name=f"live-{self.port}", daemon=True)

    @property
    def app(self):
        return self._server.app

    @app.setter
    def app(self, value) -> None:
        """Swap the served app (an app that must know its own URL is built after the port is known)."""
        self._server.app = value

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextmanager
def live_server(app, host: str = "127.0.0.1", port: int = 0) -> Iterator[LiveServer]:
    server = LiveServer(app, host, port).start()
    try:
        yield server
    finally:
        server.stop()


def _no_app(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"no app plugged into the test server"]


@pytest.fixture(scope="session")
def swappable_server() -> Iterator[LiveServer]:
    """One loopback server for the whole session; a test plugs in its own fresh app with `.app = ...`
    (starting and stopping a server per test costs its shutdown poll every time)."""
    with live_server(_no_app) as server:
        yield server


@pytest.fixture
def plug(swappable_server):
    """plug(app) -> the session server, serving `app` until the test ends."""
    def plug_in(app) -> LiveServer:
        swappable_server.app = app
        return swappable_server
    yield plug_in
    swappable_server.app = _no_app
