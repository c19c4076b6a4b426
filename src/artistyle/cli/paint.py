"""``artistyle CONTENT STYLE``: paint one picture, with checkpoints, a manifest and a progress bar.

Exit status: 0 done, 1 the run failed, 2 bad usage or input, 130 interrupted
(Ctrl-C; the image so far is saved). Every error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import INITS, StyleConfig
from ..errors import UsageError
from .options import PROG, config_from_args, given_settings

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint

__all__ = ["IMAGE_SUFFIXES", "default_output", "expand_styles", "list_layers", "run_paint"]

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


def list_layers() -> int:
    from ..vgg import LAYER_NAMES

    print("\n".join(LAYER_NAMES))
    return 0


def resumed(args: argparse.Namespace) -> tuple[Checkpoint, StyleConfig, str, list[str]]:
    """The checkpoint, config and input paths of a --resume run."""
    from ..checkpoint import check_inputs, load_checkpoint

    given = given_settings(args)
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
class RunFiles:
    """Every path a run reads or writes, checked before any work."""

    content: str
    styles: list[str]
    output: Path
    checkpoint: Path | None
    manifest: Path | None
    protect: list[str]  # inputs: never written


def run_files(
    args: argparse.Namespace, config: StyleConfig, checkpoint: Checkpoint | None, content: str, styles: list[str]
) -> RunFiles:
    from ..files import same_file
    from ..images import check_output_path

    protect = [
        p for p in (content, *styles, *(config.masks or ()), None if config.init in INITS else config.init,
                    config.weights, config.fine_style) if p
    ]
    checkpoint_path = Path(args.checkpoint or args.resume) if (args.checkpoint or args.resume) else None
    default = checkpoint.inputs["output"] if checkpoint else default_output(content, styles)
    if checkpoint_path is not None and same_file(checkpoint_path, Path(args.output or default)):
        raise UsageError(f"the checkpoint {checkpoint_path} is also the output image; give them different paths")
    written_too = [checkpoint_path] if checkpoint_path else []
    output = check_output_path(args.output or default, protect=[*protect, *written_too])
    if args.bit_depth == 16 and output.suffix.lower() not in (".tif", ".tiff"):
        raise UsageError("--bit-depth 16 needs a .tif or .tiff output")
    manifest = output.with_suffix(".json") if args.manifest else None
    for path, what in ((checkpoint_path, "checkpoint"), (manifest, "manifest")):
        if path is not None and any(same_file(path, Path(p)) for p in protect):
            raise UsageError(f"the {what} {path} would overwrite an input file")
    return RunFiles(content, styles, output, checkpoint_path, manifest, protect)


def run_paint(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import check_resumable, save_checkpoint
    from ..devices import resolve_device
    from ..files import file_sha256, remove_stale_temporaries
    from ..images import load_image, save_image
    from ..images.tensors import tensor_to_array
    from ..manifest import write_manifest
    from ..nst import NST
    from .progress import ProgressBar

    checkpoint = None
    if args.resume:
        checkpoint, config, content_path, style_paths = resumed(args)
    else:
        config, content_path, style_paths = config_from_args(args), args.content, expand_styles(args.style)
    content = load_image(content_path, role="content image")
    styles = [load_image(path, role="style image") for path in style_paths]
    config.check(len(styles), resolve_device(config.device).type)
    files = run_files(args, config, checkpoint, content_path, style_paths)

    nst = NST(config)
    painting = nst.paint(content, styles)  # plans memory for every scale: fails here if it cannot fit
    if checkpoint is not None:
        check_resumable(checkpoint, painting, args.resume)
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
