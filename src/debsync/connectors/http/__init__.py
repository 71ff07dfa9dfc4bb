"""The HTTP layer of REST connectors: one client with the retry, pacing, redaction and error
policy every bookkeeping API needs, so a connector only says where to go and what a page is.

A connector gets its client from its context and keeps it for one ``fetch``::

    async with self.context.http.client(
        name=f"moneybird {self.instance}",
        base_url=f"https://moneybird.com/api/v2/{self.settings.administration_id}/",
        headers={"Authorization": f"Bearer {token}"},
        limiters=[PacingLimiter(150, per=300), HeaderLimiter(header_quota(...))],
    ) as http:
        async for response in http.paginate("sales_invoices.json", params={...}):
            ...

What the client does with an answer (the platforms in ``docs/plugins.md``):

==========================================  ================================================
answer                                      outcome
==========================================  ================================================
2xx                                         the response
429                                         waited out (``Retry-After``, else the limiters'
                                            quota, else backoff) and tried again
5xx, timeout, connection or protocol error  tried again after jittered exponential backoff;
                                            a write (POST, PATCH) only when nothing can have
                                            been processed (see ``IDEMPOTENT_METHODS``)
attempts used up                            :class:`RetryableHttpError`: the sync is retried
                                            later from its last cursor
a wait longer than ``max_wait``             :class:`RetryableHttpError` at once (a daily
                                            quota is not sat out in-process)
401, 402, 403, 404, any other 4xx, 3xx      :class:`FatalHttpError`, never retried: Exact
                                            Online blocks a key after ten errors an hour
==========================================  ================================================

Every log line and error message passes through the client's :class:`Redactor`: registered
secrets, credential headers and credential query parameters never reach the log, including
httpx's own request log.
"""

from debsync.connectors.http.client import (
    IDEMPOTENT_METHODS,
    HttpClient,
    HttpFactory,
    HttpStats,
    next_link,
)
from debsync.connectors.http.errors import FatalHttpError, RetryableHttpError
from debsync.connectors.http.limits import (
    HeaderLimiter,
    PacingLimiter,
    Quota,
    QuotaReader,
    RateLimiter,
    header_quota,
)
from debsync.connectors.http.redaction import Redactor

__all__ = [
    "IDEMPOTENT_METHODS",
    "FatalHttpError",
    "HeaderLimiter",
    "HttpClient",
    "HttpFactory",
    "HttpStats",
    "PacingLimiter",
    "Quota",
    "QuotaReader",
    "RateLimiter",
    "Redactor",
    "RetryableHttpError",
    "header_quota",
    "next_link",
]
