"""docs/gallery.md: every control has a picture made by the tool, with a command that still parses."""

from __future__ import annotations

import re
import shlex

from artistyle.cli import build_parser

from .conftest import REPO

GALLERY = REPO / "docs" / "gallery.md"
CONTROLS = ("--style-blend", "--preserve-color", "--original-colors", "--mask", "--fine-style", "--style-scale",
            "--optimizer", "--padding")


def _commands() -> list[list[str]]:
    return [shlex.split(c) for c in re.findall(r"```\n(artistyle .*?)\n```", GALLERY.read_text())]


def test_every_control_has_a_picture_and_a_command_that_parses() -> None:
    commands = _commands()
    assert len(commands) >= len(CONTROLS)
    seen = set()
    for argv in commands:
        args = build_parser().parse_args(argv[1:])  # exits (fails the test) on a stale flag
        picture = REPO / args.output
        assert picture.is_file(), picture
        assert picture.stat().st_size < 200_000, picture
        for path in [args.content, *args.style, *(args.masks or []), args.fine_style]:
            assert path is None or (REPO / path).is_file(), path
        seen.update(a for a in argv if a.startswith("--"))
    assert set(CONTROLS) <= seen
