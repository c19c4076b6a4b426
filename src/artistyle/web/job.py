"""One studio run (:class:`Job`) and what a page is told about it (:func:`job_state`).

A job keeps what the page needs to show it again after a reload: its images (by id,
with their names and sizes), its settings (those the page can set, with the seed
actually used), the scales and iterations of its schedule, its progress with a rate
and an estimate of the time left, and its preview and result.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import StyleConfig
from ..metadata import recorded_settings
from .images import StoredImage

if TYPE_CHECKING:
    from ..painting import Painting
    from ..transfer import Progress

__all__ = ["ACTIVE", "Job", "download_name", "finite", "job_state", "schedule"]

ACTIVE = ("queued", "running", "cancelling")
# How the seconds per iteration grow with a scale's pixels, for the scales not reached yet: as a power of the pixel
# ratio. Measured (issue 24): a fast start at 448 px on a CPU ran its 448 px scale at 1.46x the seconds per
# iteration of its 317 px scale, twice the pixels, where the pixel count alone said 2.0x (much of an iteration's
# work does not grow with the pixels). A scale once reached is timed as it runs.
PIXEL_EXPONENT = math.log(1.46) / math.log(2.0)


def scale_cost(size: int, than: int) -> float:
    """Seconds per iteration at a scale of long edge ``size`` px, relative to one of ``than`` px."""
    return float((size / than) ** (2 * PIXEL_EXPONENT))


def schedule(config: StyleConfig, size: int) -> dict[str, Any]:
    """The scales (long edges, coarse to fine) and the iterations at each that ``config`` runs at ``size`` px.

    The very numbers the engine uses (:meth:`StyleConfig.scale_sizes`, :meth:`StyleConfig.scale_schedule`).
    """
    sizes = config.scale_sizes(size)
    steps = config.scale_schedule(len(sizes))
    return {"size": size, "sizes": sizes, "steps": steps, "total": sum(steps)}


def download_name(content: StoredImage, styles: list[StoredImage], seed: int | None = None, tag: str = "") -> str:
    """``artistyle_PHOTO_STYLE[_STYLE]_seedN_TAG.png``: the images' names (two styles at most), then the seed and
    ``tag`` where known, so that the files of different runs have different names."""
    stems = [re.sub(r"[^A-Za-z0-9_-]+", "_", Path(i.name).stem)[:30] for i in (content, *styles[:2])]
    words = ["artistyle", *(s for s in stems if s.strip("_"))]
    if seed is not None:
        words.append(f"seed{seed}")
    return "_".join([*words, *([tag] if tag else [])]) + ".png"


@dataclass(eq=False)
class Job:
    """One run, from the queue to its result. Changed by the worker, read by the event streams."""

    id: str
    config: StyleConfig
    content: StoredImage
    styles: list[StoredImage]
    fine_style: StoredImage | None = None
    masks: list[StoredImage] = field(default_factory=list)
    # The settings the page sent with a value (the others were left at their default): a page puts only
    # these back in its form, so an empty Steps box stays empty and a fast start keeps its own schedule.
    given: list[str] = field(default_factory=list)
    status: str = "queued"  # queued, running, cancelling, done, cancelled, failed
    created: float = field(default_factory=time.time)
    iteration: int = 0
    steps: int = 0
    scale: int = 0
    scales: int = 1
    sizes: list[int] = field(default_factory=list)  # long edge of each scale
    schedule: list[int] = field(default_factory=list)  # iterations at each scale
    width: int = 0  # of the scale being painted
    height: int = 0
    output_width: int = 0
    output_height: int = 0
    seed: int | None = None
    seconds: float = 0.0
    painting_seconds: float = 0.0  # since the first iteration began (after the preparation)
    scale_began: float = 0.0  # painting_seconds when the current scale's first iteration ended
    scale_iterations: int = 0  # iterations of the current scale after its first
    first_iteration: float = 0.0  # seconds of the current scale's first iteration (its preparation included)
    error: str | None = None
    losses: list[float] = field(default_factory=list)
    preview: bytes | None = None
    preview_version: int = 0
    result: bytes | None = None
    first_guess: bytes | None = None  # a fast start's feed-forward picture, where it was cancelled before iterating
    version: int = 0  # bumped on every change, so an event stream knows when to send
    # Set by a web handler's thread, read by the worker's: an Event, so each look is a fresh read.
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    painting: Painting | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def download_name(self) -> str:
        """With the seed and six hex digits of the settings recorded, so two runs' files differ unless their
        pictures are the same."""
        record = json.dumps(recorded_settings(self.config, self.seed), sort_keys=True, default=str)
        return download_name(self.content, self.styles, self.seed, hashlib.sha256(record.encode()).hexdigest()[:6])

    def started(self, painting: Painting, seed: int) -> None:
        """The painting is prepared: its schedule and seed are known."""
        self.seed = seed
        self.steps = painting.steps
        self.sizes, self.schedule = list(painting.sizes), list(painting.schedule)
        self.scales = len(painting.sizes)
        self.output_height, self.output_width = painting.output_shape

    def advanced(self, event: Progress, painting_seconds: float) -> None:
        """One iteration done."""
        if event.scale != self.scale or not self.losses:
            # A scale's first iteration: it includes the scale's preparation, so its rate is timed from its end.
            self.first_iteration = painting_seconds - self.painting_seconds
            self.scale_began, self.scale_iterations = painting_seconds, 0
        else:
            self.scale_iterations += 1
        self.iteration, self.steps = event.iteration, event.steps
        self.scale, self.scales = event.scale, event.scales
        self.width, self.height = event.size
        self.losses.append(event.loss)
        self.painting_seconds = painting_seconds

    def seconds_per_iteration(self) -> float | None:
        """At the current scale: as timed there after its first iteration, else that first iteration's time."""
        if not self.losses:
            return None
        if self.scale_iterations:
            return (self.painting_seconds - self.scale_began) / self.scale_iterations
        return self.first_iteration or None

    def eta(self) -> float | None:
        """Seconds left: the current scale's iterations to go at its own rate; each later scale's at that rate
        times :func:`scale_cost`, with a preparation as long as this scale's (its first iteration's extra time),
        scaled likewise."""
        per = self.seconds_per_iteration()
        if per is None or not self.schedule or self.status != "running":
            return None
        here = self.sizes[self.scale] if self.scale < len(self.sizes) else max(self.width, self.height)
        preparation = max(self.first_iteration - per, 0.0) if self.scale_iterations else 0.0
        left, before = 0.0, 0
        for index, (size, steps) in enumerate(zip(self.sizes, self.schedule)):
            if index >= self.scale:
                done = min(max(self.iteration - before, 0), steps)
                cost = scale_cost(size, here) if index > self.scale else 1.0
                left += (steps - done) * per * cost + (preparation * cost if index > self.scale else 0.0)
            before += steps
        return left


def image_info(image: StoredImage | None) -> dict[str, Any] | None:
    return None if image is None else {**image.info(), "sample": image.sample}


def finite(value: float) -> float | None:
    """``value``, or None for NaN and the infinities (which strict JSON cannot hold)."""
    return value if math.isfinite(value) else None


def job_state(job: Job, position: int, losses_from: int = 0) -> dict[str, Any]:
    """What a page needs to show a job (call with the studio's lock held): its state, its settings and
    images (to put back in the form), and the losses from index ``losses_from`` on."""
    losses_from = max(0, min(losses_from, len(job.losses)))
    eta = job.eta()
    return {
        "id": job.id,
        "status": job.status,
        "created": job.created,
        "position": position,
        "iteration": job.iteration,
        "steps": job.steps,
        "scale": job.scale,
        "scales": job.scales,
        "sizes": job.sizes,
        "schedule": job.schedule,
        "width": job.width,
        "height": job.height,
        "output_width": job.output_width,
        "output_height": job.output_height,
        "seed": job.seed,
        "seconds": round(job.seconds, 3),
        # Iterations per second at the current scale (each scale runs at its own).
        "rate": round(1 / per, 3) if (per := job.seconds_per_iteration()) else None,
        "eta": None if eta is None else round(eta, 1),
        # JSON has no NaN or Infinity (a loss that became inf ends the job): null, which the page skips.
        "loss": finite(job.losses[-1]) if job.losses else None,
        "losses_from": losses_from,
        "losses": [finite(loss) for loss in job.losses[losses_from:]],
        "preview": job.preview_version,
        "result": job.result is not None,
        "first_guess": job.first_guess is not None,
        "error": job.error,
        "version": job.version,
        "settings": recorded_settings(job.config, job.seed if job.seed is not None else job.config.seed),
        "given": job.given,
        "images": {
            "content": image_info(job.content),
            "styles": [image_info(s) for s in job.styles],
            "fine_style": image_info(job.fine_style),
            "masks": [image_info(m) for m in job.masks],
        },
    }
