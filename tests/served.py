"""The HTTP server as the daemon runs it (``debsync.server.serve``), on its own event loop in
a thread, over a real loopback socket."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from starlette.applications import Starlette

from debsync.server import serve


class Running:
    """``app`` served on 127.0.0.1 at a free port until :meth:`close`."""

    def __init__(self, app: Starlette, **limits: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.port = 0
        self._listening = threading.Event()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(app, limits), daemon=True)
        self._thread.start()
        if not self._listening.wait(30):
            raise RuntimeError(f"the server did not start: {self.failure!r}")

    def _run(self, app: Starlette, limits: dict[str, Any]) -> None:
        def listening(port: int) -> None:
            self.port = port
            self._listening.set()

        try:
            self.loop.run_until_complete(
                serve(app, "127.0.0.1", 0, stop=self.stop, listening=listening, **limits)
            )
        except BaseException as exc:
            self.failure = exc
            self._listening.set()
        finally:
            self.loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the server did not stop"
