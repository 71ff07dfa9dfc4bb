"""A platform fake served over real HTTP on loopback, from the same handler respx uses.

A fake is a callable ``(httpx.Request) -> httpx.Response``: mounted with
``respx.route(...).mock(side_effect=fake)`` for unit tests, or served by :class:`FakeServer`
for end-to-end tests and benchmarks, where debsync runs as a user would (a subprocess, a
``connectors.toml`` whose ``base_url`` points at the server)::

    with FakeServer(fake) as server:
        run_cli("sync", env={"BASE_URL": server.url})
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        host = f"http://{self.headers.get('Host') or self.server.url.removeprefix('http://')}"
        request = httpx.Request(
            self.command,
            host + self.path,
            headers=[(k, v) for k, v in self.headers.items()],
            content=body,
        )
        try:
            response = self.server.handler(request)
        except Exception as exc:  # a bug in the fake: answer 500 and keep serving
            response = httpx.Response(500, text=f"fake failed: {type(exc).__name__}: {exc}")
        content = response.read()
        self.send_response(response.status_code)
        for key, value in response.headers.multi_items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the fakes count what they serve themselves."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    handler: Handler
    url: str


class FakeServer:
    """Serves ``handler`` on ``127.0.0.1`` (a free port) in a background thread."""

    def __init__(self, handler: Handler, *, port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _RequestHandler)
        self._server.handler = handler
        self.port = self._server.server_address[1]
        self.url = self._server.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
