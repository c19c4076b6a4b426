"""``artistyle video INPUT STYLE [STYLE ...] -o OUTPUT``: paint a clip with temporal consistency.

Every finished frame is written at once to a work folder (the output folder itself, or
``OUTPUT.frames`` beside a video output); running the same command again continues after the last
finished frame. Exit status: 0 done, 1 the run failed, 2 bad usage or input (one line), 130 / 143 /
129 when Ctrl-C, SIGTERM or SIGHUP stopped it (the finished frames stay for the next run).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..video.settings import VideoSettings
from .options import PROG, Parser, add_settings, config_from_args, given_settings, positive_int
from .report import say
from .signals import exit_status, raise_if_stopped, stopped_by

if TYPE_CHECKING:
    from ..video.painter import VideoPainting

__all__ = ["build_video_parser", "run_video"]

EXAMPLES = f"""\
examples:
  {PROG} video clip.mp4 starry_night.jpg -o painted.mp4
  {PROG} video clip.mov wave.jpg -o painted.webm --size 448 --start 2 --end 6
  {PROG} video frames/ scream.jpg -o painted/                 a folder of frames in, one PNG per frame out

The first frame is painted like an image (--first-steps iterations, from noise); every later frame
starts from the previous result warped along the optical flow (--steps iterations), and the
temporal loss (--temporal-weight) keeps the brush strokes on the moving scene. Finished frames go
to OUTPUT.frames/ (or the output folder) at once: run the same command again to continue.
"""


def build_video_parser() -> argparse.ArgumentParser:
    p = Parser(prog=f"{PROG} video", description="Paint a video clip in the style of an artwork, without "
               "flicker (Ruder, Dosovitskiy & Brox, 2016).", epilog=EXAMPLES,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="a video file (mp4, mov, mkv, webm, avi, gif, ...) or a folder "
                   "of frame images (taken in natural name order)")
    p.add_argument("style", nargs="+", metavar="STYLE", help="the artwork(s) whose style to use")
    p.add_argument("-o", "--output", required=True, help="a video (.mp4 .webm .mov .gif) or a folder (one PNG per "
                   "frame, named after the input frames)")
    add_settings(p, VideoSettings.settings())  # --first-steps, --steps (the later frames'), --flow, ...
    g = p.add_argument_group("clip")
    g.add_argument("--start", type=float, default=None, metavar="SECONDS", help="paint from this time on")
    g.add_argument("--end", type=float, default=None, metavar="SECONDS", help="paint up to this time")
    g.add_argument("--every", type=positive_int, default=1, metavar="N", help="paint every N-th frame (the rate "
                   "drops N times)")
    g.add_argument("--fps", type=float, default=None, help="frame rate of a folder input (default 25)")
    g.add_argument("--restart", action="store_true", help="paint every frame again, discarding finished ones")
    g.add_argument("--keep-frames", action="store_true", help="keep OUTPUT.frames/ after a video is encoded")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g.add_argument("--json", action="store_true", help="one JSON line at the end: output, frames, seconds, ...")
    add_settings(p, exclude={"steps"})  # the image command's --steps is the video's (the later frames') here
    return p


def run_video(argv: Sequence[str]) -> int:
    """``artistyle video``: returns the exit status."""
    from ..video.extra import require_video
    from .report import reported

    args = build_video_parser().parse_args(argv)

    def run() -> int:
        require_video()
        return paint_clip(args)

    return reported(run)


def work_folder(output: Path) -> Path:
    """Where finished frames go: the output folder itself, or ``OUTPUT.frames`` beside a video."""
    from ..video.encode import is_folder_output

    return output if is_folder_output(output) else output.with_name(output.name + ".frames")


def paint_clip(args: argparse.Namespace) -> int:
    from fractions import Fraction

    from ..images import load_image
    from ..memory import keep_freed_memory
    from ..nst import NST
    from ..video.encode import check_video_output, is_folder_output
    from ..video.frames import MAX_FPS, MIN_FPS, open_frames
    from ..video.painter import VideoPainting

    output = Path(args.output)
    # Only what the user gave: the library resolves the first frame's schedule (a fast start's, or 300
    # iterations) and the later frames' settings (VideoPainting).
    config = config_from_args(args, exclude={"steps"})
    settings = VideoSettings(**given_settings(args, VideoSettings.settings()))
    if args.fps is not None and not (math.isfinite(args.fps) and MIN_FPS <= args.fps <= MAX_FPS):
        raise UsageError(f"--fps must be a frame rate from {float(MIN_FPS):g} to {MAX_FPS}, not {args.fps:g}")
    fps = Fraction(args.fps).limit_denominator(1001) if args.fps is not None else None
    source = open_frames(args.input, start=args.start, end=args.end, every=args.every, fps=fps)
    styles = [load_image(path, role="style image") for path in args.style]
    check_video_output(output, args.input)
    for style in args.style:
        check_video_output(output, style)
    keep_freed_memory()
    nst = NST(config)
    painting = VideoPainting(nst, source, styles, work_folder(output), settings, restart=args.restart)
    painting.check()  # a clip too large for --max-memory, or too elongated, fails now
    started = time.perf_counter()
    stop = watch(painting, quiet=args.quiet)
    if stop is not None:
        say(f"{PROG}: {stopped_by(stop)} at frame {painting.finished + 1} of {len(source)}; {painting.finished} "
            f"finished frame(s) kept in {painting.work}; run the same command again to continue")
        return exit_status(stop)
    notes: tuple[str, ...] = ()
    if not is_folder_output(output):
        encoded = painting.encode(output)
        notes = encoded.notes
        if not args.keep_frames:
            shutil.rmtree(painting.work, ignore_errors=True)
    seconds = time.perf_counter() - started
    if not args.quiet:
        for note in notes:
            say(f"{PROG}: note: {note}")
        say(f"saved {output} ({len(source)} frames at {float(source.fps):.3g} fps, {seconds:.1f} s, seed "
            f"{painting.seed})")
    if args.json:
        print(json.dumps({"output": str(output), "frames": len(source), "fps": str(source.fps),
                          "seconds": round(seconds, 3), "seed": painting.seed,
                          "first_steps": painting.first_nst.config.steps,
                          "first_frame_iterations": painting.first_frame_steps, "steps": settings.steps,
                          "notes": list(notes)}))
    return 0


def watch(painting: VideoPainting, *, quiet: bool) -> KeyboardInterrupt | None:
    """Run the clip with a progress bar; the interrupt that stopped it, or None when every frame is done."""
    from .progress import VideoBar

    try:
        with VideoBar(painting.total_iterations, enabled=not quiet) as bar:
            for event in painting:
                raise_if_stopped()
                bar.update(event)
    except KeyboardInterrupt as exc:
        painting.stop()
        return exc
    return None
