"""Terminal progress bars for the CLI: a painting's (iteration, loss, seconds per iteration, ETA) and a batch's."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import printable
from ..transfer import Progress as Event

if TYPE_CHECKING:
    from ..batch import BatchProgress
    from ..tile_workers import TileWorkerPool
    from ..video.painter import VideoProgress


def loss_bar(enabled: bool, *, count: bool) -> Progress:
    """A rich bar on stderr: description, bar, [done/total,] loss, rate, elapsed and ETA."""
    counted = [MofNCompleteColumn()] if count else []
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), *counted, TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=Console(file=sys.stderr), disable=not enabled,
    )


B = TypeVar("B", bound="RichBar")


class RichBar:
    """A rich bar shown while its ``with`` block runs."""

    _bar: Progress

    def __enter__(self: B) -> B:
        self._bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._bar.stop()


class ProgressBar(RichBar):
    """Shows a :class:`artistyle.Progress` stream on stderr; does nothing when disabled."""

    def __init__(self, steps: int, enabled: bool = True, workers: TileWorkerPool | None = None):
        self.enabled = enabled
        self.workers = workers
        self._bar = loss_bar(enabled, count=True)
        self._task = self._bar.add_task("painting", total=steps, loss="-", rate="- s/it")

    def update(self, event: Event) -> None:
        where = f"painting {event.size[0]}x{event.size[1]}"
        if event.scales > 1:
            where += f" (scale {event.scale + 1}/{event.scales})"
        if self.workers is not None and self.workers.times.passes:
            where += f" on {self.workers.describe()}"
        self._bar.update(
            self._task,
            description=where,
            completed=event.iteration,
            loss=f"{event.loss:.4g}",
            rate=f"{event.seconds_per_iteration:.2f} s/it",
        )


class BatchBar(RichBar):
    """A batch's progress on stderr: jobs painted of those to paint, counts, the running job, ETA."""

    def __init__(self, enabled: bool = True):
        self._bar = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            TextColumn("{task.fields[jobs]}"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA {task.fields[eta]}"),
            console=Console(file=sys.stderr),
            disable=not enabled,
        )
        self._task = self._bar.add_task("batch", total=None, jobs="", counts="", eta="-")

    def update(self, progress: BatchProgress) -> None:
        counts = f"{progress.ok} ok, {progress.failed} failed, {progress.skipped} skipped"
        if progress.running:  # names as text: '[red]' in a file name is no markup, an escape sequence is escaped
            counts += f", running {escape(printable(', '.join(progress.running)))}"
        eta = "-" if progress.eta is None else f"{int(progress.eta) // 60}:{int(progress.eta) % 60:02d}"
        finished = progress.ok + progress.failed + progress.skipped
        self._bar.update(self._task, total=max(progress.to_run, 1), completed=progress.done, counts=counts, eta=eta,
                         jobs=f"{finished}/{progress.total} jobs")


class VideoBar(RichBar):
    """A clip's progress on stderr: the frame being painted, iterations of the whole clip, loss, ETA."""

    def __init__(self, total: int, enabled: bool = True):
        self._bar = loss_bar(enabled, count=False)
        self._task = self._bar.add_task("video", total=total, loss="-", rate="")

    def update(self, event: VideoProgress) -> None:
        state = "done" if event.done else f"{event.progress.iteration if event.progress else 0} it"
        description = f"frame {event.frame + 1}/{event.frames} ({state})"
        if event.progress is None:
            self._bar.update(self._task, description=description, completed=event.iterations)
            return
        self._bar.update(self._task, description=description, completed=event.iterations,
                         loss=f"{event.progress.loss:.4g}", rate=f"{event.progress.seconds_per_iteration:.2f} s/it")
