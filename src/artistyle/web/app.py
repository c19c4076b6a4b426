"""The studio's ASGI app: a page, its static files and a small JSON API over :class:`Studio`.

API (every error is ``{"error": "one line"}``, with a 4xx status, or 500 for a bug)::

    GET  /api/status                  limits, the page's defaults, the settings' descriptions (the page builds its
                                      form from them), device, the fast start, what the worker is doing, and
                                      this server process's ``instance`` (a page tells a restart from a blip)
    GET  /api/pulse                   {"instance", "revision", "running", "waiting"}: what a page polls every
                                      second or two, so that it sees at once a studio stopped or restarted, and
                                      refreshes its History when ``revision`` (of the jobs kept) changes
    GET  /api/samples                 the bundled sample images; GET /api/samples/{id} the image
    POST /api/images                  the raw image bytes -> {"id", "width", "height", "sha256", ...}; a PNG painted
                                      by ArtiStyle also gives its "record" (settings and seed: the page offers them)
    POST /api/jobs                    {"content": id, "styles": [id, ...], "settings": {...},
                                       "fine_style": id (optional), "masks": [id, ...] (optional)};
                                      429 when MAX_WAITING (32) jobs already wait
    GET  /api/images/{id}             an upload, a sample or a kept job's image, as it was sent
    GET  /api/schedule?size=&steps=&scales=&init=   the scales and iterations of a run at that size
    POST /api/command                 the same fields as a job -> {"command": "artistyle PHOTO STYLE --option ..."}:
                                      the run as the command line says it (samples by their path here)
    GET  /api/jobs                    every job kept (running, queued, the newest finished), newest first
    GET  /api/jobs/{id}               the job's state, settings and images (a reloaded page reattaches)
    GET  /api/jobs/{id}/events        the same as server-sent events, until the job ends
    GET  /api/jobs/{id}/preview.jpg   the latest preview
    GET  /api/jobs/{id}/result.png    the result at full size, its settings and seed in a text chunk
                                      (also after a cancel: the image so far, if an iteration ended)
    GET  /api/jobs/{id}/first-guess.png  a fast start cancelled before its first iteration: its first guess
    POST /api/jobs/{id}/cancel

Every POST must come from the studio's own page: a cross-site Origin or Sec-Fetch-Site is
refused (403), and so is a POST with neither ``Content-Type: application/json`` nor the
``X-ArtiStyle: 1`` header (a "simple" request another site could send without a CORS
preflight). Request bodies other than uploads are capped at :data:`MAX_BODY_BYTES` (413).

A job's settings left out (or null) are :class:`StyleConfig`'s defaults, as on the command line:
``init`` is ``noise`` there. The page's own defaults, from ``/api/status``, differ in one place: it
starts from ``fast`` (:data:`STUDIO_INIT`) where the fast extra is installed, and ``fast`` in the
status says whether it is, with the line to show where not.

The status's ``settings`` describe every setting a page may send (:func:`describe_settings`: name,
kind, choices, default, range, help, grouped as ``artistyle --help``); the page's More settings
are built from them, so a new studio field of :class:`StyleConfig` appears there by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..config import FAST_SCHEDULE, StyleConfig
from ..devices import resolve_device
from ..errors import ArtiStyleError, UsageError
from ..settings import short_repr
from ..version import __version__
from . import jobs as kept
from .command import command_line, record_form, sample_path
from .guard import CUSTOM_HEADER, MAX_BODY_BYTES, HostCheck, RequestGuard, SecurityHeaders, error_response, json_depth
from .images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES, StoredImage, client_name, painted_record
from .job import Job, download_name, schedule
from .jobs import PREVIEW_INTERVAL, QueueFull, Studio
from .settings import (
    MAX_SIZE,
    MAX_STEPS,
    MAX_STYLES,
    SETTINGS,
    describe_settings,
    fast_missing,
    parse_settings,
    studio_settings,
)

__all__ = ["CUSTOM_HEADER", "LOOPBACK_HOSTS", "MAX_BODY_BYTES", "MAX_JSON_DEPTH", "STUDIO_INIT", "create_app",
           "megabytes"]

STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
EVENT_POLL = 0.1  # s between looks at a job for its event stream
KEEPALIVE = 15.0  # s between comments on a quiet event stream, so proxies keep it open
MAX_JSON_DEPTH = 16  # a job request nests 3 deep; deeper is refused before anything recurses over it
# The page's start where the fast extra is installed (the library and the command line keep the paper's noise):
# with its schedule it ends closer to both the photo and the painting than the default run, in about a quarter of
# its time, on five pairs at 448 px (benchmarks/bench_fast.py, docs/benchmarks.md, "Fast start"), and its picture
# is a preview within about a second of Start (benchmarks/bench_studio.py).
STUDIO_INIT = "fast"


def megabytes(size: int) -> str:
    """``20000000`` -> ``'20 MB'`` (decimal megabytes, three significant digits)."""
    return f"{size / 1e6:.3g} MB"


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
    # Every setting a page may send, at its default; the size is this device's default (init: see status).
    defaults = {name: value for name, value in StyleConfig().resolved().to_dict().items() if name in SETTINGS}
    defaults["size"] = StyleConfig().output_size(resolved.type)
    # What the page builds its More settings from: every studio setting, described (StyleConfig's own defaults).
    form = describe_settings(studio_settings())
    # Set by the server at Ctrl-C: event streams end at once instead of holding the shutdown up.
    stopping = threading.Event()
    # This server process: a page that sees another one knows the studio was restarted (its jobs, results and
    # uploads are gone), not merely out of reach for a moment.
    instance, started = secrets.token_urlsafe(9), time.time()

    def find_job(request: Request) -> Job:
        job = studio.job(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job (it may have been forgotten; start it again)")
        return job

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def status(request: Request) -> Response:
        missing = fast_missing()  # asked each time: cheap, and an extra installed meanwhile counts
        return JSONResponse({
            "version": __version__,
            "device": str(resolved),
            "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels, "max_size": max_size,
                       "max_steps": max_steps, "max_styles": MAX_STYLES,
                       "max_history": kept.MAX_FINISHED_JOBS},
            # The page's defaults: StyleConfig's, but the studio's own start where it can run.
            "defaults": {**defaults, "init": "noise" if missing else STUDIO_INIT},
            "settings": form,
            # Whether the fast start can run here (else the line to show), and its schedule, for the help lines.
            "fast": {"available": missing is None, "message": missing, "schedule": FAST_SCHEDULE},
            "instance": instance,
            "started": started,
            **studio.status(),
        })

    def revision() -> str:
        # Changes when a job is added, forgotten, or changes status or gets its result (not at every iteration).
        kept = "|".join(f"{job['id']}:{job['status']}:{job['result']}" for job in studio.history())
        return hashlib.sha256(kept.encode()).hexdigest()[:16]

    async def pulse(request: Request) -> Response:
        return JSONResponse({"instance": instance, "revision": revision(), **studio.status()},
                            headers={"cache-control": "no-store"})

    async def samples(request: Request) -> Response:
        found = await run_in_threadpool(studio.samples)
        return JSONResponse([image.info() for image in found.values()])

    async def sample(request: Request) -> Response:
        image = studio.samples().get(request.path_params["sample_id"])
        if image is None:
            raise HTTPException(404, "no such sample image")
        return Response(image.data, media_type="image/jpeg", headers={"cache-control": "max-age=3600"})

    async def image(request: Request) -> Response:
        # An image a page showed before a reload (its blob URL is gone): an upload, a sample or a job's.
        found = studio.find_image(request.path_params["image_id"])
        if found is None:
            raise HTTPException(404, "no such image (it may have been forgotten; add it again)")
        return Response(found.data, media_type=found.media_type, headers={"cache-control": "max-age=3600"})

    async def steps_schedule(request: Request) -> Response:
        # The scales and iterations a run would do, for the Steps field's help: the engine's own numbers, with
        # the fast start's schedule where a job with these fields would get it ("fast": true; parse_settings).
        query = request.query_params
        wanted: dict[str, object] = {}
        for name in ("size", "steps", "scales"):
            text = query.get(name, "").strip()
            if text:
                try:
                    wanted[name] = int(text)
                except ValueError:
                    raise UsageError(f"{name} must be a whole number, not {short_repr(text)}") from None
        if query.get("init", "").strip():
            wanted["init"] = query["init"].strip()
        config = StyleConfig.from_mapping(wanted, allowed=SETTINGS, files=False).validate()
        if config.size is not None and config.size > max_size:
            raise UsageError(f"size must be at most {max_size} px in the studio, not {config.size}")
        scheduled = config.resolved()
        fast = config.init == "fast" and config.steps is None and config.scale_steps is None
        return JSONResponse({**schedule(scheduled, scheduled.output_size(resolved.type)), "fast": fast})

    async def jobs(request: Request) -> Response:
        return JSONResponse(studio.history())

    async def upload(request: Request) -> Response:
        # Raw bytes, so not JSON: the custom header is what keeps a simple cross-site request out.
        if request.headers.get(CUSTOM_HEADER) is None:
            return error_response(403, "uploads need the X-ArtiStyle: 1 header (sent by the studio's page)")
        name = client_name(unquote(request.headers.get("x-filename", "")))
        too_large = (f"image '{name}' is over the studio's limit of {megabytes(max_upload_bytes)} per image "
                     "(artistyle web --max-upload-mb)")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_upload_bytes:
            # Refused from the header, before a byte of the body is read.
            return error_response(413, f"image '{name}' is {megabytes(int(length))}, over the studio's limit of "
                               f"{megabytes(max_upload_bytes)} per image (artistyle web --max-upload-mb)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_upload_bytes:
                return error_response(413, too_large)
            chunks.append(chunk)
        data = b"".join(chunks)
        image = await run_in_threadpool(studio.add_image, data, name)
        record = painted_record(data)
        form = record_form(record, defaults["size"]) if record else None
        return JSONResponse({**image.info(), **({"record": form} if form else {})}, status_code=201)

    async def job_body(request: Request) -> dict[str, Any]:
        """A job's JSON fields, checked as far as JSON goes (a 415 is the caller's)."""
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
        return body

    async def command(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error_response(415, "send the job as application/json")
        body = await job_body(request)
        settings = body.get("settings")
        styles = body.get("styles")
        if not isinstance(styles, list) or not styles:
            raise UsageError("add at least one style image")
        content = studio.image(body.get("content"), "content image")
        style_images = [studio.image(s, "style image") for s in styles]
        config = parse_settings(settings, len(style_images), device=device, max_size=max_size, max_steps=max_steps)
        given = [name for name, value in settings.items() if value is not None] if isinstance(settings, dict) else []
        fine = body.get("fine_style")
        fine_image = None if fine is None else studio.image(fine, "fine style image")
        masks = body.get("masks") or []
        mask_images = [studio.image(m, "mask") for m in masks] if isinstance(masks, list) else []

        def named(image: StoredImage) -> str:
            return sample_path(image.name) if image.sample else image.name

        text = command_line(config, given, named(content), [named(s) for s in style_images],
                            fine_style=None if fine_image is None else named(fine_image),
                            masks=[named(m) for m in mask_images],
                            output=download_name(content, style_images, config.seed))
        return JSONResponse({"command": text})

    async def submit(request: Request) -> Response:
        # JSON only: a form on another web site cannot send it without the browser asking first (CORS).
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error_response(415, "send the job as application/json")
        body = await job_body(request)
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

    async def first_guess(request: Request) -> Response:
        job = find_job(request)
        if job.first_guess is None:
            raise HTTPException(404, "the job has no first guess (only a fast start cancelled before iterating has)")
        name = job.download_name.removesuffix(".png") + "_first_guess.png"
        return Response(job.first_guess, media_type="image/png",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    async def cancel(request: Request) -> Response:
        job = studio.cancel(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job")
        return JSONResponse(studio.snapshot(job))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    async def usage_error(request: Request, exc: Exception) -> Response:
        # UsageError / ImageError: the client sent something unusable; the message says what. A full queue: 429.
        status = 400 if isinstance(exc, UsageError) else 429 if isinstance(exc, QueueFull) else 503
        return error_response(status, str(exc))

    async def server_error(request: Request, exc: Exception) -> Response:
        # A bug: the page gets one line; Starlette then re-raises, and the server logs the traceback.
        return error_response(500, f"internal error ({type(exc).__name__}); the studio's log has the details")

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
            Route("/api/pulse", pulse),
            Route("/api/samples", samples),
            Route("/api/samples/{sample_id}", sample),
            Route("/api/images", upload, methods=["POST"]),
            Route("/api/images/{image_id}", image),
            Route("/api/schedule", steps_schedule),
            Route("/api/jobs", submit, methods=["POST"]),
            Route("/api/command", command, methods=["POST"]),
            Route("/api/jobs", jobs),
            Route("/api/jobs/{job_id}", job_state),
            Route("/api/jobs/{job_id}/events", events),
            Route("/api/jobs/{job_id}/preview.jpg", preview),
            Route("/api/jobs/{job_id}/result.png", result),
            Route("/api/jobs/{job_id}/first-guess.png", first_guess),
            Route("/api/jobs/{job_id}/cancel", cancel, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(HostCheck, hosts=hosts), Middleware(SecurityHeaders), Middleware(RequestGuard)],
        exception_handlers={HTTPException: http_error, ArtiStyleError: usage_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.studio = studio
    app.state.stopping = stopping
    return app
