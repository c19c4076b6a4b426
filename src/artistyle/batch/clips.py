"""Video jobs: a job whose content is a clip (:attr:`~.jobs.Job.is_video`), painted with
:class:`~artistyle.video.painter.VideoPainting`.

The job's config paints the first frame like an image (its ``steps`` over its scales, as
``artistyle video --first-steps``, or a fast start's schedule); every later frame gets the default
iterations of :class:`~artistyle.video.settings.VideoSettings` (as ``artistyle video``), from the
previous result warped to it and held there by the config's ``temporal_weight``. A job's fraction
done is the clip's iterations so far over its total, so the batch's bar and ETA treat a clip like
any other job.

On this machine (the local executor and ``--workers``) the finished frames go to a hidden work
folder in OUTDIR, ``.<output name>.frames`` (:func:`work_folder`), which VideoPainting resumes from:
a batch stopped by Ctrl-C or killed, run again, continues the clip after its last finished frame.
The folder is the batch's own, so frames painted there with other settings (the command changed
between the runs) are replaced rather than refused. It is removed once the video is written, and
after a failed or stopped job that left no finished frame in it (nothing to resume). On Ray the
worker paints in its private temporary folder and sends the encoded video back as bytes: a retry
after a lost node starts the clip from its first frame.

The video extra (PyAV, OpenCV) is asked for when a video job starts, so without it each video job
fails with the one-line install hint and the image jobs run. The video package is imported lazily:
importing the batch package needs neither PyAV nor OpenCV.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .jobs import Job

if TYPE_CHECKING:
    import numpy as np

    from ..video.painter import VideoPainting

__all__ = ["ClipPainting", "discard", "first_frame", "tidy", "work_folder"]


def work_folder(output: Path) -> Path:
    """Where a video job's finished frames wait on this machine: ``OUTDIR/.<output name>.frames``."""
    return output.with_name(f".{output.name}.frames")


def tidy(work: Path) -> None:
    """After a failed or stopped job: remove the work folder when it holds no finished frame (nothing to resume)."""
    if work.is_dir() and not any(work.glob("*.png")):
        shutil.rmtree(work, ignore_errors=True)


def discard(work: Path) -> None:
    """Once the video is written: its frames are done with."""
    shutil.rmtree(work, ignore_errors=True)


class ClipPainting:
    """A video job's painting: iterate for the fraction done; :meth:`stop` ends after the current iteration.

    ``work``: the folder of finished frames (resumed from). ``device`` overrides the job's (a pool
    worker's own GPU). ``check_output``: refuse an unwritable output, or one that is an input, before
    any work (not on a Ray worker, whose output is the driver's). Raises for the job's own failures:
    the video extra missing, a corrupt clip, a style that cannot be read, the clip too large.
    """

    def __init__(self, job: Job, work: Path, *, device: str | None = None, check_output: bool = True) -> None:
        from ..video.extra import require_video

        require_video()  # before importing PyAV or OpenCV: one line saying what to install
        from ..images import load_image
        from ..nst import NST
        from ..video.encode import check_video_output
        from ..video.frames import open_frames
        from ..video.painter import VideoPainting

        self.work = work
        config = job.config if device is None else dataclasses.replace(job.config, device=device)
        source = open_frames(job.content)
        styles = [load_image(s, role="style image") for s in job.styles]
        if check_output:
            for given in (job.content, *job.styles):
                check_video_output(job.output, given)
        nst = NST(config)  # the weights come from load_weights' per-process cache
        self.device = str(nst.device)
        try:
            # The first frame with the job's settings, the later ones as `artistyle video` paints them.
            self.painting: VideoPainting = VideoPainting(nst, source, styles, work, private=True)
            self.painting.check()  # a clip too large for the memory budget fails now
        except BaseException:
            tidy(work)
            raise
        self.seed = self.painting.seed  # a resumed clip keeps the seed its first frames were painted with
        self.frames = len(source)

    def __iter__(self) -> Iterator[float]:
        """The fraction of the clip done after every iteration (finished frames count at once, when resumed)."""
        for event in self.painting:
            yield event.iterations / max(event.total_iterations, 1)

    def stop(self) -> None:
        """End after the current iteration; the frame being painted is not written, the finished ones stay."""
        self.painting.stop()

    def encode(self, output: Path) -> Path:
        """Encode the finished frames as ``output`` (atomically, with the clip's sound); returns its path."""
        return self.painting.encode(output).path


def first_frame(path: Path) -> tuple[np.ndarray, int] | None:
    """A clip's first frame (float H x W x 3 in [0, 1], as images load) and its frame count, or None when it
    cannot be read here (the video extra missing, a corrupt file): for the contact sheet's thumbnails."""
    from ..video.extra import missing_dependencies

    if missing_dependencies():
        return None
    from ..video.frames import open_frames

    try:
        source = open_frames(path)
        frame = next(iter(source.frames(0)))
    except Exception:  # a thumbnail is a courtesy: whatever FFmpeg makes of the file, the sheet is written
        return None
    return frame.rgb.astype("float32") / 255.0, len(source)
