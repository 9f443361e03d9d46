"""Errors of the client SDK, in the one tree of ``syncbackbone.domain.errors``::

LogUnavailable                      (domain.errors: transient, retried)
└── ServerUnavailable               the sync server cannot be reached or answered 5xx
    └── CircuitOpen                 too many failures in a row: not even trying until the probe time
InvalidInput                        (domain.errors) the server refused the request as malformed (4xx)
"""

from __future__ import annotations

from ..domain.errors import LogUnavailable


class ServerUnavailable(LogUnavailable):
    """The sync server cannot be reached, or failed the request (5xx); worth retrying later."""


class CircuitOpen(ServerUnavailable):
    """The circuit breaker is open: requests fail fast until it half-opens to probe."""
