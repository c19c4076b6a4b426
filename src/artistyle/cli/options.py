"""The painting command's options: generated from :class:`~artistyle.config.StyleConfig`'s fields.

Only the options that are not settings of a run (output, checkpoints, reporting) are written here;
every setting's option, type, default and help come from the field's metadata, so a new setting
appears on the command line by itself.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, NoReturn

from ..config import Setting, StyleConfig
from ..errors import UsageError, printable
from ..version import __version__

__all__ = ["EXAMPLES", "PROG", "Parser", "add_settings", "build_parser", "config_from_args", "given_settings", "number",
           "positive_int"]

PROG = "artistyle"

EXAMPLES = f"""\
examples:
  {PROG} photo.jpg painting.jpg                 writes photo_painting.png here
  {PROG} photo.jpg painting.jpg -o out.jpg --size 768 --style-weight 3e-3
  {PROG} photo.jpg painting.jpg --init content --steps 150 --seed 7 --json
  {PROG} web                                    the studio: a web page on this machine (see {PROG} web --help)
  {PROG} batch photos/ paintings/ -o out/       every photo with every painting (see {PROG} batch --help)
  {PROG} score out.png photo.jpg painting.jpg   the offline quality panel of a picture (see {PROG} score --help)

One iteration is one L-BFGS step with exactly one evaluation of the network
(forward + backward), as in Gatys et al.; --steps counts those evaluations.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: every error of the command is one line.
        self.exit(2, printable(f"{PROG}: error: {message} (see {self.prog} --help)") + "\n")


def csv_of(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        if kind in (integer, positive_int) and not all(t.lstrip("+-").isdigit() for t in items):
            raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, not '{text}'")
        try:
            return tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid list '{text}'") from None

    parse.__name__ = f"list of {getattr(kind, '__name__', 'values')}"
    return parse


def or_off(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """``kind``, or None for the word ``off`` (a setting whose None turns its feature off)."""
    def parse(text: str) -> Any:
        return None if text.strip().lower() == "off" else kind(text)

    parse.__name__ = getattr(kind, "__name__", "value")
    return parse


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer '{text}'") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number '{text}'") from None


def memory_size(text: str) -> int:
    from ..memory import parse_bytes

    try:
        return parse_bytes(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_setting(group: argparse._ArgumentGroup, setting: Setting) -> None:
    """The option of one StyleConfig field, from its metadata; its default is the field's."""
    options: dict[str, Any] = {"dest": setting.name, "default": setting.default,
                               "help": setting.help_text.replace("%", "%%")}
    if setting.kind is bool:
        group.add_argument(setting.option, action="store_true", **options)
        return
    numbers: dict[type, Callable[[str], Any]] = {int: positive_int if setting.positive else integer, float: number}
    parse = numbers.get(setting.kind, str)
    if setting.units == "bytes":
        parse = memory_size
    if setting.variadic:
        options["nargs"] = "+"
    elif setting.many:
        parse = csv_of(parse)
    if setting.off:
        parse = or_off(parse)
    if setting.choices and not setting.path:  # a path setting takes its names or a file: checked in config_from_args
        options["choices"] = setting.choices
    group.add_argument(setting.option, type=parse, metavar=setting.metavar, **options)


def add_settings(
    parser: argparse.ArgumentParser, settings: Sequence[Setting] | None = None, *, exclude: Collection[str] = ()
) -> None:
    """Every setting of a run (``settings``, default StyleConfig's) as an option, grouped and ordered as the
    fields; ``exclude``: names another schema of the same command gives (the video's ``steps``)."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in StyleConfig.settings() if settings is None else settings:
        if setting.name in exclude:
            continue
        if setting.group not in groups:
            groups[setting.group] = parser.add_argument_group(setting.group)
        add_setting(groups[setting.group], setting)


def ray_flag(argv: Sequence[str]) -> list[str]:
    """``--ray`` followed by what is not an address (a positional CONTENTS) means a local Ray: ``--ray=``."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        after = out[i + 1]
        if arg == "--ray" and (after.startswith("-") or (after != "auto" and ":" not in after)):
            out[i] = "--ray="
    return out


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description="Paint a photo in the style of an artwork (Gatys, Ecker & Bethge, 2016).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("content", nargs="?", help="the photo to paint")
    p.add_argument("style", nargs="*",
                   help="the artwork(s) whose style to use: one or more images, or a folder of them")
    p.add_argument("-o", "--output", help="output image (.png .jpg .webp .tif); default CONTENT_STYLE.png here")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    p.add_argument("--list-layers", action="store_true", help="print the VGG-19 layer names and exit")
    p.add_argument("--info", metavar="FILE",
                   help="print the settings and seed recorded in a PNG painted by artistyle (JSON) and exit")

    add_settings(p)

    g = p.add_argument_group("tile workers on Ray")
    g.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                   help="run the --tile-workers as Ray actors: with no ADDRESS a Ray started on this machine (or "
                        "RAY_ADDRESS), with HOST:PORT or auto the cluster there")
    g.add_argument("--cpus-per-worker", type=positive_int, default=1, metavar="N",
                   help="with --ray: CPUs (torch threads) each tile worker asks for (default 1)")

    g = p.add_argument_group("memory plan")
    g.add_argument("--plan", action="store_true",
                   help="print what each scale would need in memory (each process: the driver and the busiest tile "
                        "worker with --tile-workers) against --max-memory, and exit without painting (0: it fits)")

    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint", metavar="PATH", help="save the run's state here every --checkpoint-every iterations")
    g.add_argument("--checkpoint-every", type=positive_int, default=25, metavar="N", help="(default 25)")
    g.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this checkpoint (its settings, seed and images; "
                        "CONTENT and STYLE may be left out)")

    g = p.add_argument_group("output")
    g.add_argument("--save-every", type=positive_int, metavar="N",
                   help="also save the image every N iterations as OUTPUT_iterNNNN.EXT")
    g.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for 16-bit TIFF output")
    g.add_argument("--manifest", action="store_true",
                   help="also write OUTPUT.json: every setting, seed, versions, weights SHA-256, device, "
                        "per-iteration losses and timings")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g.add_argument("--json", action="store_true", help="print one JSON line with the results at the end")
    return p


def given_settings(
    args: argparse.Namespace, settings: Sequence[Setting] | None = None, *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """The settings (``settings``, default StyleConfig's, less ``exclude``) given on the command line (not at
    their default), as the schema holds them."""
    given = {}
    for setting in StyleConfig.settings() if settings is None else settings:
        if setting.name in exclude:
            continue
        value = getattr(args, setting.name)
        if isinstance(value, list):  # nargs="+": one value for all styles, or a tuple
            value = value[0] if setting.one_or_many and len(value) == 1 else tuple(value)
        if value != setting.default:
            if setting.path and setting.choices and value not in setting.choices and not Path(value).exists():
                raise UsageError(f"{setting.option} must be {', '.join(setting.choices)} or an image file; "
                                 f"'{value}' is none of these")
            given[setting.name] = value
    return given


def config_from_args(args: argparse.Namespace, *, exclude: Collection[str] = ()) -> StyleConfig:
    """The validated config of the settings given on the command line; the library resolves the rest
    (:meth:`StyleConfig.resolved`: the default steps, or the fast start's schedule). ``exclude``: as in
    :func:`add_settings`."""
    return StyleConfig(**given_settings(args, exclude=exclude)).validate()
