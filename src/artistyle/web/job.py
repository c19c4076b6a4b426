"""One studio run (:class:`Job`) and what a page is told about it (:func:`job_state`).

A job keeps what the page needs to show it again after a reload: its images (by id,
with their names and sizes), its settings (those the page can set, with the seed
actually used), the scales and iterations of its schedule, its progress with a rate
and an estimate of the time left, and its preview and result.
"""

from __future__ import annotations

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

__all__ = ["ACTIVE", "Job", "finite", "job_state", "schedule"]

ACTIVE = ("queued", "running", "cancelling")


def schedule(config: StyleConfig, size: int) -> dict[str, Any]:
    """The scales (long edges, coarse to fine) and the iterations at each that ``config`` runs at ``size`` px.

    The very numbers the engine uses (:meth:`StyleConfig.scale_sizes`, :meth:`StyleConfig.scale_schedule`).
    """
    sizes = config.scale_sizes(size)
    steps = config.scale_schedule(len(sizes))
    return {"size": size, "sizes": sizes, "steps": steps, "total": sum(steps)}


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
    work: float = 0.0  # pixel-iterations done, for the estimate of the time left
    error: str | None = None
    losses: list[float] = field(default_factory=list)
    preview: bytes | None = None
    preview_version: int = 0
    result: bytes | None = None
    version: int = 0  # bumped on every change, so an event stream knows when to send
    # Set by a web handler's thread, read by the worker's: an Event, so each look is a fresh read.
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    painting: Painting | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def download_name(self) -> str:
        stems = [re.sub(r"[^A-Za-z0-9_-]+", "_", Path(i.name).stem)[:30] for i in (self.content, *self.styles[:2])]
        return "_".join(["artistyle", *(s for s in stems if s.strip("_"))]) + ".png"

    def started(self, painting: Painting, seed: int) -> None:
        """The painting is prepared: its schedule and seed are known."""
        self.seed = seed
        self.steps = painting.steps
        self.sizes, self.schedule = list(painting.sizes), list(painting.schedule)
        self.scales = len(painting.sizes)
        self.output_height, self.output_width = painting.output_shape

    def advanced(self, event: Progress, painting_seconds: float) -> None:
        """One iteration done."""
        self.iteration, self.steps = event.iteration, event.steps
        self.scale, self.scales = event.scale, event.scales
        self.width, self.height = event.size
        self.losses.append(event.loss)
        self.work += self.width * self.height
        self.painting_seconds = painting_seconds

    def eta(self) -> float | None:
        """Seconds left: the iterations to go, each weighted by its scale's pixels, at the speed so far."""
        if not self.work or not self.schedule or self.status != "running":
            return None
        pixels = self.width * self.height
        left, before = 0.0, 0
        for index, (size, steps) in enumerate(zip(self.sizes, self.schedule)):
            done = min(max(self.iteration - before, 0), steps)
            ratio = (size / self.sizes[self.scale]) ** 2 if index != self.scale else 1.0
            left += (steps - done) * pixels * ratio
            before += steps
        return left * self.painting_seconds / self.work


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
        "rate": round(job.iteration / job.painting_seconds, 3) if job.painting_seconds > 0 else None,
        "eta": None if eta is None else round(eta, 1),
        # JSON has no NaN or Infinity (a loss that became inf ends the job): null, which the page skips.
        "loss": finite(job.losses[-1]) if job.losses else None,
        "losses_from": losses_from,
        "losses": [finite(loss) for loss in job.losses[losses_from:]],
        "preview": job.preview_version,
        "result": job.result is not None,
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
