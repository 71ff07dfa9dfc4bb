"""The local listener ``debsync auth`` catches the browser's OAuth2 redirect with: bound to
the redirect URI's loopback address, it waits for the one visit that carries our state. Kept
apart from the command so the command line starts without the HTTP server."""

from __future__ import annotations

import socket
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def parse_query(text: str) -> dict[str, str]:
    """A redirect's query string, one value per key (the last)."""
    return {key: values[-1] for key, values in parse_qs(text).items()}


class _Listener(HTTPServer):
    path: str
    state: str
    query: dict[str, str] | None


class _Listener6(_Listener):
    address_family = socket.AF_INET6


class _Redirect(BaseHTTPRequestHandler):
    """Answers the browser's one visit: the redirect with our state ends the wait; anything
    else (a favicon, a stale or forged redirect) is turned away and the wait goes on."""

    server: _Listener

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_query(url.query)
        if url.path != self.server.path:
            self._page(404, "Not found.")
        elif query.get("state") != self.server.state:
            self._page(400, "This is not the authorisation debsync is waiting for.")
        else:
            self.server.query = query
            if "error" in query:
                self._page(200, "Access was not granted; see the terminal.")
            else:
                self._page(200, "debsync has the authorisation. You can close this tab.")

    def _page(self, status: int, text: str) -> None:
        body = f"<!doctype html><title>debsync</title><p>{text}</p>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the query holds the code."""


def listen(host: str, port: int, path: str, state: str) -> _Listener:
    """A listener bound to ``host:port`` for the browser's return to ``path`` with
    ``state``; bound before the address is printed, so a port in use is said at once."""
    listener = (_Listener6 if ":" in host else _Listener)((host, port), _Redirect)
    listener.path, listener.state, listener.query = path, state, None
    listener.timeout = 0.5  # each handle_request() returns this often to check the time
    return listener


def wait(listener: _Listener, timeout: float) -> dict[str, str] | None:
    """The query the browser came back with, or ``None`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while listener.query is None and time.monotonic() < deadline:
        listener.handle_request()
    return listener.query
