"""Who is calling: bearer tokens (JWT) verified into a ``Principal``, and what a principal may do.

A token must carry ``sub`` (the actor), ``tenant``, ``aud`` (the configured audience) and
``exp``; ``scope`` is space-separated from ``read``, ``write``, ``admin``, each optionally
for one collection (``read:notes``); ``client`` (optional) names the device. ``admin``
implies every other scope. Keys: one HS256 secret, or a JWKS (RS256, ES256, EdDSA) whose
``kid`` the token must name. Identity always comes from the token, never from a body.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from ...domain.errors import Forbidden, Unauthenticated
from ...domain.names import NAME, TENANT
from ..common.bounded import trim

Action = Literal["read", "write", "admin"]
ACTIONS: tuple[Action, ...] = ("read", "write", "admin")
ASYMMETRIC = ["RS256", "ES256", "EdDSA"]
LEEWAY_S = 30
VERIFIED_KEPT = 10_000
"""Tokens whose verification is remembered until they expire (a client reconnecting is not verified again)."""
_NAME, _TENANT = re.compile(NAME), re.compile(TENANT)
_SCOPE = re.compile(r"^(read|write|admin)(:[A-Za-z0-9_.:@-]{1,200})?$")


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller: its subject (the actor), tenant, scopes and, optionally, its device."""

    subject: str
    tenant: str
    scopes: frozenset[str]
    client: str | None = None

    def allows(self, action: Action, collection: str | None = None) -> bool:
        """Whether this principal may ``action`` (on ``collection``, when given)."""
        if "admin" in self.scopes or action in self.scopes:
            return True
        return collection is not None and action != "admin" and f"{action}:{collection}" in self.scopes

    def require(self, action: Action, collection: str | None = None) -> Principal:
        """This principal, or Forbidden naming the scope it lacks."""
        if not self.allows(action, collection):
            needed = f"{action}:{collection}" if collection and action != "admin" else action
            raise Forbidden(f"this token's scopes do not include {needed!r}")
        return self

    @property
    def key(self) -> str:
        """The principal's namespace for idempotency keys and limits: ``tenant/subject``."""
        return f"{self.tenant}/{self.subject}"

    @property
    def id_prefix(self) -> str:
        """What the principal's command ids start with, so that no other principal's can equal them
        (``p`` + 16 hex digits of its key + ``:``; empty without a tenant, when authentication is off)."""
        return f"p{hashlib.sha256(self.key.encode()).hexdigest()[:16]}:" if self.tenant else ""


ID_PREFIX_LENGTH = 18
"""The length of a principal's command-id prefix (``Principal.id_prefix``)."""
ANONYMOUS_ADMIN = Principal("anonymous", "", frozenset({"admin"}))
"""The caller when authentication is turned off (``SYNC_AUTH=off``): no tenant, every scope."""


class TokenVerifier:
    """Verifies bearer tokens with an HS256 secret or a JWKS, for one audience."""

    def __init__(self, audience: str, secret: bytes | None = None, jwks: dict[str, Any] | None = None) -> None:
        if (secret is None) == (jwks is None):
            raise ValueError("a TokenVerifier needs exactly one of secret and jwks")
        self.audience, self._secret = audience, secret
        self._jwks = jwt.PyJWKSet.from_dict(jwks) if jwks is not None else None
        self._verified: dict[str, tuple[Principal, float]] = {}

    def verify(self, token: str) -> Principal:
        """The principal the token names, or Unauthenticated saying (without secrets) what is wrong."""
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            key, algorithms = self._key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                leeway=LEEWAY_S,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"invalid token: {e}") from None
        principal = principal_of(claims)
        self._verified[token] = principal, float(claims["exp"]) + LEEWAY_S
        trim(self._verified, VERIFIED_KEPT)
        return principal

    def _key_for(self, token: str) -> tuple[Any, list[str]]:
        if self._secret is not None:
            return self._secret, ["HS256"]
        assert self._jwks is not None
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise jwt.InvalidTokenError("the token names no key (kid)")
        try:
            found = self._jwks[kid]
        except KeyError:
            raise jwt.InvalidTokenError(f"no key {kid[:40]!r} in the key set") from None
        return found.key, ASYMMETRIC


def principal_of(claims: dict[str, Any]) -> Principal:
    """The principal of verified ``claims``, or Unauthenticated if a claim is malformed."""
    subject, tenant, client = claims.get("sub"), claims.get("tenant"), claims.get("client")
    if not isinstance(subject, str) or not _NAME.match(subject):
        raise Unauthenticated("invalid token: 'sub' must be 1-200 letters, digits or any of '_.:@-'")
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise Unauthenticated("invalid token: 'tenant' must be 1-64 letters, digits or any of '_.:@-'")
    if client is not None and (not isinstance(client, str) or not _NAME.match(client)):
        raise Unauthenticated("invalid token: 'client' must be 1-200 letters, digits or any of '_.:@-'")
    return Principal(subject, tenant, parse_scopes(claims.get("scope", "")), client)


def parse_scopes(scope: object) -> frozenset[str]:
    """The scopes of a ``scope`` claim, or Unauthenticated naming the one that is not known."""
    if not isinstance(scope, str):
        raise Unauthenticated("invalid token: 'scope' must be a space-separated string")
    scopes = frozenset(scope.split())
    for s in scopes:
        if not _SCOPE.match(s):
            raise Unauthenticated(f"invalid token: unknown scope {s[:60]!r} (read, write, admin, or read:<collection>)")
    return scopes


def issue_token(
    secret: bytes,
    subject: str,
    tenant: str,
    scopes: Iterable[str] = ("read", "write"),
    client: str | None = None,
    ttl_s: int = 3600,
    audience: str = "syncbackbone",
) -> str:
    """An HS256 token for ``subject`` of ``tenant`` (development tokens, tests)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant": tenant,
        "scope": " ".join(scopes),
        "aud": audience,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if client:
        claims["client"] = client
    principal_of(claims)  # the same rules as verification: a bad subject or scope fails here
    return jwt.encode(claims, secret, algorithm="HS256")


def load_jwks(text: str) -> dict[str, Any]:
    """A JWKS document parsed, or ValueError."""
    found = json.loads(text)
    if not isinstance(found, dict) or not isinstance(found.get("keys"), list):
        raise ValueError("a JWKS is a JSON object with a 'keys' list")
    return found
