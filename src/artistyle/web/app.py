"""The studio's ASGI app: a page, its static files and a small JSON API over :class:`Studio`.

API (every error is ``{"error": "one line"}``, with a 4xx status, or 500 for a bug)::

    GET  /api/status                  limits, defaults, device, what the worker is doing
    GET  /api/samples                 the bundled sample images; GET /api/samples/{id} the image
    POST /api/images                  the raw image bytes -> {"id", "width", "height", ...}
    POST /api/jobs                    {"content": id, "styles": [id, ...], "settings": {...},
                                       "fine_style": id (optional), "masks": [id, ...] (optional)}
    GET  /api/jobs/{id}               the job's state
    GET  /api/jobs/{id}/events        the same as server-sent events, until the job ends
    GET  /api/jobs/{id}/preview.jpg   the latest preview
    GET  /api/jobs/{id}/result.png    the result at full size (also after a cancel: the image so far)
    POST /api/jobs/{id}/cancel

Every POST must come from the studio's own page: a cross-site Origin or Sec-Fetch-Site is
refused (403), and so is a POST with neither ``Content-Type: application/json`` nor the
``X-ArtiStyle: 1`` header (a "simple" request another site could send without a CORS
preflight). Request bodies other than uploads are capped at :data:`MAX_BODY_BYTES` (413).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..config import StyleConfig
from ..devices import resolve_device
from ..errors import ArtiStyleError, UsageError
from ..settings import short_repr
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES, client_name
from .jobs import PREVIEW_INTERVAL, Job, Studio
from .settings import MAX_SIZE, MAX_STEPS, MAX_STYLES, SETTINGS

__all__ = ["CUSTOM_HEADER", "LOOPBACK_HOSTS", "MAX_BODY_BYTES", "MAX_JSON_DEPTH", "create_app", "megabytes"]

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# Everything the page uses comes from this server: no CDN, no fonts, works offline.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)
EVENT_POLL = 0.1  # s between looks at a job for its event stream
KEEPALIVE = 15.0  # s between comments on a quiet event stream, so proxies keep it open
MAX_BODY_BYTES = 64_000  # a job request is well under 1 KB; uploads have their own limit (--max-upload-mb)
MAX_JSON_DEPTH = 16  # a job request nests 3 deep; deeper is refused before anything recurses over it
# A header a cross-site "simple" request cannot carry: sending it makes the browser ask first (CORS preflight),
# and the studio answers no preflight, so only its own page (same origin) can send it.
CUSTOM_HEADER = "x-artistyle"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def megabytes(size: int) -> str:
    """``20000000`` -> ``'20 MB'`` (decimal megabytes, three significant digits)."""
    return f"{size / 1e6:.3g} MB"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _HostCheck:
    """Refuses requests whose Host header is not one of ``hosts`` (``"*"``: any).

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
            name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
            if name not in self.hosts:
                refusal = _error(400, "invalid Host header; open the studio at the address it printed")
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


class _RequestGuard:
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
                await _error(403, refusal)(scope, receive, send)
                return
        if scope["path"] == self.upload_path:
            await self.app(scope, receive, send)
            return
        too_large = f"the request body is over the studio's limit of {MAX_BODY_BYTES // 1000} KB"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _error(413, too_large)(scope, receive, send)
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


def json_depth(value: object) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar: 0), counted without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest


class _SecurityHeaders:
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


def create_app(
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    device: str = "auto",
    max_memory: int | None = None,
    max_size: int = MAX_SIZE,
    max_steps: int = MAX_STEPS,
    preview_interval: float = PREVIEW_INTERVAL,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The studio app. Its worker thread starts and stops with the app's lifespan (under
    ``artistyle web``, with the server: see :func:`artistyle.web.server.serve`).

    ``allowed_hosts``: Host header values to accept (default: the loopback names),
    so a web page elsewhere cannot reach the studio through DNS rebinding.
    """
    resolved = resolve_device(device)  # a bad --device fails now, not at the first job
    studio = Studio(device=device, max_memory=max_memory, max_pixels=max_pixels, max_size=max_size,
                    max_steps=max_steps, preview_interval=preview_interval)
    # Every setting a page may send, at its default; the size is this device's default.
    defaults = {name: value for name, value in StyleConfig().to_dict().items() if name in SETTINGS}
    defaults["size"] = StyleConfig().output_size(resolved.type)
    # Set by the server at Ctrl-C: event streams end at once instead of holding the shutdown up.
    stopping = threading.Event()

    def find_job(request: Request) -> Job:
        job = studio.job(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job (it may have been forgotten; start it again)")
        return job

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def status(request: Request) -> Response:
        return JSONResponse({
            "version": __version__,
            "device": str(resolved),
            "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels, "max_size": max_size,
                       "max_steps": max_steps, "max_styles": MAX_STYLES},
            "defaults": defaults,
            **studio.status(),
        })

    async def samples(request: Request) -> Response:
        found = await run_in_threadpool(studio.samples)
        return JSONResponse([image.info() for image in found.values()])

    async def sample(request: Request) -> Response:
        image = studio.samples().get(request.path_params["sample_id"])
        if image is None:
            raise HTTPException(404, "no such sample image")
        return Response(image.data, media_type="image/jpeg", headers={"cache-control": "max-age=3600"})

    async def upload(request: Request) -> Response:
        # Raw bytes, so not JSON: the custom header is what keeps a simple cross-site request out.
        if request.headers.get(CUSTOM_HEADER) is None:
            return _error(403, "uploads need the X-ArtiStyle: 1 header (sent by the studio's page)")
        name = client_name(unquote(request.headers.get("x-filename", "")))
        too_large = (f"image '{name}' is over the studio's limit of {megabytes(max_upload_bytes)} per image "
                     "(artistyle web --max-upload-mb)")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload_bytes:
            # Refused from the header, before a byte of the body is read.
            return _error(413, f"image '{name}' is {megabytes(int(length))}, over the studio's limit of "
                               f"{megabytes(max_upload_bytes)} per image (artistyle web --max-upload-mb)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                return _error(413, too_large)
            chunks.append(chunk)
        image = await run_in_threadpool(studio.add_image, b"".join(chunks), name)
        return JSONResponse(image.info(), status_code=201)

    async def submit(request: Request) -> Response:
        # JSON only: a form on another web site cannot send it without the browser asking first (CORS).
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "send the job as application/json")
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise UsageError("the request body is not valid JSON") from None
        except RecursionError:
            raise UsageError(f"the request body nests too deeply (at most {MAX_JSON_DEPTH} levels)") from None
        if json_depth(body) > MAX_JSON_DEPTH:
            raise UsageError(f"the request body nests too deeply (at most {MAX_JSON_DEPTH} levels)")
        if not isinstance(body, dict):
            raise UsageError("the request body must be a JSON object")
        unknown = set(body) - {"content", "styles", "settings", "fine_style", "masks"}
        if unknown:
            raise UsageError(f"unknown field {short_repr(min(unknown))}; send content, styles, settings, "
                             "and optionally fine_style and masks")
        # In the thread pool: masks are decoded and checked now, so a bad one is refused at once.
        job = await run_in_threadpool(lambda: studio.submit(
            body.get("content"), body.get("styles"), body.get("settings"),
            fine_style=body.get("fine_style"), masks=body.get("masks")))
        return JSONResponse(studio.snapshot(job), status_code=201)

    async def job_state(request: Request) -> Response:
        return JSONResponse(studio.snapshot(find_job(request)))

    async def events(request: Request) -> Response:
        job = find_job(request)

        async def stream() -> AsyncIterator[str]:
            sent_version, sent_losses, quiet = -1, 0, 0.0
            # A reconnecting EventSource says where it was; it then gets the losses after that.
            last = request.headers.get("last-event-id", "")
            if last.isdigit():
                sent_losses = int(last)
            while True:
                if job.version != sent_version:
                    state = studio.snapshot(job, sent_losses)
                    sent_version, sent_losses = state["version"], state["losses_from"] + len(state["losses"])
                    yield f"id: {sent_losses}\ndata: {json.dumps(state)}\n\n"
                    quiet = 0.0
                    if state["status"] not in ("queued", "running", "cancelling"):
                        return
                elif quiet >= KEEPALIVE:
                    yield ": keep-alive\n\n"
                    quiet = 0.0
                if stopping.is_set() or await request.is_disconnected():
                    return  # the server is stopping (Ctrl-C) or the page went away
                await asyncio.sleep(EVENT_POLL)
                quiet += EVENT_POLL

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def preview(request: Request) -> Response:
        data = find_job(request).preview
        if data is None:
            raise HTTPException(404, "no preview yet")
        return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})

    async def result(request: Request) -> Response:
        job = find_job(request)
        if job.result is None:
            raise HTTPException(404, "the job has no result yet")
        return Response(job.result, media_type="image/png",
                        headers={"content-disposition": f'attachment; filename="{job.download_name}"'})

    async def cancel(request: Request) -> Response:
        job = studio.cancel(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job")
        return JSONResponse(studio.snapshot(job))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def usage_error(request: Request, exc: Exception) -> Response:
        # UsageError / ImageError: the client sent something unusable; the message says what.
        return _error(400 if isinstance(exc, UsageError) else 503, str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        # A bug: the page gets one line; Starlette then re-raises, and the server logs the traceback.
        return _error(500, f"internal error ({type(exc).__name__}); the studio's log has the details")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        studio.start()
        try:
            yield
        finally:
            await run_in_threadpool(studio.close)

    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    app = Starlette(
        routes=[
            Route("/", index),
            Route("/api/status", status),
            Route("/api/samples", samples),
            Route("/api/samples/{sample_id}", sample),
            Route("/api/images", upload, methods=["POST"]),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/jobs/{job_id}", job_state),
            Route("/api/jobs/{job_id}/events", events),
            Route("/api/jobs/{job_id}/preview.jpg", preview),
            Route("/api/jobs/{job_id}/result.png", result),
            Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(_HostCheck, hosts=hosts), Middleware(_SecurityHeaders), Middleware(_RequestGuard)],
        exception_handlers={HTTPException: http_error, ArtiStyleError: usage_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.studio = studio
    app.state.stopping = stopping
    return app
