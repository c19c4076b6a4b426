"""``artistyle batch CONTENTS STYLES -o OUTDIR``: paint many jobs, resumable, with a journal and a contact sheet.

Every painting option applies to every job (the options are generated from StyleConfig, as for the
painting command); a video among the contents is a video job (:mod:`artistyle.batch.clips`), its
``--steps`` the first frame's. Exit status: 0 when every job is ok or skipped, 1 when any failed, 2
for bad usage or input (one line), 130 / 143 / 129 when Ctrl-C, SIGTERM or SIGHUP stopped the batch:
the running job ends after its current iteration and is recorded as failed ("interrupted"), its
partial picture is not written, finished outputs (and a clip's finished frames) stay, and the next
run goes on from there.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ..batch.run import failure
from ..errors import ArtiStyleError, UsageError, printable
from ..video.settings import LATER_STEPS
from .options import PROG, Parser, add_settings, config_from_args, positive_int, ray_flag
from .report import say
from .signals import handled_by, stop_exception, stopped_by

if TYPE_CHECKING:
    from ..batch import Batch, BatchResult, Executor

__all__ = ["build_batch_parser", "run_batch"]

EXAMPLES = f"""\
examples:
  {PROG} batch photos/ paintings/ -o out/          every photo with every painting
  {PROG} batch 'photos/*.jpg' wave.jpg -o out/     a quoted glob: every match with one style
  {PROG} batch photos/ paintings/ -o out/ --zip    the first photo with the first painting, ...
  {PROG} batch --jobs jobs.csv -o out/ --size 256  one job per row (content,style,output,size,...)
  {PROG} batch photos/ paintings/ -o out/ --workers 2   two jobs at once on this machine
  {PROG} batch photos/ paintings/ -o out/ --ray auto    on the Ray cluster started with `ray start`
  {PROG} batch clips/ wave.jpg -o out/ --steps 300      every clip painted as a video (needs the video extra)

Outputs are OUTDIR/<content>__<style>.png (a clip's: its own video extension, else .mp4);
OUTDIR/batch.jsonl records every job and OUTDIR/index.html shows them all. Run the same command
again to finish a stopped batch: jobs whose output exists with the same settings are skipped
(--force redoes them), and a stopped clip goes on from its last finished frame.
"""


def build_batch_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=f"{PROG} batch",
        description="Paint many photos with many styles: resumable, one journal line per job, a contact sheet.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("contents", nargs="?", metavar="CONTENTS", help="a photo or video, a folder of them or a "
                   f"quoted glob (a video is painted as a clip: --steps for its first frame, {LATER_STEPS} for each "
                   "later one)")
    p.add_argument("styles", nargs="?", metavar="STYLES", help="a style image, a folder of them or a quoted glob")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="the folder for the outputs (made if "
                   "missing), the journal batch.jsonl and the contact sheet index.html")
    g = p.add_argument_group("batch")
    g.add_argument("--zip", action="store_true", help="pair CONTENTS and STYLES in order instead of every "
                   "content with every style")
    g.add_argument("--jobs", metavar="FILE", help="a CSV or JSON-lines file, one job per row: content, style or "
                   "styles (';'-separated), output, and any setting by name (see the README)")
    g.add_argument("--force", action="store_true", help="paint every job, even those already done")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    x = p.add_argument_group("where the jobs run")
    x.add_argument("--workers", type=positive_int, default=1, metavar="N", help="paint N jobs at once on this "
                   "machine, each in a worker process with CPUs/N threads (one per GPU where there are several; "
                   "default 1: one after another in this process)")
    x.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run the jobs on Ray: with no ADDRESS a "
                   "Ray started on this machine (or RAY_ADDRESS), with HOST:PORT or auto the cluster there; inputs "
                   "are sent to the workers, outputs come back to OUTDIR here")
    x.add_argument("--cpus-per-job", type=positive_float, metavar="N", help="with --ray: CPUs (torch threads) "
                   "each job asks for (default 1)")
    x.add_argument("--gpus-per-job", type=fraction, metavar="G", help="with --ray: GPUs each job asks for, "
                   "fractions share one (default 1 on a cluster with GPUs, else 0)")
    add_settings(p)
    return p


def positive_float(text: str) -> float:
    value = fraction(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a number from 0, not {text}")
    return value


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_batch_parser()
    args, extra = parser.parse_known_args(ray_flag(argv))
    if extra:
        if not any(e.startswith("-") for e in extra):
            parser.error(f"too many arguments ({len(extra) + 2} files): CONTENTS and STYLES are one file, folder or "
                         "glob each; quote a glob so the shell leaves it alone: 'photos/*.jpg'")
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.jobs and (args.contents or args.styles):
        parser.error("give CONTENTS and STYLES, or --jobs FILE, not both")
    if not args.jobs and not (args.contents and args.styles):
        parser.error("CONTENTS and STYLES are needed (or --jobs FILE)")
    if args.jobs and args.zip:
        parser.error("--zip pairs CONTENTS with STYLES; a jobs file pairs its rows itself")
    if args.ray is None and (args.cpus_per_job is not None or args.gpus_per_job is not None):
        parser.error("--cpus-per-job and --gpus-per-job are for --ray")
    if args.ray is not None and args.workers > 1:
        parser.error("--workers runs jobs on this machine, --ray on Ray's workers: give one of them")
    if args.tile_workers and (args.workers > 1 or args.ray is not None):
        parser.error("--tile-workers spreads one picture over processes here, one job after another; --workers and "
                     "--ray run several jobs at once instead: give one of them")
    return args


def run_batch(argv: Sequence[str]) -> int:
    """``artistyle batch``: returns the exit status."""
    args = parse(argv)
    batch = None
    try:
        batch = prepared(args)
        from ..memory import keep_freed_memory

        keep_freed_memory()
        return paint_all(batch, quiet=args.quiet)
    except ArtiStyleError as exc:  # bad input, or OUTDIR failing under the batch (a full disk, a removed folder)
        say(f"{PROG}: error: {exc}")
        return exc.exit_code
    except Exception as exc:  # a bug: still one line, unless debugging (each job's own failures never get here)
        if os.environ.get("ARTISTYLE_DEBUG"):
            raise
        say(f"{PROG}: error: {failure(exc)} (set ARTISTYLE_DEBUG=1 for details)")
        return 1
    finally:
        close = getattr(batch.executor if batch is not None else None, "close", None)
        if close is not None:
            close()  # leave Ray (and end the local one)


def prepared(args: argparse.Namespace) -> Batch:
    """The batch of the arguments, every input and setting checked (UsageError otherwise)."""
    from ..batch import Batch, make_jobs, product_jobs, read_jobs_file
    from ..batch.journal import earlier_outputs
    from ..devices import resolve_device

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"OUTDIR '{outdir}' is a file; give a folder")
    config = config_from_args(args)
    if args.jobs:
        specs = read_jobs_file(args.jobs)
    else:  # an earlier run's outputs in OUTDIR are no contents, when OUTDIR is (or holds) the contents folder
        specs = product_jobs(args.contents, args.styles, pairs=args.zip, exclude=earlier_outputs(outdir))
    executor: Executor | None = None
    if args.ray is not None:  # the device is the workers': the driver may have no GPU
        executor, device_type = ray_executor(args, config.device)
    else:
        device_type = resolve_device(config.device).type
        if args.workers > 1:
            from ..batch.pool import PoolExecutor

            executor = PoolExecutor(args.workers)
    try:
        jobs = make_jobs(specs, outdir, config, device_type)
    except BaseException:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
        raise
    return Batch(jobs, outdir, executor=executor, force=args.force)


def ray_executor(args: argparse.Namespace, device: str) -> tuple[Executor, str]:
    """The Ray executor, joined to its cluster (UsageError: Ray missing or unreachable), and the jobs' device type."""
    from ..batch.ray_executor import RayExecutor

    device = device.strip().lower()
    gpus = args.gpus_per_job
    if device == "cpu" and gpus:
        raise UsageError("--gpus-per-job asks for GPUs, but --device cpu paints on CPUs")
    if gpus is None and device != "auto":
        gpus = 1.0 if device.startswith("cuda") else 0.0
    executor = RayExecutor(args.ray or None, cpus_per_job=args.cpus_per_job, gpus_per_job=gpus)
    executor.connect()
    try:
        cpus, gpus = executor.resources()
        if gpus > 0 and executor.total("GPU") == 0:
            raise UsageError("the jobs ask Ray for GPUs, but the Ray cluster has none; use --device cpu")
        # A task no node can hold waits forever (Ray calls it infeasible): refused now, with the numbers.
        for what, wanted, flag in (("CPU", cpus, "--cpus-per-job"), ("GPU", gpus, "--gpus-per-job")):
            if wanted > executor.total(what):
                raise UsageError(f"each job asks Ray for {wanted:g} {what}s ({flag}), but the Ray cluster has "
                                 f"{executor.total(what):g}; ask for at most that")
    except BaseException:
        executor.close()
        raise
    return executor, "cuda" if gpus > 0 else "cpu"


@contextmanager
def stopping(batch: Batch, arrived: list[int]) -> Iterator[None]:
    """The first Ctrl-C / SIGTERM / SIGHUP stops the batch cleanly; a second one stops the process at once."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if arrived:
            raise stop_exception(signum)
        arrived.append(signum)
        batch.stop(stopped_by(stop_exception(signum)))

    with handled_by(stop):
        yield


def paint_all(batch: Batch, *, quiet: bool) -> int:
    from ..batch import write_contact_sheet
    from .progress import BatchBar

    arrived: list[int] = []
    with stopping(batch, arrived):
        journal = batch.prepare()
        if journal.damaged and not quiet:
            say(f"{PROG}: note: {journal.damaged} damaged line(s) in {journal.path} ignored (a killed run)")
        with BatchBar(enabled=not quiet) as bar:
            outcome = batch.run(bar.update, journal)
        sheet = write_contact_sheet(batch.outdir, outcome)
    if not quiet:
        summarize(outcome, sheet, journal.path)
    if arrived:
        signum = arrived[0]
        what = stopped_by(stop_exception(signum))
        say(f"{PROG}: {what}; {outcome.count('ok')} job(s) done, {outcome.not_run} not started; run the same "
            "command again to finish")
        return 128 + signum
    return 1 if outcome.failed else 0


def summarize(outcome: BatchResult, sheet: Path, journal: Path) -> None:
    """The summary table on stderr: counts, then each failed job with its reason."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=sys.stderr)
    counts = Table(title="batch", show_header=True)
    for column in ("ok", "skipped", "failed", "not run"):
        counts.add_column(column, justify="right")
    counts.add_row(*(str(outcome.count(s)) for s in ("ok", "skipped", "failed")), str(outcome.not_run))
    console.print(counts)
    if outcome.failed:
        failed = Table(title="failed jobs", show_header=True)
        failed.add_column("job")
        failed.add_column("reason")
        for result in outcome.failed:  # as Text: a '[/x]' in a name or path is no markup
            failed.add_row(Text(printable(result.job.name)), Text(printable(result.error or "")))
        console.print(failed)
    console.print(Text(printable(f"contact sheet: {sheet}") + "\n" + printable(f"journal: {journal}")), highlight=False,
                  soft_wrap=True)

