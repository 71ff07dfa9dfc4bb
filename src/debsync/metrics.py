"""Counters of what happens in this process and never reaches the store: calls to platforms'
APIs, rate-limit waits, actions handed to channels.

Lower layers (the connectors' HTTP layer, the outbox executor) count here; the HTTP server
(:mod:`debsync.server.metrics`) registers these counters in the registry it exposes at
``/metrics``, next to the figures it reads from the store at scrape time. The counters are
created without a registry, so every app built (the daemon's, each test's) can register them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

API_CALLS = Counter(
    "debsync_api_calls",
    "Requests sent to a bookkeeping platform's API, retries included.",
    ["connector"],
    registry=None,
)
RATE_LIMIT_WAITS = Counter(
    "debsync_rate_limit_waits",
    "Pauses before a request: a rate limiter's, or a 429 with or without Retry-After.",
    ["connector"],
    registry=None,
)
RATE_LIMIT_SECONDS = Counter(
    "debsync_rate_limit_wait_seconds",
    "Seconds spent in those pauses.",
    ["connector"],
    registry=None,
)
ACTIONS = Counter(
    "debsync_actions",
    "Actions that left the outbox executor, by channel and the state they ended in "
    "(sent, failed, dead, in_doubt, cancelled).",
    ["channel", "state"],
    registry=None,
)


def platform(client_name: str) -> str:
    """The connector label of an HTTP client named ``"<platform> <instance>…"``: the platform
    only, so the label stays few-valued with thousands of instances."""
    return client_name.split(" ", 1)[0]


def rate_limited(client_name: str, seconds: float) -> None:
    """One pause of ``seconds`` before a request of the client ``client_name``."""
    name = platform(client_name)
    RATE_LIMIT_WAITS.labels(name).inc()
    RATE_LIMIT_SECONDS.labels(name).inc(seconds)


def register(registry: CollectorRegistry) -> None:
    """Expose this process's counters in ``registry``."""
    for counter in (API_CALLS, RATE_LIMIT_WAITS, RATE_LIMIT_SECONDS, ACTIONS):
        registry.register(counter)
