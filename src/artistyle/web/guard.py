"""The studio's guards, as pure ASGI middleware (streams stay streams): the Host check against DNS
rebinding, the refusal of cross-site state-changing requests and of large bodies, and the security
headers on every response.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..jsontext import json_depth  # re-exported: the studio's request bodies are measured by the core's rule

__all__ = [
    "CSP", "CUSTOM_HEADER", "MAX_BODY_BYTES", "HostCheck", "RequestGuard", "SecurityHeaders", "cross_site_refusal",
    "error_response", "json_depth",
]

# Everything the page uses comes from this server: no CDN, no fonts, works offline.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
MAX_BODY_BYTES = 64_000  # a job request is well under 1 KB; uploads have their own limit (--max-upload-mb)
# A header a cross-site "simple" request cannot carry: sending it makes the browser ask first (CORS preflight),
# and the studio answers no preflight, so only its own page (same origin) can send it.
CUSTOM_HEADER = "x-artistyle"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# A Host header: a name or IPv4 address, or an IPv6 address in brackets, and an optional port; nothing else
# (no user info such as '127.0.0.1:8765@evil.example', no path, no second port, ASCII only).
HOST = re.compile(r"(?:\[(?P<ipv6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::[0-9]{1,5})?", re.ASCII)


class HostCheck:
    """Refuses requests whose Host header is not one of ``hosts`` (``"*"``: any), or is not a plain
    ``NAME[:PORT]`` or ``[IPv6][:PORT]``.

    A page on another site can make a browser send requests to 127.0.0.1 under its own
    name (DNS rebinding); checking the name stops that. Unlike Starlette's
    TrustedHostMiddleware this also understands ``[::1]:port``.
    """

    def __init__(self, app: ASGIApp, hosts: list[str]):
        self.app = app
        self.hosts = {h.lower().strip("[]") for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "*" not in self.hosts:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1").lower()
            match = HOST.fullmatch(host)
            name = (match["ipv6"] or match["name"]) if match else None
            if name not in self.hosts:
                refusal = error_response(400, "invalid Host header; open the studio at the address it printed")
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def cross_site_refusal(headers: Headers) -> str | None:
    """Why a state-changing request did not come from the studio's own page, or None if it may have.

    Browsers send ``Sec-Fetch-Site`` and ``Origin``; curl and scripts send neither (allowed: they
    are not a web page acting with the user's browser). ``none`` means the user typed it.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site[:20]}); use the studio's own page"
    origin = headers.get("origin")
    if origin is not None:
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
        if not netloc or netloc != headers.get("host", "").lower():
            return "cross-site request refused (its Origin is another site); use the studio's own page"
    if (headers.get(CUSTOM_HEADER) is None
            and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json"):
        return "send application/json or the X-ArtiStyle: 1 header (a plain form post is not accepted)"
    return None


class RequestGuard:
    """Refuses cross-site state-changing requests (403) and request bodies over ``MAX_BODY_BYTES`` (413).

    The size is checked from Content-Length before a byte is read, and again while the body
    streams in (a chunked body has no Content-Length). Uploads keep their own, larger limit
    and their own message (the upload route). Pure ASGI: streams stay streams.
    """

    def __init__(self, app: ASGIApp, upload_path: str = "/api/images"):
        self.app = app
        self.upload_path = upload_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["method"] in UNSAFE_METHODS:
            refusal = cross_site_refusal(headers)
            if refusal is not None:
                await error_response(403, refusal)(scope, receive, send)
                return
        if scope["path"] == self.upload_path:
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is over the studio's limit of {MAX_BODY_BYTES // 1000} KB"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            await error_response(413, too_large)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise HTTPException(413, too_large)  # answered by the app's HTTPException handler
            return message

        await self.app(scope, limited_receive, send)


class SecurityHeaders:
    """Adds the content security policy and no-sniff to every response (pure ASGI: streams stay streams)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
