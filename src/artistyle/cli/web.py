"""``artistyle web``: serve the studio on this machine until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import ArtiStyleError
from .options import PROG, Parser, number, positive_int

__all__ = ["build_web_parser", "run_web"]

def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (any free port) to 65535, not {value}")
    return value


MAX_UPLOAD_MB = 10_000  # an upload is held in memory whole: 10 GB is past any machine's sense (1e308 overflowed)


def _positivenumber(text: str) -> float:
    value = number(text)
    if not 0 < value <= MAX_UPLOAD_MB:
        raise argparse.ArgumentTypeError(f"must be a number above 0 and at most {MAX_UPLOAD_MB}, not {text}")
    return value


def build_web_parser() -> argparse.ArgumentParser:
    """``artistyle web``: its own parser, so the painting command keeps its positional arguments."""
    from ..web.images import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES

    p = Parser(
        prog=f"{PROG} web",
        description="ArtiStyle studio: a web page on this machine to paint with ArtiStyle (Ctrl-C stops it).",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else lets other "
                        "machines use the studio, without a password)")
    p.add_argument("--port", type=port_number, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--max-upload-mb", type=_positivenumber, default=DEFAULT_MAX_UPLOAD_BYTES / 1e6, metavar="MB",
                   help=f"largest image file accepted (default {DEFAULT_MAX_UPLOAD_BYTES / 1e6:g} MB)")
    p.add_argument("--max-pixels", type=positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"largest image accepted, in pixels (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    return p


def run_web(argv: Sequence[str]) -> int:
    """``artistyle web``: serve the studio until Ctrl-C."""
    from PIL import Image

    from ..web import DEPENDENCIES, INSTALL_HINT

    args = build_web_parser().parse_args(argv)
    try:
        from ..web import server
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in DEPENDENCIES:
            raise
        print(f"{PROG}: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    if Image.MAX_IMAGE_PIXELS and args.max_pixels > Image.MAX_IMAGE_PIXELS:
        print(f"{PROG}: error: --max-pixels must be at most {Image.MAX_IMAGE_PIXELS:,} (Pillow's decompression-bomb "
              "limit)", file=sys.stderr)
        return 2
    if not server.is_loopback(args.host):
        print(f"{PROG}: warning: --host {args.host} is not a loopback address: anyone who can reach this machine "
              "can use the studio (there is no password)", file=sys.stderr)

    def ready(url: str) -> None:
        print(f"ArtiStyle studio: {url}  (Ctrl-C stops it)", flush=True)

    from ..memory import keep_freed_memory

    keep_freed_memory()  # faster passes for every job; the studio is a process of its own
    try:
        server.serve(args.host, args.port, ready=ready, max_upload_bytes=round(args.max_upload_mb * 1e6),
                     max_pixels=args.max_pixels, device=args.device)
    except ArtiStyleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return 0


