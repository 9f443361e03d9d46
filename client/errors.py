"""Errors of the client SDK, in the one tree of ``syncbackbone.domain.errors``::

LogUnavailable                      (domain.errors: transient, retried)
└── ServerUnavailable               the sync server cannot be reached or answered 5xx
    └── CircuitOpen                 too many failures in a row: not even trying until the probe time
InvalidInput                        (domain.errors) input that is malformed (e.g. NaN in a local write)
└── RequestRefused                  the server refused the request (4xx, ``status``): sending it again will not help
    └── Unauthorized                401: no token, or one the server does not take (even after ``fetch_token``)
"""

from __future__ import annotations

from ..domain.errors import InvalidInput, LogUnavailable

MUTATION_STATUSES = frozenset({400, 403, 409, 413, 422})
"""Refusals of a push that are about what it carries: the mutation that causes one is dead-lettered
(a 403 only if an empty push is let through: else it is about the token). Any other 4xx (401, 404,
405, 408, 429, ...) is about the request or the server, and the outbox waits."""


class ServerUnavailable(LogUnavailable):
    """The sync server cannot be reached, or failed the request (5xx); worth retrying later."""


class CircuitOpen(ServerUnavailable):
    """The circuit breaker is open: requests fail fast until it half-opens to probe."""


class RequestRefused(InvalidInput):
    """The server answered 4xx: the request, sent again as it is, would be refused again."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sync server refused the request: {status} {message}")
        self.status = status

    @property
    def about_the_content(self) -> bool:
        """True when the refusal is about what the request carried (see ``MUTATION_STATUSES``)."""
        return self.status in MUTATION_STATUSES


class Unauthorized(RequestRefused):
    """The server wants a token it accepts (401), and ``fetch_token`` (if any) did not give one."""
