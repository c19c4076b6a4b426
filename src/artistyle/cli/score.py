"""``artistyle score OUTPUT CONTENT STYLE``: the offline quality panel of a painted picture.

A thin driver over :func:`artistyle.quality.score_files`: a table (metric, value, which way is better,
which ``--style-loss`` arms optimise it) or, with ``--json``, the panel as JSON on stdout. Exit status:
0 scored, 2 bad usage or input (one line: a missing file, one that is not an image), 1 a failure.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import printable
from .options import PROG, Parser, positive_int
from .report import reported

if TYPE_CHECKING:
    from ..quality import Panel

__all__ = ["build_score_parser", "format_panel", "run_score"]

EXAMPLES = f"""\
examples:
  {PROG} score out.png photo.jpg painting.jpg
  {PROG} score out.png photo.jpg painting.jpg --json > panel.json

Every number is computed from what ships (VGG-19, the fast extra's Magenta network, the pixels); nothing
is downloaded. "optimised by" names the --style-loss arms whose loss lowers that very number: compare
arms on the numbers none of them was trained on.
"""


def build_score_parser() -> argparse.ArgumentParser:
    """``artistyle score``: its own parser, like ``web``, ``video`` and ``batch``."""
    from ..quality import MAX_SCORE_SIZE

    p = Parser(prog=f"{PROG} score", description="Score a painted picture against its content and style with "
               "measures that work offline.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", metavar="OUTPUT", help="the painted picture")
    p.add_argument("content", metavar="CONTENT", help="the content image it was painted from")
    p.add_argument("style", metavar="STYLE", help="the style image it was painted with")
    p.add_argument("--json", action="store_true", help="print the panel as JSON instead of a table")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--size", type=positive_int, default=MAX_SCORE_SIZE, metavar="PX",
                   help=f"score at the output's size, its long edge shrunk to at most PX (default {MAX_SCORE_SIZE}; "
                        "at least 32)")
    return p


def format_panel(panel: Panel) -> str:
    """The panel as a table, one metric a line, then the skipped measures and the notes."""
    rows = [(m.group, m.label, f"{m.value:.4g}", m.better, m.optimised_note) for m in panel]
    heads = ("", "metric", "value", "better", "optimised by")
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(4)]
    lines = [f"scored at {panel.size[0]} x {panel.size[1]} px on {panel.device}", ""]
    for group, label, value, better, note in [heads, *rows]:
        lines.append(f"{group:<{widths[0]}}  {label:<{widths[1]}}  {value:>{widths[2]}}  {better:<{widths[3]}}  {note}")
    lines += [f"skipped: {line}" for line in panel.skipped]
    lines += [f"note: {line}" for line in panel.notes]
    return "\n".join(lines)


def run_score(argv: Sequence[str]) -> int:
    """``artistyle score``: score and print; bad input is one line and exit status 2."""
    args = build_score_parser().parse_args(argv)

    def score() -> int:
        from ..quality import score_files

        panel = score_files(args.output, args.content, args.style, device=args.device, size=args.size)
        if args.json:
            print(json.dumps(panel.as_dict(), indent=2))
        else:
            for line in format_panel(panel).splitlines():
                print(printable(line))  # a skipped measure's note may quote a file name
        return 0

    return reported(score)
