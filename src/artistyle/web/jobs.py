"""The studio's state: uploaded images, run settings from JSON, and one worker that paints.

Everything lives in memory. Images and jobs are named by random server-made
tokens; nothing the client sends is ever used as a file path. The library reads
region masks and a fine style image from files only: a run that uses them gets
copies of the uploads, under server-made names, in the studio's own private
temporary folder, removed when the run ends (and the folder when the studio closes). Jobs run one at
a time, in order, on a single worker thread (one run already uses every core or
the whole GPU); the others wait in a queue and know their place in it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
import secrets
import tempfile
import threading
import time
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from ..config import StyleConfig
from ..devices import resolve_device
from ..errors import ArtiStyleError, ImageError, UsageError
from ..images import LoadedImage, load_image, save_image
from ..masks import load_masks
from ..nst import NST, Painting, tensor_to_array, to_pil
from ..settings import short_repr

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "MAX_SIZE",
    "MAX_STEPS",
    "MAX_STYLES",
    "Job",
    "StoredImage",
    "Studio",
    "parse_settings",
]

log = logging.getLogger("artistyle.web")

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000  # per image; a 40 MP JPEG from a camera fits
DEFAULT_MAX_PIXELS = 40_000_000  # per image; decoded to float32 that is 480 MB
# A run this large already takes hours on a CPU; bigger prints are for the command line.
MAX_SIZE = 4096
MAX_STEPS = 10_000
MAX_STYLES = 8
# Kept in memory: the newest uploads and the newest finished jobs (results are PNG bytes).
MAX_IMAGES = 64
MAX_FINISHED_JOBS = 16
PREVIEW_EDGE = 1024  # long edge of the live preview (JPEG); the result keeps its full size
PREVIEW_INTERVAL = 0.25  # s between previews: one per iteration would slow small GPU runs
ACTIVE = ("queued", "running", "cancelling")

# Settings a page may send: StyleConfig's fields marked for the studio. Paths (masks, a fine style,
# weights, an init image) are left out on purpose: the client never names a file on the server;
# masks and a fine style come as image ids, beside the settings (Studio.submit). The device and the
# memory limit are the server's.
SETTINGS = tuple(s.name for s in StyleConfig.settings() if s.studio)


def parse_settings(
    data: Any, styles: int, *, device: str = "auto", max_memory: int | None = None,
    max_size: int = MAX_SIZE, max_steps: int = MAX_STEPS,
) -> StyleConfig:
    """A validated :class:`StyleConfig` from a job's JSON settings, for ``styles`` style images on ``device``.

    Raises :class:`UsageError` naming the first bad setting, with the same
    messages as the command line where the check is the same.
    """
    config = StyleConfig.from_mapping({} if data is None else data, allowed=SETTINGS, files=False)
    config = dataclasses.replace(config, device=device, max_memory=max_memory).validate()
    if config.size is not None and config.size > max_size:
        raise UsageError(f"size must be at most {max_size} px in the studio, not {config.size}")
    if config.steps > max_steps:
        raise UsageError(f"steps must be at most {max_steps} in the studio, not {config.steps}")
    # The checks that need the number of styles or the size, before the job waits in the queue.
    config.check(styles, resolve_device(device).type)
    return config


# --------------------------------------------------------------------------- images


def client_name(name: str | None, default: str = "image") -> str:
    """A file name from the client, fit for messages only: last component, printable, short."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name[:60] + "...") if len(name) > 63 else (name or default)


@dataclass(frozen=True)
class StoredImage:
    """An image as uploaded (its bytes) and what was learnt when it was checked."""

    id: str
    name: str
    data: bytes
    width: int
    height: int
    sample: bool = False

    def decode(self, role: str) -> LoadedImage:
        """The image in the library's form, decoded from memory."""
        return _load(self.data, self.name, role)

    def info(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "width": self.width, "height": self.height, "bytes": len(self.data)}


def _load(data: bytes, name: str, role: str, max_pixels: int | None = None) -> LoadedImage:
    """Decode ``data`` with the library's loader; the pixel limit is checked on the header first."""
    label = f"{role} '{name}'"
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    with warnings.catch_warnings():
        # Pillow's own bomb guard fires in load_image with the library's message; here
        # only the header is read, so its size can be compared with the studio's limit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            img = None
        except Exception as exc:  # UnidentifiedImageError and a damaged header alike
            raise ImageError(f"{label} is not an image file Pillow can read") from exc
    if img is None or (max_pixels is not None and img.width * img.height > max_pixels):
        limit = f"the studio's limit of {max_pixels or Image.MAX_IMAGE_PIXELS:,} pixels"
        if img is None:
            raise ImageError(f"{label} has too many pixels, far over {limit}")
        raise ImageError(f"{label} is {img.width}x{img.height} = {img.width * img.height:,} pixels, over {limit}")
    img.filename = name  # only names the image in load_image's messages
    return load_image(img, role=role)


# --------------------------------------------------------------------------- jobs


def _token() -> str:
    return secrets.token_urlsafe(12)


@dataclass(eq=False)
class Job:
    """One run, from the queue to its result. Changed by the worker, read by the event streams."""

    id: str
    config: StyleConfig
    content: StoredImage
    styles: list[StoredImage]
    fine_style: StoredImage | None = None
    masks: list[StoredImage] = field(default_factory=list)
    status: str = "queued"  # queued, running, cancelling, done, cancelled, failed
    iteration: int = 0
    steps: int = 0
    scale: int = 0
    scales: int = 1
    width: int = 0  # of the scale being painted
    height: int = 0
    output_width: int = 0
    output_height: int = 0
    seed: int | None = None
    seconds: float = 0.0
    error: str | None = None
    losses: list[float] = field(default_factory=list)
    preview: bytes | None = None
    preview_version: int = 0
    result: bytes | None = None
    version: int = 0  # bumped on every change, so an event stream knows when to send
    cancel_requested: bool = False
    painting: Painting | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def download_name(self) -> str:
        stems = [re.sub(r"[^A-Za-z0-9_-]+", "_", Path(i.name).stem)[:30] for i in (self.content, *self.styles[:2])]
        return "_".join(["artistyle", *(s for s in stems if s.strip("_"))]) + ".png"


class Studio:
    """Uploaded images, jobs and the worker thread that runs them one at a time.

    Thread-safe: the web handlers call it from the event loop and the thread
    pool, the worker from its own thread; one lock guards all state.
    """

    def __init__(
        self, *, device: str = "auto", max_memory: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
        max_size: int = MAX_SIZE, max_steps: int = MAX_STEPS, preview_interval: float = PREVIEW_INTERVAL,
    ):
        self.device = device
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
        # Private (0700) folder for the copies of masks and fine styles the library reads as files.
        self._folder: tempfile.TemporaryDirectory[str] | None = None

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
        with self._lock:
            folder, self._folder = self._folder, None
        if folder is not None:
            folder.cleanup()

    @property
    def temp_folder(self) -> Path:
        """The studio's private temporary folder (made on first use; removed by :meth:`close` or at exit)."""
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="artistyle-web-")
            return Path(self._folder.name)

    def _write_temp(self, image: StoredImage) -> Path:
        """A copy of an upload's original bytes under a server-made name, readable only by this user."""
        suffix = Path(image.name).suffix
        suffix = suffix.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,5}", suffix) else ""
        path = self.temp_folder / f"{_token()}{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(image.data)
        return path

    def _check_masks(self, masks: list[StoredImage], content: StoredImage, styles: int) -> None:
        """The library's mask checks (size, count, labels), run now so a bad mask is a 400, not a failed job."""
        paths: list[Path] = []
        try:
            paths = [self._write_temp(m) for m in masks]
            with self._decode_lock:
                load_masks(paths, styles, (content.width, content.height))
        except ArtiStyleError as exc:
            raise type(exc)(_client_names(str(exc), dict(zip(paths, masks)))) from None
        finally:
            _remove(paths)

    # -- images -----------------------------------------------------------------
    def add_image(self, data: bytes, name: str) -> StoredImage:
        """Check an upload (fully decoded, as a run will) and keep its bytes; ImageError if unusable."""
        with self._decode_lock:
            loaded = _load(data, name, "image", self.max_pixels)
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
                folder = resources.files("artistyle") / "samples"
                for entry in sorted(folder.iterdir(), key=lambda e: e.name):
                    if entry.name.lower().endswith((".jpg", ".jpeg", ".png")):
                        data = entry.read_bytes()
                        with Image.open(io.BytesIO(data)) as img:
                            width, height = img.size
                        sid = f"sample:{entry.name}"
                        self._samples[sid] = StoredImage(sid, entry.name, data, width, height, sample=True)
            return dict(self._samples)

    def image(self, image_id: Any, role: str) -> StoredImage:
        if not isinstance(image_id, str):
            raise UsageError(f"the {role} must be an image id, not {short_repr(image_id)}")
        with self._lock:
            image = self._images.get(image_id) or self.samples().get(image_id)
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
        job = Job(_token(), config, content_image, style_images, fine_image, mask_images, steps=config.steps)
        with self._lock:
            if self._closing:
                raise ArtiStyleError("the studio is shutting down")
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._forget_old_jobs()
            self._queue_changed()
            self._wake.notify_all()
        return job

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
            losses_from = max(0, min(losses_from, len(job.losses)))
            return {
                "id": job.id,
                "status": job.status,
                "position": self.position(job),
                "iteration": job.iteration,
                "steps": job.steps,
                "scale": job.scale,
                "scales": job.scales,
                "width": job.width,
                "height": job.height,
                "output_width": job.output_width,
                "output_height": job.output_height,
                "seed": job.seed,
                "seconds": round(job.seconds, 3),
                "loss": job.losses[-1] if job.losses else None,
                "losses_from": losses_from,
                "losses": job.losses[losses_from:],
                "preview": job.preview_version,
                "result": job.result is not None,
                "error": job.error,
                "version": job.version,
            }

    # -- internals (called with the lock held) ----------------------------------------
    def _changed(self, job: Job) -> None:
        job.version += 1

    def _queue_changed(self) -> None:
        # Every waiting job's place may have moved.
        for job in self._waiting:
            self._changed(job)

    def _request_cancel(self, job: Job) -> None:
        job.cancel_requested = True
        if job.painting is not None:
            job.painting.stop()
        if job.status == "running":
            job.status = "cancelling"
            self._changed(job)

    def _finish(self, job: Job, status: str, error: str | None = None) -> None:
        job.status, job.error, job.painting = status, error, None
        self._changed(job)

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
            files: dict[Path, StoredImage] = {}
            try:
                self._paint(job, files)
                if job.cancel_requested:
                    status = "cancelled"
            except ArtiStyleError as exc:
                status, error = "failed", _client_names(str(exc), files)
            except MemoryError:
                status, error = "failed", "out of memory; try a smaller size"
            except Exception as exc:  # a bug or a device failure: one line for the page, details in the log
                log.exception("job %s failed", job.id)
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if "out of memory" in text.lower():
                    error = "the device ran out of memory; try a smaller size"
                else:
                    error = f"{type(exc).__name__}: {_client_names(text, files)}"
                status = "failed"
            finally:
                _remove(files)
            with self._lock:
                self._running = None
                self._finish(job, status, error)

    def _paint(self, job: Job, files: dict[Path, StoredImage]) -> None:
        """Run one job on this thread, publishing progress, previews and the result.

        The copies of masks and the fine style it writes are put in ``files`` (path ->
        upload), for the caller to remove and to name in messages.
        """
        started = time.perf_counter()
        content = job.content.decode("content image")
        styles = [s.decode("style image") for s in job.styles]
        if job.cancel_requested:
            return
        config = job.config
        if job.fine_style is not None or job.masks:
            def copy(image: StoredImage) -> str:
                path = self._write_temp(image)
                files[path] = image
                return str(path)

            config = dataclasses.replace(
                config,
                fine_style=copy(job.fine_style) if job.fine_style is not None else None,
                masks=tuple(copy(m) for m in job.masks) or None,
            )
        nst = NST(config)
        painting = nst.paint(content, styles)  # plans memory for every scale: fails here if it cannot fit
        with self._lock:
            job.painting = painting
            job.seed = nst.seed
            job.steps = painting.steps
            job.scales = len(painting.sizes)
            job.output_height, job.output_width = painting.output_shape
            if job.cancel_requested:
                painting.stop()
            self._changed(job)
        shown, last_preview = 0, 0.0
        for event in painting:
            preview = None
            now = time.perf_counter()
            if now - last_preview >= self.preview_interval or event.iteration == painting.steps:
                preview, shown, last_preview = _jpeg(painting), event.iteration, time.perf_counter()
            with self._lock:
                job.iteration, job.steps = event.iteration, event.steps
                job.scale, job.scales = event.scale, event.scales
                job.width, job.height = event.size
                job.losses.append(event.loss)
                job.seconds = time.perf_counter() - started
                if preview is not None:
                    job.preview, job.preview_version = preview, job.preview_version + 1
                self._changed(job)
        if painting.transfer is None:
            return  # cancelled before the first iteration: nothing to show
        # The result at full size and quality, written exactly as the command line writes it.
        result = _png(painting)
        preview = _jpeg(painting) if shown != painting.iteration else None
        with self._lock:
            job.result = result
            job.seconds = time.perf_counter() - started
            if preview is not None:
                job.preview, job.preview_version = preview, job.preview_version + 1
            self._changed(job)


def _client_names(message: str, files: dict[Path, StoredImage]) -> str:
    """``message`` with each temporary copy's path replaced by the upload's own (client) name."""
    for path, image in files.items():
        message = message.replace(str(path), image.name)
    return message


def _remove(paths: Any) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _jpeg(painting: Painting) -> bytes:
    """The painting so far as a JPEG preview, at most PREVIEW_EDGE px."""
    image = to_pil(tensor_to_array(painting.image))
    image.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def _png(painting: Painting) -> bytes:
    """The result as the CLI saves it (sRGB profile, the content's alpha put back), kept in memory."""
    # save_image only writes files; a private folder that is removed at once keeps its exact output.
    with tempfile.TemporaryDirectory(prefix="artistyle-web-") as folder:
        path = save_image(tensor_to_array(painting.image), Path(folder) / "result.png", alpha=painting.alpha)
        return path.read_bytes()

