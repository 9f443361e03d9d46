"""``syncbackbone token issue``: a development bearer token signed with the gateway's HS256 secret.

The secret is SYNC_AUTH_SECRET or, on the zero-config default, the one generated into
SYNC_DATA_DIR/auth.secret, so a token issued here is accepted by a ``serve --http`` of
the same data directory. With SYNC_AUTH_JWKS the keys are someone else's: issue tokens there.
"""

from __future__ import annotations

import argparse
from typing import Any

from ...domain.errors import ConfigurationError, InvalidInput, Unauthenticated
from ..app.auth import issue_token
from ..bootstrap import auth_secret
from ..settings import Settings

MAX_TTL_S = 365 * 24 * 3600


def add_token_command(sub: Any) -> None:
    """Add ``token issue`` to the parser."""
    token = sub.add_parser("token", help="issue a development bearer token for the HTTP gateway")
    token.add_argument("action", choices=["issue"])
    token.add_argument("--subject", required=True, help="the actor (sub claim)")
    token.add_argument("--tenant", required=True, help="the tenant whose data the token reaches")
    token.add_argument("--scope", default="read write", help="space-separated: read, write, admin, read:<collection>")
    token.add_argument("--client", default=None, help="the device the token is for (client claim)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")


def run_token(settings: Settings, args: argparse.Namespace) -> int:
    """Print a token signed with the gateway's secret."""
    if settings.auth_jwks:
        raise ConfigurationError("SYNC_AUTH_JWKS is set: tokens come from the holder of those keys, not from here")
    if not 0 < args.ttl <= MAX_TTL_S:
        raise InvalidInput(f"--ttl must be between 1 and {MAX_TTL_S} seconds")
    try:
        token = issue_token(
            auth_secret(settings),
            args.subject,
            args.tenant,
            args.scope.split(),
            args.client,
            args.ttl,
            settings.auth_audience,
        )
    except Unauthenticated as e:
        raise InvalidInput(str(e).replace("invalid token: ", "")) from None
    print(token)
    return 0
