"""Who may use the admin, and how a state-changing request proves it came from the admin's own page.

- A token, when one is set, is required on every request but the login page and the static files: as a
  bearer header, or as the session cookie the login page sets (an HMAC of the token, never the token). It is
  compared in constant time. Without a token the server only listens on loopback, and then only answers a
  Host header naming loopback, so a web page cannot reach it through DNS rebinding.
- CSRF: a random value in a SameSite=Strict cookie, echoed as a hidden field by every form (double submit);
  every POST must carry both, equal. A POST with an Origin of another site is refused as well.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from protoc_gen_prism.admin.settings import AdminSettings, is_loopback

SESSION_COOKIE = "prism_admin_session"
CSRF_COOKIE = "prism_admin_csrf"
CSRF_FIELD = "csrf"
OPEN_PATHS = ("/login", "/static/")
_SESSION_PURPOSE = b"prism admin session/1"
MAX_FORM_BYTES = 16_384

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def session_value(token: str) -> str:
    """Return the session cookie's value for `token`: it proves the token was given without holding it."""
    return hmac.new(token.encode(), _SESSION_PURPOSE, hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    """Compare a presented token with the configured one in constant time."""
    return hmac.compare_digest(given.encode(), token.encode())


def authenticated(connection: HTTPConnection, token: str) -> bool:
    """Return whether the request carries the token (bearer header) or the session cookie made from it."""
    scheme, _, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given and token_matches(given.strip(), token):
        return True
    cookie = connection.cookies.get(SESSION_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), session_value(token).encode())


class Guard:
    """ASGI middleware: the token or loopback rule, the CSRF cookie, and the POST checks."""

    def __init__(self, app: App, settings: AdminSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        refusal = self._refusal(connection)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        csrf = connection.cookies.get(CSRF_COOKIE, "")
        fresh = not csrf
        if fresh:
            csrf = secrets.token_hex(32)
        scope.setdefault("state", {})["csrf"] = csrf

        async def send_with_cookie(message: Message) -> None:
            if fresh and message["type"] == "http.response.start":
                cookie = f"{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict"
                message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _refusal(self, connection: HTTPConnection) -> Response | None:
        path = connection.url.path
        token = self.settings.token
        if token is None:
            host = (connection.headers.get("host") or "").rsplit(":", 1)[0]
            if not is_loopback(host):
                return PlainTextResponse("prism admin answers loopback host names only", status_code=403)
        elif not path.startswith(OPEN_PATHS) and not authenticated(connection, token):
            return HTMLResponse(
                '<!doctype html><title>401</title><p>prism admin needs its token: <a href="/login">log in</a></p>',
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="prism admin"'},
            )
        if connection.scope["method"] not in ("GET", "HEAD"):
            origin = connection.headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc != connection.headers.get("host"):
                return PlainTextResponse("cross-site request refused", status_code=403)
        return None


async def checked_form(request: Request) -> dict[str, str]:
    """Return the fields of a POSTed form after checking its CSRF field against the cookie; 403 otherwise."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise HTTPException(413, "a form of the admin is a few hundred bytes")
    body = (await request.body()).decode("utf-8", "replace")
    form = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    if not cookie or not given or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise HTTPException(403, "missing or wrong CSRF field; reload the page and try again")
    return form
