"""The ``artistyle`` command: a thin layer over :class:`artistyle.NST`.

Exit status: 0 done, 1 the run failed, 2 bad usage or input, 130 interrupted
(Ctrl-C; the image so far is saved). Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .config import INITS, Setting, StyleConfig
from .errors import ArtiStyleError, UsageError

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

PROG = "artistyle"

EXAMPLES = f"""\
examples:
  {PROG} photo.jpg painting.jpg                 writes photo_painting.png here
  {PROG} photo.jpg painting.jpg -o out.jpg --size 768 --style-weight 3e-3
  {PROG} photo.jpg painting.jpg --init content --steps 150 --seed 7 --json
  {PROG} web                                    the studio: a web page on this machine (see {PROG} web --help)

One iteration is one L-BFGS step with exactly one evaluation of the network
(forward + backward), as in Gatys et al.; --steps counts those evaluations.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: every error of the command is one line.
        self.exit(2, f"{PROG}: error: {message} (see {PROG} --help)\n")


def _csv(kind: Callable[[str], Any]) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            return tuple(kind(t) for t in items)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid list '{text}'") from None

    parse.__name__ = f"list of {getattr(kind, '__name__', 'values')}"
    return parse


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer '{text}'") from None


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number '{text}'") from None


def _memory(text: str) -> int:
    from .memory import parse_bytes

    try:
        return parse_bytes(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_setting(group: argparse._ArgumentGroup, setting: Setting) -> None:
    """The option of one StyleConfig field, from its metadata; its default is the field's."""
    options: dict[str, Any] = {"dest": setting.name, "default": setting.default,
                               "help": setting.help_text.replace("%", "%%")}
    if setting.kind is bool:
        group.add_argument(setting.option, action="store_true", **options)
        return
    numbers: dict[type, Callable[[str], Any]] = {int: _positive_int if setting.positive else _int, float: _float}
    parse = numbers.get(setting.kind, str)
    if setting.units == "bytes":
        parse = _memory
    if setting.variadic:
        options["nargs"] = "+"
    elif setting.many:
        parse = _csv(parse)
    if setting.choices and not setting.path:  # a path setting takes its names or a file: checked in config_from_args
        options["choices"] = setting.choices
    group.add_argument(setting.option, type=parse, metavar=setting.metavar, **options)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
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

    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in StyleConfig.settings():  # every setting of a run, grouped and ordered as StyleConfig's fields
        if setting.group not in groups:
            groups[setting.group] = p.add_argument_group(setting.group)
        _add_setting(groups[setting.group], setting)

    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint", metavar="PATH", help="save the run's state here every --checkpoint-every iterations")
    g.add_argument("--checkpoint-every", type=_positive_int, default=25, metavar="N", help="(default 25)")
    g.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this checkpoint (its settings, seed and images; "
                        "CONTENT and STYLE may be left out)")

    g = p.add_argument_group("output")
    g.add_argument("--save-every", type=_positive_int, metavar="N",
                   help="also save the image every N iterations as OUTPUT_iterNNNN.EXT")
    g.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="16 for 16-bit TIFF output")
    g.add_argument("--manifest", action="store_true",
                   help="also write OUTPUT.json: every setting, seed, versions, weights SHA-256, device, "
                        "per-iteration losses and timings")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    g.add_argument("--json", action="store_true", help="print one JSON line with the results at the end")
    return p


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (not at their default), as StyleConfig holds them."""
    given = {}
    for setting in StyleConfig.settings():
        value = getattr(args, setting.name)
        if isinstance(value, list):  # nargs="+": one value for all styles, or a tuple
            value = value[0] if setting.one_or_many and len(value) == 1 else tuple(value)
        if value != setting.default:
            if setting.path and setting.choices and value not in setting.choices and not Path(value).exists():
                raise UsageError(f"{setting.option} must be {', '.join(setting.choices)} or an image file; "
                                 f"'{value}' is none of these")
            given[setting.name] = value
    return given


def config_from_args(args: argparse.Namespace) -> StyleConfig:
    """The validated config of the painting command's arguments."""
    return StyleConfig(**_given_settings(args)).validate()


def default_output(content: str, styles: Sequence[str]) -> Path:
    stems = "+".join(Path(s).stem for s in styles[:3]) + ("+more" if len(styles) > 3 else "")
    return Path.cwd() / f"{Path(content).stem}_{stems}.png"


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif")


def expand_styles(paths: Sequence[str]) -> list[str]:
    """The style image paths: files as given, a folder as its image files sorted by name."""
    styles: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            found = sorted(str(p) for p in Path(path).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise UsageError(f"style folder '{path}' has no images ({', '.join(IMAGE_SUFFIXES)})")
            styles.extend(found)
        else:
            styles.append(path)
    return styles


def _list_layers() -> int:
    from .vgg import LAYER_NAMES

    print("\n".join(LAYER_NAMES))
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port '{text}'") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 (any free port) to 65535, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = _float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def build_web_parser() -> argparse.ArgumentParser:
    """``artistyle web``: its own parser, so the painting command keeps its positional arguments."""
    from .web.jobs import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_BYTES

    p = _Parser(
        prog=f"{PROG} web",
        description="ArtiStyle studio: a web page on this machine to paint with ArtiStyle (Ctrl-C stops it).",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; anything else lets other "
                        "machines use the studio, without a password)")
    p.add_argument("--port", type=_port, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--max-upload-mb", type=_positive_float, default=DEFAULT_MAX_UPLOAD_BYTES / 1e6, metavar="MB",
                   help=f"largest image file accepted (default {DEFAULT_MAX_UPLOAD_BYTES / 1e6:g} MB)")
    p.add_argument("--max-pixels", type=_positive_int, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"largest image accepted, in pixels (default {DEFAULT_MAX_PIXELS:,})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    return p


def _web(argv: Sequence[str]) -> int:
    """``artistyle web``: serve the studio until Ctrl-C."""
    from PIL import Image

    from .web import DEPENDENCIES, INSTALL_HINT

    args = build_web_parser().parse_args(argv)
    try:
        from .web import server
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

    try:
        server.serve(args.host, args.port, ready=ready, max_upload_bytes=round(args.max_upload_mb * 1e6),
                     max_pixels=args.max_pixels, device=args.device)
    except ArtiStyleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["web"]:  # a content image called 'web' can still be given as ./web
        return _web(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_layers:
        return _list_layers()
    if (not args.content or not args.style) and not args.resume:
        parser.error("a CONTENT and a STYLE image are needed")
    try:
        return _run(args)
    except ArtiStyleError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{PROG}: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug or a device failure: still one line, unless debugging
        if os.environ.get("ARTISTYLE_DEBUG"):
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "out of memory" in text.lower():
            print(f"{PROG}: error: the device ran out of memory; try a smaller --size", file=sys.stderr)
        else:
            print(f"{PROG}: error: {type(exc).__name__}: {text} (set ARTISTYLE_DEBUG=1 for details)", file=sys.stderr)
        return 1


def _resumed(args: argparse.Namespace) -> tuple[Checkpoint, StyleConfig, str, list[str]]:
    """The checkpoint, config and input paths of a --resume run."""
    from .checkpoint import check_inputs, load_checkpoint

    given = _given_settings(args)
    if given:
        option = next(s.option for s in StyleConfig.settings() if s.name in given)
        raise UsageError(f"--resume takes every setting from the checkpoint; drop {option}")
    checkpoint = load_checkpoint(args.resume)
    content = args.content or checkpoint.inputs["content"]
    styles = expand_styles(args.style) if args.style else list(checkpoint.inputs["styles"])
    for role, path in (("content", content), *(("style", s) for s in styles)):
        if not Path(path).is_file():
            raise UsageError(f"{role} image '{path}' of checkpoint '{args.resume}' does not exist")
    check_inputs(checkpoint, content, styles, args.resume)
    return checkpoint, checkpoint.config, content, styles


@dataclass(frozen=True)
class _Files:
    """Every path a run reads or writes, checked before any work."""

    content: str
    styles: list[str]
    output: Path
    checkpoint: Path | None
    manifest: Path | None
    protect: list[str]  # inputs: never written


def _files(
    args: argparse.Namespace, config: StyleConfig, checkpoint: Checkpoint | None, content: str, styles: list[str]
) -> _Files:
    from .files import same_file
    from .images import check_output_path

    protect = [
        p for p in (content, *styles, *(config.masks or ()), None if config.init in INITS else config.init,
                    config.weights, config.fine_style) if p
    ]
    checkpoint_path = Path(args.checkpoint or args.resume) if (args.checkpoint or args.resume) else None
    default = checkpoint.inputs["output"] if checkpoint else default_output(content, styles)
    written_too = [checkpoint_path] if checkpoint_path else []
    output = check_output_path(args.output or default, protect=[*protect, *written_too])
    if args.bit_depth == 16 and output.suffix.lower() not in (".tif", ".tiff"):
        raise UsageError("--bit-depth 16 needs a .tif or .tiff output")
    manifest = output.with_suffix(".json") if args.manifest else None
    for path, what in ((checkpoint_path, "checkpoint"), (manifest, "manifest")):
        if path is not None and any(same_file(path, Path(p)) for p in protect):
            raise UsageError(f"the {what} {path} would overwrite an input file")
    return _Files(content, styles, output, checkpoint_path, manifest, protect)


def _run(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import save_checkpoint
    from .devices import resolve_device
    from .files import file_sha256, remove_stale_temporaries
    from .images import load_image, save_image
    from .manifest import write_manifest
    from .nst import NST, tensor_to_array
    from .progress import ProgressBar

    checkpoint = None
    if args.resume:
        checkpoint, config, content_path, style_paths = _resumed(args)
    else:
        config, content_path, style_paths = config_from_args(args), args.content, expand_styles(args.style)
    content = load_image(content_path, role="content image")
    styles = [load_image(path, role="style image") for path in style_paths]
    config.check(len(styles), resolve_device(config.device).type)
    files = _files(args, config, checkpoint, content_path, style_paths)

    nst = NST(config)
    painting = nst.paint(content, styles)  # plans memory for every scale: fails here if it cannot fit
    if checkpoint is not None:
        remove_stale_temporaries(args.resume)
        painting.load_state_dict(checkpoint["painting"])
        torch.set_rng_state(checkpoint["rng"])
    record = {
        "content": str(Path(content_path).resolve()),
        "styles": [str(Path(p).resolve()) for p in style_paths],
        "output": str(files.output),
        "content_sha256": file_sha256(content_path),
        "styles_sha256": [file_sha256(p) for p in style_paths],
    }

    def save(path: Path) -> None:
        save_image(tensor_to_array(painting.image), path, alpha=painting.alpha, bit_depth=args.bit_depth,
                   protect=files.protect)

    output = files.output
    started = time.perf_counter()
    interrupted = False
    try:
        with ProgressBar(painting.steps, enabled=not args.quiet) as bar:
            for event in painting:
                bar.update(event)
                if args.save_every and event.iteration % args.save_every == 0 and event.iteration < painting.steps:
                    save(output.with_name(f"{output.stem}_iter{event.iteration:04d}{output.suffix}"))
                if files.checkpoint is not None and event.iteration % args.checkpoint_every == 0:
                    save_checkpoint(files.checkpoint, nst, painting, record)
    except KeyboardInterrupt:
        interrupted = True
        if painting.transfer is None:  # e.g. while --fine-style was being built: no image yet
            print(f"{PROG}: interrupted before the first iteration; nothing saved", file=sys.stderr)
            return 130
    save(output)
    if files.checkpoint is not None and painting.transfer is not None:
        save_checkpoint(files.checkpoint, nst, painting, record)
    losses = painting.transfer.evaluate() if not interrupted and painting.transfer is not None else {}
    seconds = time.perf_counter() - started
    height, width = painting.output_shape
    summary = {
        "output": str(output),
        "width": int(width),
        "height": int(height),
        "steps": painting.iteration,
        "scales": painting.sizes,
        "seconds": round(seconds, 3),
        "losses": losses,
        "loss": sum(losses.values()) if losses else None,
        "seed": nst.seed,
        "device": str(nst.device),
        "weights": nst.weights.name,
        "weights_sha256": nst.weights.sha256,
        "interrupted": interrupted,
        "lbfgs_history": painting.memory.history,
        "tile": painting.memory.tile,
        "memory_estimate_mb": round(painting.memory.estimate / 2**20),
    }
    if files.manifest is not None:
        write_manifest(files.manifest, nst, painting, summary, protect=files.protect)
    if interrupted:
        print(f"{PROG}: interrupted at iteration {painting.iteration}; saved the image so far to {output}",
              file=sys.stderr)
    elif not args.quiet:
        print(f"saved {output} ({width}x{height}, {painting.iteration} iterations, {seconds:.1f} s, seed {nst.seed})",
              file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 130 if interrupted else 0
