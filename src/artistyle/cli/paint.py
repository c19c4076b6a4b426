"""``artistyle CONTENT STYLE``: paint one picture, with checkpoints, a manifest and a progress bar.

Exit status: 0 done, 1 the run failed, 2 bad usage or input, 130 interrupted
(Ctrl-C), 143 / 129 stopped by SIGTERM / SIGHUP; the image so far is saved in those
three cases, and also when a checkpoint or ``--save-every`` file cannot be written
mid-run. Every file the run will write is checked before the first iteration. Every
error is one line on stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import INITS, StyleConfig
from ..errors import FileError, UsageError
from ..images.decode import IMAGE_SUFFIXES
from .options import PROG, config_from_args, given_settings
from .report import say
from .signals import exit_status, raise_if_stopped, signals_held, stopped_by

if TYPE_CHECKING:
    from ..checkpoint import Checkpoint
    from ..nst import NST
    from ..painting import Painting
    from ..tile_workers import TileWorkerPool

__all__ = ["IMAGE_SUFFIXES", "default_output", "expand_styles", "list_layers", "run_paint"]


def default_output(content: str, styles: Sequence[str]) -> Path:
    stems = "+".join(Path(s).stem for s in styles[:3]) + ("+more" if len(styles) > 3 else "")
    return Path.cwd() / f"{Path(content).stem}_{stems}.png"


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


def show_info(path: str) -> int:
    """``--info FILE``: the settings and seed a painted PNG records, as JSON; one line if it records none."""
    from ..metadata import read_image_metadata

    record = read_image_metadata(path)
    if record is None:
        say(f"{PROG}: '{path}' has no ArtiStyle settings in its metadata (artistyle records them in the PNGs it "
            "paints)")
        return 1
    print(json.dumps(record, indent=2, sort_keys=True))
    return 0


def list_layers() -> int:
    from ..vgg import LAYER_NAMES

    print("\n".join(LAYER_NAMES))
    return 0


def resumed(args: argparse.Namespace) -> tuple[Checkpoint, StyleConfig, str, list[str]]:
    """The checkpoint, config and input paths of a --resume run."""
    from ..checkpoint import check_inputs, load_checkpoint
    from ..files import check_regular_file

    given = given_settings(args)
    # Where and how it runs may change (--device, --max-memory, --tile-workers: not the picture's settings).
    pictured = [s.option for s in StyleConfig.settings() if s.name in given and s.picture]
    if pictured:
        raise UsageError(f"--resume takes every setting from the checkpoint; drop {pictured[0]}")
    checkpoint = load_checkpoint(args.resume)
    content = args.content or checkpoint.inputs["content"]
    styles = expand_styles(args.style) if args.style else list(checkpoint.inputs["styles"])
    for role, path in (("content", content), *(("style", s) for s in styles)):  # a FIFO is named, never opened
        check_regular_file(path, f"{role} image '{path}' of checkpoint '{args.resume}'", error=UsageError)
    check_inputs(checkpoint, content, styles, args.resume)
    return checkpoint, dataclasses.replace(checkpoint.config, **given).validate(), content, styles


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
    """Check every file the run will write (image, checkpoint, manifest, --save-every images) before any work."""
    from ..files import check_writable, same_file
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
    if checkpoint is not None and not args.output:
        check_resumed_output(checkpoint, output, args.resume)
    manifest = output.with_suffix(".json") if args.manifest else None
    for path, what in ((checkpoint_path, "checkpoint"), (manifest, "manifest")):
        if path is not None:
            check_writable(path, f"{what} '{path}'", protect=protect)
    if checkpoint_path is not None and args.checkpoint and not is_checkpoint_file(checkpoint_path):
        raise UsageError(f"checkpoint '{checkpoint_path}' exists and is not an ArtiStyle checkpoint; "
                         "refusing to overwrite it (remove it or choose another path)")
    if args.save_every:
        snapshot = re.compile(re.escape(output.stem) + r"_iter\d{4,}" + re.escape(output.suffix))
        for item in protect:
            if same_file(Path(item).parent, output.parent) and snapshot.fullmatch(Path(item).name):
                raise UsageError(f"--save-every would overwrite the input file '{item}'; choose another -o")
    return RunFiles(content, styles, output, checkpoint_path, manifest, protect)


def is_checkpoint_file(path: Path) -> bool:
    """True for a missing or empty file or a torch.save archive: a file --checkpoint may replace."""
    try:
        return path.stat().st_size == 0 or zipfile.is_zipfile(path)
    except OSError:
        return True  # missing: nothing to lose


def check_resumed_output(checkpoint: Checkpoint, output: Path, where: str) -> None:
    """Refuse to let a checkpoint's stored output path replace a file this run did not write.

    A checkpoint records the SHA-256 of the image it last saved; an existing file with
    another digest (or any file, for a checkpoint saved before the first image) is
    someone else's, and only an explicit -o may replace it.
    """
    from ..files import file_sha256

    if not output.exists():
        return
    try:
        ours = file_sha256(output) == checkpoint.inputs.get("output_sha256")
    except OSError:
        ours = False
    if not ours:
        raise UsageError(f"checkpoint '{where}' would save to '{output}', which exists and was not written by "
                         f"this run; give -o '{output}' to replace it, or -o another path")


def ray_workers(args: argparse.Namespace, config: StyleConfig) -> TileWorkerPool | None:
    """``--ray``: the ``--tile-workers`` as Ray actors, the cluster joined now (one line where it cannot be)."""
    if args.ray is None or not config.tile_workers:
        return None
    from ..batch.ray_tiles import RayTileWorkers

    workers = RayTileWorkers(config.tile_workers, args.ray or None, cpus_per_worker=args.cpus_per_worker)
    workers.connect()
    return workers


def show_plan(painting: Painting) -> int:
    """``--plan``: each scale's plan, and the finest scale's parts per process (stdout); 0: it fits."""
    from ..memory import format_bytes, process_bytes

    config, device = painting.engine.config, painting.engine.device
    finest = painting.plans[-1]
    workers = f" on {config.tile_workers} tile workers" if config.tile_workers else ""
    lines: list[str] = []
    add = lines.append  # written at once below
    add(f"{PROG} --plan: {'x'.join(map(str, painting.content_shape(painting.sizes[-1])))} px{workers}, "
        f"{format_bytes(finest.budget)} for each process (--max-memory): it fits\n")
    add("| scale | size | tile | L-BFGS history | needs (largest process) |\n|---:|---|---|---|---:|")
    for scale, (size, plan) in enumerate(zip(painting.sizes, painting.plans, strict=True)):
        width, height = painting.content_shape(size)
        add(f"| {scale + 1} | {width}x{height} | {plan.tile or 'whole'} | {plan.history} pairs, {plan.storage} | "
            f"{format_bytes(plan.estimate)} |")
    add("\nThe finest scale, per process (each part before the allocator's slack; the total with the runtime):\n")
    add("| process | part | bytes |\n|---|---|---:|")
    for process, parts in finest.parts.items():
        for part, size in parts.items():
            add(f"| {process} | {part} | {format_bytes(size)} |")
        add(f"| {process} | **total** | **{format_bytes(process_bytes(parts, device))}** |")
    try:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `--plan | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def run_paint(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import check_resumable, save_checkpoint
    from ..devices import resolve_device
    from ..files import file_sha256
    from ..images import load_image
    from ..memory import format_bytes, keep_freed_memory
    from ..nst import NST
    from .progress import ProgressBar

    keep_freed_memory()  # 13-15% faster passes on Linux CPUs: see its docstring

    checkpoint = None
    if args.resume:
        checkpoint, config, content_path, style_paths = resumed(args)
    else:
        config, content_path, style_paths = config_from_args(args), args.content, expand_styles(args.style)
    content = load_image(content_path, role="content image")
    styles = [load_image(path, role="style image") for path in style_paths]
    config.check(len(styles), resolve_device(config.device).type)
    files = run_files(args, config, checkpoint, content_path, style_paths)

    if args.plan:
        return show_plan(NST(config).paint(content, styles))  # planned for every scale, or refused in one line
    nst = NST(config, workers=ray_workers(args, config))
    painting = nst.paint(content, styles)  # plans memory for every scale: fails here if it cannot fit
    check_room(files, painting, args.bit_depth)
    kept = painting.memory.storage
    if kept != "fp32" and config.lbfgs_storage == "auto" and not args.quiet:
        where = "in bfloat16 (half the memory)" if kept == "bf16" else "in memory-mapped files on disk"
        say(f"memory: the L-BFGS history is kept {where} to fit {format_bytes(painting.memory.budget)} "
            "(--lbfgs-storage fp32 to refuse instead)")
    if checkpoint is not None:
        check_resumable(checkpoint, painting, args.resume)
        painting.load_state_dict(checkpoint["painting"])
        torch.set_rng_state(checkpoint["rng"])
    record = {
        "content": str(Path(content_path).resolve()),
        "styles": [str(Path(p).resolve()) for p in style_paths],
        "output": str(files.output),
        "content_sha256": file_sha256(content_path),
        "styles_sha256": [file_sha256(p) for p in style_paths],
        "output_sha256": checkpoint.inputs.get("output_sha256") if checkpoint is not None else None,
    }

    def save(path: Path) -> None:
        painting.save(path, protect=files.protect, bit_depth=args.bit_depth)  # atomic, with the settings record

    def keep_image() -> None:
        """Save the image (and the checkpoint, which then records the image's digest); a signal waits for it."""
        with signals_held():
            save(output)
            record["output_sha256"] = file_sha256(output)
            if files.checkpoint is not None and painting.transfer is not None:
                save_checkpoint(files.checkpoint, nst.engine, painting, record)

    output = files.output
    started = time.perf_counter()
    stop: KeyboardInterrupt | None = None
    try:
        with ProgressBar(painting.steps, enabled=not args.quiet, workers=nst.engine.tile_workers()) as bar:
            for event in painting:
                raise_if_stopped()
                bar.update(event)
                if args.save_every and event.iteration % args.save_every == 0 and event.iteration < painting.steps:
                    save(output.with_name(f"{output.stem}_iter{event.iteration:04d}{output.suffix}"))
                if files.checkpoint is not None and event.iteration % args.checkpoint_every == 0:
                    save_checkpoint(files.checkpoint, nst.engine, painting, record)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (see .signals)
        stop = exc
        if painting.transfer is None:  # e.g. while --fine-style was being built: no image yet
            say(f"{PROG}: {stopped_by(exc)} before the first iteration; nothing saved")
            return exit_status(exc)
    except FileError as exc:  # a checkpoint or --save-every file failed mid-run: the image so far is not lost
        if painting.transfer is None:
            raise
        with signals_held():
            save(output)
        raise FileError(f"{exc}; saved the image so far to {output}") from None
    try:
        keep_image()
    except KeyboardInterrupt as exc:  # arrived during the save, which finished first
        say(f"{PROG}: {stopped_by(exc)} as the run ended; saved the image to {output}")
        return exit_status(exc)
    try:
        return finish(args, nst, painting, files, stop, time.perf_counter() - started)
    except KeyboardInterrupt as exc:
        say(f"{PROG}: {stopped_by(exc)}; the image was already saved to {output}")
        return exit_status(exc)


def check_room(files: RunFiles, painting: Painting, bit_depth: int) -> None:
    """Refuse a run whose image or checkpoint would not fit on its disk (found now, not after the run)."""
    from ..files import check_free_space

    height, width = painting.output_shape
    pixels = int(height) * int(width)
    channels = 4 if painting.alpha is not None else 3
    # Uncompressed size: PNG and TIFF of a painting compress, so this is an upper bound.
    check_free_space(files.output, pixels * channels * bit_depth // 8 + 2**16, f"output '{files.output}'")
    if files.checkpoint is not None:
        # Pixels, the last good pixels and L-BFGS's (s, y) pairs, all float32 at the final size.
        vectors = 2 + 2 * painting.memory.history
        check_free_space(files.checkpoint, vectors * 3 * pixels * 4 + 2**20, f"checkpoint '{files.checkpoint}'")


def finish(
    args: argparse.Namespace, nst: NST, painting: Painting, files: RunFiles, stop: KeyboardInterrupt | None,
    seconds: float,
) -> int:
    """After the image is saved: the final losses, the manifest, the closing line and the --json summary."""
    from ..manifest import write_manifest

    output = files.output
    losses = painting.transfer.evaluate() if stop is None and painting.transfer is not None else {}
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
        "interrupted": stop is not None,
        "lbfgs_history": painting.memory.history,
        "tile": painting.memory.tile,
        "memory_estimate_mb": round(painting.memory.estimate / 2**20),
    }
    if files.manifest is not None:
        write_manifest(files.manifest, nst.engine, painting, summary, protect=files.protect)
    if stop is not None:
        say(f"{PROG}: {stopped_by(stop)} at iteration {painting.iteration}; saved the image so far to {output}")
    elif not args.quiet:
        say(f"saved {output} ({width}x{height}, {painting.iteration} iterations, {seconds:.1f} s, seed {nst.seed})")
    if args.json:
        print(json.dumps(summary))
    return exit_status(stop) if stop is not None else 0
