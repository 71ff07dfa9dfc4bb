"""The loopback server the platform fakes run on in end-to-end tests."""

from __future__ import annotations

import httpx

from fake_http import FakeServer


def test_the_fake_server_serves_a_handler_over_real_http() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201, json={"path": request.url.path, "q": request.url.params.get("q")}
        )

    with FakeServer(handler) as server:
        answer = httpx.post(f"{server.url}/v1/things?q=1", json={"a": 1})
    assert answer.status_code == 201 and answer.json() == {"path": "/v1/things", "q": "1"}
