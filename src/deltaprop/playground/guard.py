"""What keeps the playground to its own page: the Host, the Origin, the content types, a token.

The playground listens on this machine, but any web page the user opens could send requests to
it. :class:`Guard` (ASGI middleware, before every route) refuses what did not come from the
playground's own page:

- **Host**: only ``127.0.0.1``, ``localhost`` or ``[::1]`` (with the port, when it is known), so
  a page of another name that rebinds its name to 127.0.0.1 (DNS rebinding) reads nothing;
- **Origin**: a WebSocket, and every request that changes state (``POST``), whose ``Origin``
  is another site's is refused;
- **content types**: a ``POST`` must say ``application/json`` or ``text/csv``, which a page of
  another site cannot send without the browser asking first (a CORS preflight, never answered);
- **token**: listening on other addresses than this machine's (``--host 0.0.0.0``) requires a
  secret token: in the URL printed at start (``/?token=...``), then in a cookie the page keeps.
  With a token, any Host is accepted: the token is what proves the caller.

Each refusal is a 403 (421 for a Host) with a JSON body that says why.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOCAL_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""The Host names the playground answers to without a token."""
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
ACCEPTED_TYPES = ("application/json", "text/csv")
"""Content types a state-changing request may have: none of them a page of another site can
send without a CORS preflight."""
COOKIE = "deltaprop_token"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Guard:
    """ASGI middleware: refuse requests that did not come from the playground's own page.

    Args:
        app: the application it guards.
        port: the port the server listens on (None: any port, as in tests).
        token: the secret a caller must show (None: none, and only local Host names).
    """

    def __init__(self, app: ASGIApp, *, port: int | None = None, token: str | None = None) -> None:
        self.app = app
        self.port = port
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, reason = refusal
        if scope["type"] == "websocket":
            await receive()  # the connect message
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        body = json.dumps({"error": reason}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, reason) when the request is refused, else None."""
        if self.token is not None:
            if not self._shows_token(scope, headers):
                return 403, "this playground needs its token: open the URL it printed at start"
        elif not self._local_host(headers.get("host", "")):
            return 421, f"Host {headers.get('host', '')!r} is not this machine's playground"
        origin = headers.get("origin")
        changing = scope["type"] == "websocket" or scope.get("method") in STATE_CHANGING
        if changing and origin is not None and not self._own_origin(origin, headers):
            return 403, f"requests from {origin!r} are not the playground's page"
        if scope["type"] == "http" and scope.get("method") in STATE_CHANGING:
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in ACCEPTED_TYPES:
                return 403, f"content type {kind or 'none'!r}: send application/json or text/csv"
        return None

    def _local_host(self, host: str) -> bool:
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name:  # no port given
            name, port = host, ""
        if name not in LOCAL_NAMES:
            return False
        return self.port is None or port in ("", str(self.port))

    def _own_origin(self, origin: str, headers: dict[str, str]) -> bool:
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc == headers.get("host")

    def _shows_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cookie = SimpleCookie(headers.get("cookie", ""))
        shown = [*query.get("token", []), headers.get("x-deltaprop-token", "")]
        if COOKIE in cookie:
            shown.append(cookie[COOKIE].value)
        return any(hmac.compare_digest(value, self.token) for value in shown if value)


def token_cookie(token: str) -> str:
    """The ``Set-Cookie`` value that lets the page show ``token`` on every later request."""
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
