"""The client's side of the ``/sync`` protocol over HTTP (httpx).

Network failures and 5xx answers become ServerUnavailable (transient: retry later);
4xx answers become InvalidInput with the server's message (retrying will not help).
Any ``httpx.Client`` works, including FastAPI's in-process TestClient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx

from ..domain.errors import InvalidInput
from .errors import ServerUnavailable


class HttpClient(Protocol):
    """What the transport needs of an HTTP client (``httpx.Client`` has it)."""

    def get(self, url: str, *, params: Any = None, timeout: Any = None) -> httpx.Response: ...

    def post(self, url: str, *, json: Any = None, params: Any = None, timeout: Any = None) -> httpx.Response: ...


class SyncTransport:
    """Push, pull and policies against one sync server."""

    def __init__(self, server: str | HttpClient, timeout_s: float = 30.0) -> None:
        self.http: HttpClient = httpx.Client(base_url=server, timeout=timeout_s) if isinstance(server, str) else server
        self._owned = isinstance(server, str)
        self.timeout_s = timeout_s

    def push(self, client: str, mutations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The server's result for each mutation, in order."""
        body = {"client": client, "mutations": list(mutations)}
        response = self._call(lambda: self.http.post("/sync/push", json=body, timeout=self.timeout_s + 5))
        return list(response.json()["results"])

    def pull(self, cursor: str | None, collections: Sequence[str], limit: int = 500, wait_s: float = 0.0) -> Any:
        """One page of changes after ``cursor``: ``{"changes", "cursor", "more"}``."""
        params: dict[str, Any] = {"collections": ",".join(collections), "limit": limit, "wait": wait_s}
        if cursor:
            params["cursor"] = cursor
        return self._call(lambda: self.http.get("/sync/pull", params=params, timeout=self.timeout_s + wait_s)).json()

    def policies(self) -> dict[str, Any]:
        """The conflict policy of each collection, as the server publishes it."""
        return dict(self._call(lambda: self.http.get("/sync/policies")).json())

    def close(self) -> None:
        if self._owned and isinstance(self.http, httpx.Client):
            self.http.close()

    def _call(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response = send()
        except httpx.HTTPError as e:
            raise ServerUnavailable(f"sync server unreachable: {type(e).__name__}: {e}") from e
        if response.status_code >= 500:
            raise ServerUnavailable(f"sync server failed: {response.status_code} {message_of(response)}")
        if response.status_code >= 400:
            raise InvalidInput(f"sync server refused the request: {response.status_code} {message_of(response)}")
        return response


def message_of(response: httpx.Response) -> str:
    """The message of a JSON error body, or the start of the text."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
