"""The client's side of the ``/sync`` protocol over HTTP (httpx).

Network failures and 5xx answers become ServerUnavailable (transient: retry later);
4xx answers become RequestRefused with the status and the server's message (retrying
will not help). Every request carries ``Authorization: Bearer <token>`` when there is a
token; on a 401 the transport asks ``fetch_token()`` (if given) for a new one and sends
the request once more; a second 401 is Unauthorized.
Any ``httpx.Client`` works, including FastAPI's in-process TestClient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx

from .errors import RequestRefused, ServerUnavailable, Unauthorized

Send = Callable[[dict[str, str]], httpx.Response]
"""One request, sent with the given headers."""


class HttpClient(Protocol):
    """What the transport needs of an HTTP client (``httpx.Client`` has it)."""

    def get(self, url: str, *, params: Any = None, headers: Any = None, timeout: Any = None) -> httpx.Response: ...

    def post(
        self, url: str, *, json: Any = None, params: Any = None, headers: Any = None, timeout: Any = None
    ) -> httpx.Response: ...


class SyncTransport:
    """Push, pull and policies against one sync server, with a bearer token when there is one."""

    def __init__(
        self,
        server: str | HttpClient,
        timeout_s: float = 30.0,
        token: str | None = None,
        fetch_token: Callable[[], str] | None = None,
    ) -> None:
        self.http: HttpClient = httpx.Client(base_url=server, timeout=timeout_s) if isinstance(server, str) else server
        self._owned = isinstance(server, str)
        self.timeout_s = timeout_s
        self.token, self.fetch_token = token, fetch_token

    def push(self, client: str, mutations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The server's result for each mutation, in order."""
        body = {"client": client, "mutations": list(mutations)}
        response = self._call(lambda h: self.http.post("/sync/push", json=body, headers=h, timeout=self.timeout_s + 5))
        return list(response.json()["results"])

    def pull(self, cursor: str | None, collections: Sequence[str], limit: int = 500, wait_s: float = 0.0) -> Any:
        """One page of changes after ``cursor``: ``{"changes", "cursor", "more"}``."""
        params: dict[str, Any] = {"collections": ",".join(collections), "limit": limit, "wait": wait_s}
        if cursor:
            params["cursor"] = cursor
        timeout = self.timeout_s + wait_s
        return self._call(lambda h: self.http.get("/sync/pull", params=params, headers=h, timeout=timeout)).json()

    def policies(self) -> dict[str, Any]:
        """The conflict policy of each collection, as the server publishes it."""
        return dict(self._call(lambda h: self.http.get("/sync/policies", headers=h)).json())

    def close(self) -> None:
        if self._owned and isinstance(self.http, httpx.Client):
            self.http.close()

    def _call(self, send: Send) -> httpx.Response:
        """The answer to ``send``, after one new token on a 401 (when ``fetch_token`` is given)."""
        response = self._send(send)
        if response.status_code == 401 and self.fetch_token is not None:
            self.token = self.fetch_token()
            response = self._send(send)
        if response.status_code >= 500:
            raise ServerUnavailable(f"sync server failed: {response.status_code} {message_of(response)}")
        if response.status_code == 401:
            raise Unauthorized(401, f"{message_of(response)} (pass a token the server accepts)")
        if response.status_code >= 400:
            raise RequestRefused(response.status_code, message_of(response))
        return response

    def _send(self, send: Send) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            return send(headers)
        except httpx.HTTPError as e:
            raise ServerUnavailable(f"sync server unreachable: {type(e).__name__}: {e}") from e


def message_of(response: httpx.Response) -> str:
    """The message of a JSON error body, or the start of the text."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
