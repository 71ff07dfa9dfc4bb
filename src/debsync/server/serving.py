"""Running the app with uvicorn inside the caller's event loop, which it shares with the
daemon: no signal handlers of its own (the daemon owns the signals), stopped by an event.

uvicorn limits a request's header size (h11) and idle keep-alive connections, but not how
slowly a client may send its request, nor how many connections may sit idle. Its h11
protocol is extended here with what the stdlib server it replaces did: a read timeout, a
deadline for the whole request, and a connection beyond the limit answered 503 at once,
before a byte of it is read (uvicorn's ``limit_concurrency`` answers only once the request
is in, so slow clients would hold every slot, and without ``Retry-After``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, ClassVar

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("debsync.server")

READ_TIMEOUT_SECONDS = 10.0
"""How long a client may send nothing while its request is incomplete."""
REQUEST_DEADLINE_SECONDS = 30.0
"""How long a client may take to send its whole request, however slowly it trickles."""
MAX_CONNECTIONS = 64
"""Connections open at once; one more is answered 503 and closed."""
SHUTDOWN_GRACE_SECONDS = 5.0
"""How long requests in flight may take once the server is told to stop."""

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
)
_RECEIVING = (h11.IDLE, h11.SEND_BODY)


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol, with the limits on slow and surplus clients."""

    read_timeout: ClassVar[float] = READ_TIMEOUT_SECONDS
    deadline: ClassVar[float] = REQUEST_DEADLINE_SECONDS
    max_connections: ClassVar[int] = MAX_CONNECTIONS

    _busy = False
    _idle: asyncio.TimerHandle | None = None
    _deadline: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn logs access lines whenever its logger has a handler up the tree, with the
        # path and query (a URL secret): debsync.server logs its own, without them
        self.access_log = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        if len(self.connections) > self.max_connections:
            log.warning("more than %d connections: one answered busy", self.max_connections)
            self._busy = True
            # half-closed: the client reads the answer before it sees the end (closing at
            # once would reset the connection under it); what it sends is dropped
            transport.write(_BUSY)
            transport.write_eof()

    def data_received(self, data: bytes) -> None:
        if self._busy:
            return
        if self._idle is not None:
            self._idle.cancel()
            self._idle = self.loop.call_later(self.read_timeout, self._expire)
        super().data_received(data)
        if self.conn.their_state not in _RECEIVING:  # the request is in: the rest is ours
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._idle = self.loop.call_later(self.read_timeout, self._expire)
        self._deadline = self.loop.call_later(self.deadline, self._expire)

    def _disarm(self) -> None:
        for timer in (self._idle, self._deadline):
            if timer is not None:
                timer.cancel()
        self._idle = self._deadline = None

    def _expire(self) -> None:
        self._disarm()
        if self.conn.their_state in _RECEIVING and not self.transport.is_closing():
            log.info("a client too slow with its request was cut off")
            self.transport.close()


class _Embedded(uvicorn.Server):
    """A uvicorn server that leaves the process's signals to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` (IPv4 or IPv6) and ``port`` (0: any free port).

    :raises OSError: the address is in use or not this machine's.
    """
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    return socket.create_server(address[:2], family=family)


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    listening: Callable[[int], Any] | None = None,
    beside: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
    read_timeout: float = READ_TIMEOUT_SECONDS,
    deadline: float = REQUEST_DEADLINE_SECONDS,
    max_connections: int = MAX_CONNECTIONS,
) -> None:
    """Serve ``app`` on ``host:port`` in the running loop until ``stop`` is set, then let
    requests in flight finish (at most :data:`SHUTDOWN_GRACE_SECONDS`) and return.

    :param listening: called with the port once the socket listens (useful with port 0).
    :param beside: work that runs while the server does (the console's plan kept warm), each
        told through its event when the server stops, and awaited before this returns.
    :raises OSError: the address cannot be bound.
    """
    protocol = type(
        "GuardedH11",
        (GuardedH11,),
        {"read_timeout": read_timeout, "deadline": deadline, "max_connections": max_connections},
    )
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        http=protocol,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(SHUTDOWN_GRACE_SECONDS),
    )
    sock = listen(host, port)
    server = _Embedded(config)
    running = asyncio.create_task(server.serve(sockets=[sock]))
    if listening is not None:
        listening(sock.getsockname()[1])
    stopping = asyncio.create_task(stop.wait())
    ended = asyncio.Event()
    alongside = [asyncio.create_task(work(ended)) for work in beside]
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        ended.set()
        await running
        await asyncio.gather(*alongside)
