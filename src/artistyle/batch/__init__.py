"""Batch painting: many contents, many styles, one journal, resumable (``artistyle batch``).

A driver of the engine, like the command line and the studio: it builds :class:`~.jobs.Job` s,
runs each through :class:`artistyle.NST` (a clip through :class:`artistyle.video.painter.VideoPainting`)
and never changes the engine; the core never imports it.

* :mod:`.jobs` -- the job list: files, folders and globs, every content with every style or in
  pairs (:func:`product_jobs`), output names (:func:`make_jobs`).
* :mod:`.jobsfile` -- CSV and JSON-lines jobs files (:func:`read_jobs_file`).
* :mod:`.journal` -- ``OUTDIR/batch.jsonl`` and the settings hash that decides what is done.
* :mod:`.run` -- :class:`Batch` (skip, paint, journal, report), the :class:`Executor` protocol and
  :class:`LocalExecutor` (one job after another in this process).
* :mod:`.pool` -- :class:`~.pool.PoolExecutor`, N worker processes on this machine (``--workers``).
* :mod:`.ray_executor` -- :class:`~.ray_executor.RayExecutor`, Ray tasks on a cluster (``--ray``).
* :mod:`.paint` -- one job painted in a worker, its picture returned for the driver to write.
* :mod:`.clips` -- video jobs: a clip painted frame by frame (resumable), then encoded.
* :mod:`.sheet` -- ``OUTDIR/index.html``, the contact sheet.

Library use::

    from artistyle import StyleConfig
    from artistyle.batch import Batch, make_jobs, product_jobs

    jobs = make_jobs(product_jobs("photos/", "paintings/"), Path("out"), StyleConfig(size=256))
    outcome = Batch(jobs, "out").run()
"""

from __future__ import annotations

from .jobs import VIDEO_SUFFIXES, Job, JobSpec, expand_inputs, make_jobs, product_jobs
from .jobsfile import read_jobs_file
from .journal import JOURNAL_NAME, Journal, settings_hash
from .run import Batch, BatchProgress, BatchResult, Executor, JobResult, LocalExecutor, Update
from .sheet import SHEET_NAME, write_contact_sheet

__all__ = [
    "JOURNAL_NAME", "SHEET_NAME", "VIDEO_SUFFIXES", "Batch", "BatchProgress", "BatchResult",
    "Executor", "Job", "JobResult", "JobSpec", "Journal", "LocalExecutor", "Update", "expand_inputs", "make_jobs",
    "product_jobs", "read_jobs_file", "settings_hash", "write_contact_sheet",
]
