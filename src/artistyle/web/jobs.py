"""The studio's jobs: a queue of runs and the one worker thread that paints them.

Everything lives in memory: uploads are kept as their bytes and handed to the
library as decoded images (masks and a fine style too), results are PNG bytes;
the studio writes no file. Images and jobs are named by random server-made
tokens; nothing the client sends is ever used as a file path. Jobs run one at a
time, in order, on a single worker thread (one run already uses every core or
the whole GPU); the others wait in a queue and know their place in it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from typing import Any

from ..devices import resolve_device
from ..errors import ArtiStyleError, UsageError
from ..masks import load_masks
from ..nst import NST
from ..settings import short_repr
from ..sizes import check_image_sizes
from .images import DEFAULT_MAX_PIXELS, StoredImage, bundled_samples, decode_upload, first_guess_png, preview_jpeg
from .job import ACTIVE, Job, job_state
from .settings import MAX_SIZE, MAX_STEPS, MAX_STYLES, parse_settings

__all__ = ["ACTIVE", "MAX_FINISHED_JOBS", "MAX_IMAGES", "MAX_WAITING", "PREVIEW_INTERVAL", "Job", "QueueFull", "Studio"]

log = logging.getLogger("artistyle.web")

# Kept in memory: the newest uploads and the newest finished jobs (results are PNG bytes).
MAX_IMAGES = 64
MAX_FINISHED_JOBS = 16
# Jobs that may wait behind the running one: a page queues a few; a script posting hundreds would hold their
# images in memory and the worker for hours.
MAX_WAITING = 32
PREVIEW_INTERVAL = 0.25  # s between previews: one per iteration would slow small GPU runs


def _token() -> str:
    return secrets.token_urlsafe(12)


class QueueFull(ArtiStyleError):
    """A job refused because :data:`MAX_WAITING` jobs already wait (the studio answers 429)."""


class Studio:
    """Uploaded images, jobs and the worker thread that runs them one at a time.

    Thread-safe: the web handlers call it from the event loop and the thread
    pool, the worker from its own thread; one lock guards all state.
    """

    def __init__(
        self, *, device: str = "auto", max_memory: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
        max_size: int = MAX_SIZE, max_steps: int = MAX_STEPS, preview_interval: float = PREVIEW_INTERVAL,
        max_waiting: int = MAX_WAITING,
    ):
        self.device = device
        self.max_waiting = max_waiting
        self.max_memory = max_memory
        self.max_pixels = max_pixels
        self.max_size = max_size
        self.max_steps = max_steps
        self.preview_interval = preview_interval
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._images: OrderedDict[str, StoredImage] = OrderedDict()
        self._samples: dict[str, StoredImage] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._closing = False
        self._thread: threading.Thread | None = None
        # One full decode at a time: a 40 MP upload is 480 MB as float32.
        self._decode_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread (once)."""
        with self._lock:
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._work, name="artistyle-worker", daemon=True)
                self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running job, drop the queue and end the worker."""
        with self._lock:
            self._closing = True
            for job in self._waiting:
                self._finish(job, "cancelled")
            self._waiting.clear()
            if self._running is not None:
                self._request_cancel(self._running)
            self._wake.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _check_masks(self, masks: list[StoredImage], content: StoredImage, styles: int) -> None:
        """The library's mask checks (size, count, labels), run now so a bad mask is a 400, not a failed job.

        The masks are decoded from memory and named by the client's file names, which the messages quote.
        """
        with self._decode_lock:
            load_masks([m.picture("mask") for m in masks], styles, (content.width, content.height))

    # -- images -----------------------------------------------------------------
    def add_image(self, data: bytes, name: str) -> StoredImage:
        """Check an upload (fully decoded, as a run will) and keep its bytes; ImageError if unusable."""
        with self._decode_lock:
            loaded = decode_upload(data, name, "image", self.max_pixels)
        width, height = loaded.size
        del loaded
        image = StoredImage(_token(), name, data, width, height)
        with self._lock:
            self._images[image.id] = image
            while len(self._images) > MAX_IMAGES:
                self._images.popitem(last=False)  # queued jobs hold their own references
        return image

    def samples(self) -> dict[str, StoredImage]:
        """The bundled sample images, by id (``sample:NAME``), read from the package once."""
        with self._lock:
            if not self._samples:
                self._samples = bundled_samples()
            return dict(self._samples)

    def find_image(self, image_id: str) -> StoredImage | None:
        """An upload still kept, a sample, or an image of a job still kept (its page may show it again)."""
        with self._lock:
            image = self._images.get(image_id) or self.samples().get(image_id)
            if image is None:
                for job in self._jobs.values():
                    for candidate in (job.content, *job.styles, job.fine_style, *job.masks):
                        if candidate is not None and candidate.id == image_id:
                            return candidate
            return image

    def image(self, image_id: Any, role: str) -> StoredImage:
        if not isinstance(image_id, str):
            raise UsageError(f"the {role} must be an image id, not {short_repr(image_id)}")
        image = self.find_image(image_id)
        if image is None:
            raise UsageError(f"the {role} {short_repr(image_id)} is not on the server (any more); add it again")
        return image

    # -- jobs ---------------------------------------------------------------------
    def submit(self, content: Any, styles: Any, settings: Any, *, fine_style: Any = None, masks: Any = None) -> Job:
        """Queue a run; UsageError (before queueing) for unknown images or bad settings.

        ``fine_style``: an image id (or None) whose fine brush texture replaces the
        styles' own; ``masks``: image ids, one label image (0 = no style, k = style
        k) or one mask per style, each the content image's size.
        """
        self._check_room()  # at once, before the images and settings are checked
        if not isinstance(styles, list) or not styles:
            raise UsageError("add at least one style image")
        if len(styles) > MAX_STYLES:
            raise UsageError(f"at most {MAX_STYLES} style images, not {len(styles)}")
        content_image = self.image(content, "content image")
        style_images = [self.image(s, "style image") for s in styles]
        config = parse_settings(settings, len(style_images), device=self.device, max_memory=self.max_memory,
                                max_size=self.max_size, max_steps=self.max_steps)
        fine_image = None if fine_style is None else self.image(fine_style, "fine style image")
        if masks is None:
            masks = []
        if not isinstance(masks, list):
            raise UsageError("masks must be a list of image ids")
        if len(masks) > MAX_STYLES:
            raise UsageError(f"at most {MAX_STYLES} masks, not {len(masks)}")
        mask_images = [self.image(m, "mask") for m in masks]
        if mask_images:
            self._check_masks(mask_images, content_image, len(style_images))
        # Too wide or too tall for the network at some scale: refused now, not when the job starts.
        check_image_sizes(config, config.output_size(resolve_device(self.device).type), content_image, style_images,
                          fine_image, options=("Size", "Scales 1"))
        # The names the page sent a value for: its form puts back only those (an empty box stays empty).
        given = sorted(name for name, value in settings.items() if value is not None) if isinstance(settings, dict) \
            else []
        job = Job(_token(), config, content_image, style_images, fine_image, mask_images, steps=config.steps or 0,
                  given=given)
        with self._lock:
            if self._closing:
                raise ArtiStyleError("the studio is shutting down")
            self._check_room()
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._forget_old_jobs()
            self._queue_changed()
            self._wake.notify_all()
        return job

    def _check_room(self) -> None:
        """QueueFull when :attr:`max_waiting` jobs already wait behind the running one."""
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise QueueFull(f"the studio's queue is full ({len(self._waiting)} jobs waiting, at most "
                                f"{self.max_waiting}); start this one when a run has ended, or cancel a waiting one")

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one leaves the queue, a running one stops after its iteration."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status == "queued":
                self._waiting.remove(job)
                self._finish(job, "cancelled")
                self._queue_changed()
            elif job.status == "running":
                self._request_cancel(job)
            return job

    def position(self, job: Job) -> int:
        """1-based place of a queued job in the queue (the running job is ahead of all); 0 otherwise."""
        with self._lock:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return 0

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"running": self._running.id if self._running else None, "waiting": len(self._waiting)}

    def snapshot(self, job: Job, losses_from: int = 0) -> dict[str, Any]:
        """What a page needs to show a job: its state and the losses from index ``losses_from`` on."""
        with self._lock:
            return job_state(job, self.position(job), losses_from)

    def history(self) -> list[dict[str, Any]]:
        """Every job kept (the running and queued ones, then the newest finished), newest first, without losses."""
        with self._lock:
            return [job_state(job, self.position(job), len(job.losses)) for job in reversed(self._jobs.values())]

    # -- internals (called with the lock held) ----------------------------------------
    def _changed(self, job: Job) -> None:
        job.version += 1

    def _queue_changed(self) -> None:
        # Every waiting job's place may have moved.
        for job in self._waiting:
            self._changed(job)

    def _request_cancel(self, job: Job) -> None:
        job.cancel_requested.set()
        if job.painting is not None:
            job.painting.stop()
        if job.status == "running":
            job.status = "cancelling"
            self._changed(job)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.painting = status, error, None
        self._changed(job)
        self._forget_old_jobs()  # now too, or a job running at a submit would make one more

    def _forget_old_jobs(self) -> None:
        finished = [j for j in self._jobs.values() if not j.active]
        for job in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            del self._jobs[job.id]

    # -- the worker -----------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._waiting and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                job = self._waiting.popleft()
                self._running = job
                job.status = "running"
                self._changed(job)
                self._queue_changed()
            status, error = "done", None
            try:
                self._paint(job)
                if job.cancel_requested.is_set():
                    status = "cancelled"
            except ArtiStyleError as exc:
                status, error = "failed", str(exc)
            except MemoryError:
                status, error = "failed", "out of memory; try a smaller size"
            except Exception as exc:  # a bug or a device failure: one line for the page, details in the log
                log.exception("job %s failed", job.id)
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if "out of memory" in text.lower():
                    error = "the device ran out of memory; try a smaller size"
                else:
                    error = f"{type(exc).__name__}: {text}"
                status = "failed"
            with self._lock:
                self._running = None
                self._finish(job, status, error)

    def _paint(self, job: Job) -> None:
        """Run one job on this thread, publishing progress, previews and the result."""
        started = time.perf_counter()
        content = job.content.decode("content image")
        styles = [s.decode("style image") for s in job.styles]
        # Masks and the fine style go to the library as images decoded from memory, named by the client.
        masks = [m.picture("mask") for m in job.masks] or None
        fine_style = job.fine_style.decode("fine style image") if job.fine_style is not None else None
        if job.cancel_requested.is_set():
            return
        nst = NST(job.config)
        # Plans memory for every scale and reads the masks: fails here if it cannot fit.
        painting = nst.paint(content, styles, masks=masks, fine_style=fine_style)
        with self._lock:
            job.painting = painting
            job.started(painting, nst.seed)
            # Cancel may have come while the painting was prepared, before stop() could reach it.
            if job.cancel_requested.is_set():
                painting.stop()
            self._changed(job)
        last_preview, start = 0.0, None
        if job.config.init == "fast" and not job.cancel_requested.is_set():
            # The feed-forward picture, shown at once (about a second on a CPU) while the optimisation that
            # refines it starts: the painting keeps it as its first scale's start, so it is made only once.
            start = painting.start_image()
            first = preview_jpeg(start)
            last_preview = time.perf_counter()
            with self._lock:
                job.preview, job.preview_version = first, job.preview_version + 1
                job.seconds = last_preview - started
                self._changed(job)
        shown, painting_started = 0, time.perf_counter()
        for event in painting:
            start, preview = None, None
            now = time.perf_counter()
            if now - last_preview >= self.preview_interval or event.iteration == painting.steps:
                preview, shown, last_preview = preview_jpeg(painting.image), event.iteration, time.perf_counter()
            with self._lock:
                job.advanced(event, time.perf_counter() - painting_started)
                job.seconds = time.perf_counter() - started
                if preview is not None:
                    job.preview, job.preview_version = preview, job.preview_version + 1
                self._changed(job)
        if painting.transfer is None or painting.iteration == 0:
            # Cancelled before the first iteration ended: no result (a start image is no painting), but a fast
            # start's first guess, shown, can be kept (a file of its own, with the run's settings).
            if start is not None:
                guess = first_guess_png(start, painting.alpha, job.config, nst.seed)
                with self._lock:
                    job.first_guess = guess
                    self._changed(job)
            return
        # The result at full size and quality: the very bytes the command line writes (settings and seed included).
        result = painting.encode(".png")
        preview = preview_jpeg(painting.image) if shown != painting.iteration else None
        with self._lock:
            job.result = result
            job.seconds = time.perf_counter() - started
            if preview is not None:
                job.preview, job.preview_version = preview, job.preview_version + 1
            self._changed(job)
