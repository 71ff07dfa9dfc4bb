"""The errors of the connector HTTP layer, each retryable or fatal as the sync engine needs."""

from __future__ import annotations

from debsync.errors import FatalConnectorError, RetryableConnectorError


class FatalHttpError(FatalConnectorError):
    """An answer that needs a person (credentials, subscription, URL, a refused request).

    :ivar status: the HTTP status, or ``None`` when the request could not be sent at all.
    """

    def __init__(self, message: str, *, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class RetryableHttpError(RetryableConnectorError):
    """The platform is down, slow or rate-limiting beyond what one sync should sit out.

    :ivar status: the last HTTP status, or ``None`` after a transport failure.
    :ivar retry_after: seconds the platform asked to wait, when it said.
    """

    def __init__(
        self, message: str, *, status: int | None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


FATAL_HINTS = {
    400: "the platform refused the request",
    401: "credentials refused: check the token, or authorise debsync again",
    402: "payment required: the administration's subscription is not active",
    403: "forbidden: the credentials lack the rights (scope) for this request",
    404: "not found: check the URL and the administration or division id",
    405: "method not allowed: check the URL",
    406: "not acceptable: the platform cannot answer in the format asked for",
    422: "the platform refused the request as invalid",
}
