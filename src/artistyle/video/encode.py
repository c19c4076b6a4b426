"""Writing clips: a video file chosen by its extension, or a folder of PNG frames.

Contract
--------
:func:`encode_video` takes frames one at a time (paths of image files, the main route: a
driver's finished PNG frames; or ``uint8`` H x W x 3 arrays; or PIL images) and streams them
into the output; :func:`check_video_output` refuses an unusable output before any work.

* ``.mp4`` and ``.mov``: H.264 (libx264 at CRF 18, else FFmpeg's H.264 encoder), yuv420p. That
  needs even sides: an odd width or height gets its last column or row repeated once (padding,
  so no painted pixel is lost), and a note says so.
* ``.webm``: VP9 (libvpx-vp9 at CRF 24), else VP8; yuv420p.
* ``.gif``: one 256-colour palette for the whole clip (built from up to 8 frames spread over it
  when the frames are a list of paths, else from the first frame: one palette keeps colours from
  flickering between frames), Floyd-Steinberg dithering, delays in hundredths of a second
  rounded from the exact frame times (so the clip's length is right to 1/100 s), looping.
* a folder (no extension): one PNG per frame, ``NAME.png`` after ``names`` (a path's stem when
  not given), each written atomically; a PNG path is copied byte for byte.

The frame rate is kept exactly (the stream's time base is 1/fps, so 30000/1001 reads back as
30000/1001; a GIF's is 1/100 s), and so are the frame count and size. Sound (``audio_from``)
is carried over by :class:`~artistyle.video.audio.AudioCarrier`: copied when the container
holds its codec, else re-encoded; never in a GIF or a folder (a note says it was left out).
A video is written to a temporary file beside the output and renamed at the end
(:func:`~artistyle.files.atomic_path`): nothing half-written is ever at the output path, and an
input (``protect``, ``audio_from``) is never overwritten.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, cast

import av
import av.error
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError, UsageError
from ..files import atomic_path, atomic_write, check_writable, same_file
from .audio import AudioCarrier
from .extra import OUTPUT_SUFFIXES
from .frames import FrameSource, av_reason

__all__ = ["OUTPUT_SUFFIXES", "EncodedVideo", "FrameInput", "check_video_output", "encode_video", "is_folder_output"]

_ENCODERS = {
    ".mp4": ("libx264", "h264"),
    ".mov": ("libx264", "h264"),
    ".webm": ("libvpx-vp9", "libvpx"),
    ".gif": ("gif",),
}
_OPTIONS = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "24", "b": "0", "row-mt": "1", "cpu-used": "4"},
    "libvpx": {"crf": "10", "b": "4M"},
}
_FORMATS = {".mp4": "mp4", ".mov": "mov", ".webm": "webm", ".gif": "gif"}
_GIF_SAMPLES = 8

FrameInput = str | os.PathLike[str] | np.ndarray | Image.Image


@dataclass(frozen=True)
class EncodedVideo:
    """What :func:`encode_video` wrote."""

    path: Path
    frames: int
    size: tuple[int, int]  # (width, height) as written: an H.264 video's odd side is padded by one
    fps: Fraction  # the stream's rate (a GIF's frames last whole hundredths around it)
    audio: str | None  # the codec of the sound written; None when there is none
    notes: tuple[str, ...]  # for the user: sound left out or re-encoded, a side padded


def is_folder_output(output: str | os.PathLike[str]) -> bool:
    """Whether ``output`` names a frame folder: an existing folder, or a path without an extension."""
    path = Path(os.fspath(output))
    return path.is_dir() or not path.suffix or os.fspath(output).endswith(("/", os.sep))


def check_video_output(output: str | os.PathLike[str], input: str | os.PathLike[str] | None = None) -> None:
    """Refuse, before any work, an output that cannot be written: UsageError (or FileError), one line."""
    path = Path(os.fspath(output))
    label = f"output '{output}'"
    if input is not None and same_file(path, input):
        raise UsageError(f"{label} is the input; refusing to overwrite an input")
    if is_folder_output(path):
        if path.exists() and not path.is_dir():
            raise UsageError(f"{label} is a file, not a folder")
        parent = path if path.is_dir() else path.parent
        check_writable(parent / ".artistyle-probe.png", label)
        return
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{label}: cannot write '{path.suffix}' video (use {', '.join(OUTPUT_SUFFIXES)} or a folder)")
    check_writable(path, label, protect=() if input is None else (input,))


def encode_video(
    frames: Iterable[FrameInput],
    output: str | os.PathLike[str],
    *,
    fps: Fraction | int,
    size: tuple[int, int] | None = None,
    names: Sequence[str] | None = None,
    audio_from: FrameSource | str | os.PathLike[str] | None = None,
    start: float | Fraction | None = None,
    end: float | Fraction | None = None,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> EncodedVideo:
    """Write ``frames`` (all ``size``: (width, height), the first frame's when None) as ``output`` at ``fps``.

    ``audio_from`` gives the sound: a :class:`FrameSource` (cut to its part) or a file cut from
    ``start`` to ``end`` (seconds on its clip's clock; default: from 0 to the video's end).
    """
    path = Path(os.fspath(output))
    rate = Fraction(fps)
    if rate <= 0:
        raise UsageError(f"the frame rate must be positive, not {fps}")
    sources = [*protect]
    if audio_from is not None:
        sources.append(audio_from.path if isinstance(audio_from, FrameSource) else audio_from)
    for source in sources:
        check_video_output(path, source)
    check_video_output(path)
    if is_folder_output(path):
        return _write_folder(frames, path, rate, size, names, sources, audio_from)
    return _write_video(frames, path, rate, size, audio_from, start, end)


def _write_folder(
    frames: Iterable[FrameInput],
    folder: Path,
    fps: Fraction,
    size: tuple[int, int] | None,
    names: Sequence[str] | None,
    protect: Sequence[str | os.PathLike[str]],
    audio_from: FrameSource | str | os.PathLike[str] | None,
) -> EncodedVideo:
    try:
        folder.mkdir(exist_ok=True)
    except OSError as exc:
        raise UsageError(f"output folder '{folder}' cannot be made ({av_reason(exc)})") from exc
    count = 0
    for index, item in enumerate(frames):
        stem = names[index] if names is not None else _default_name(item, index)
        target = folder / f"{stem}.png"
        label = f"frame '{target}'"
        inputs = [*protect, os.fspath(item)] if _is_path(item) else protect  # type: ignore[arg-type]
        if any(same_file(target, other) for other in inputs):
            raise UsageError(f"{label} is an input; refusing to overwrite an input")
        if _is_path(item) and Path(os.fspath(item)).suffix.lower() == ".png":  # type: ignore[arg-type]
            atomic_write(target, _writer(Path(os.fspath(item)).read_bytes()), label)  # type: ignore[arg-type]
        else:
            rgb = _load_rgb(item, index)
            size = _checked_size(rgb, size, index)
            atomic_write(target, _writer(rgb), label)
        count += 1
    if not count:
        raise UsageError(f"no frames to write to '{folder}'")
    notes = []
    if audio_from is not None and _has_audio(audio_from):
        notes.append("the sound is not kept: a frame folder has none")
    return EncodedVideo(folder, count, size or (0, 0), fps, None, tuple(notes))


def _write_video(
    frames: Iterable[FrameInput],
    path: Path,
    fps: Fraction,
    size: tuple[int, int] | None,
    audio_from: FrameSource | str | os.PathLike[str] | None,
    start: float | Fraction | None,
    end: float | Fraction | None,
) -> EncodedVideo:
    suffix = path.suffix.lower()
    items = iter(frames)
    first = next(items, None)
    if first is None:
        raise UsageError(f"no frames to write to '{path}'")
    first_rgb = _load_rgb(first, 0)
    size = _checked_size(first_rgb, size, 0)
    codec = _encoder(suffix)
    width, height = size
    notes: list[str] = []
    if codec.name != "gif" and suffix != ".webm" and (width % 2 or height % 2):
        padded = width + width % 2, height + height % 2
        notes.append(f"the frames are {width}x{height} and H.264 needs even sides: the video is {padded[0]}x"
                     f"{padded[1]}, its last row or column repeated")
        width, height = padded
    palette = _gif_palette(first_rgb, frames) if codec.name == "gif" else None
    label = f"output '{path}'"
    with atomic_path(path, label) as temporary:
        try:
            container = av.open(os.fspath(temporary), mode="w", format=_FORMATS[suffix])
        except av.error.FFmpegError as exc:
            raise UsageError(f"{label} cannot be written ({av_reason(exc)})") from exc
        carrier: AudioCarrier | None = None
        try:
            options = _OPTIONS.get(codec.name, {})
            stream = cast(av.video.stream.VideoStream, container.add_stream(codec.name, rate=fps, options=options))
            stream.width, stream.height = width, height
            stream.pix_fmt = "pal8" if palette is not None else "yuv420p"
            time_base = Fraction(1, 100) if palette is not None else 1 / fps
            stream.time_base = time_base
            carrier, note = _attach_audio(container, suffix, audio_from, start, end)
            notes += [note] if note else []
            count = 0
            for index, item in enumerate(itertools.chain([first], items)):
                rgb = first_rgb if index == 0 else _load_rgb(item, index)
                _checked_size(rgb, size, index)
                frame = _video_frame(rgb, width, height, palette)
                frame.pts = round(index / fps / time_base)
                frame.time_base = time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
                count = index + 1
                if carrier is not None:
                    carrier.pump(count / fps)
            for packet in stream.encode(None):
                container.mux(packet)
            if carrier is not None:
                carrier.finish(count / fps)
        except av.error.FFmpegError as exc:
            raise UsageError(f"{label} cannot be written ({av_reason(exc)})") from exc
        finally:
            if carrier is not None:
                carrier.close()
            container.close()
    audio = None if carrier is None else carrier.codec
    return EncodedVideo(path, count, (width, height), fps, audio, tuple(notes))


def _attach_audio(
    container: av.container.OutputContainer,
    suffix: str,
    audio_from: FrameSource | str | os.PathLike[str] | None,
    start: float | Fraction | None,
    end: float | Fraction | None,
) -> tuple[AudioCarrier | None, str | None]:
    if audio_from is None:
        return None, None
    if isinstance(audio_from, FrameSource):
        if not audio_from.has_audio:
            return None, None
        return AudioCarrier.attach(
            container,
            suffix,
            audio_from.path,
            start=audio_from.start_time,
            end=audio_from.duration,
            origin=audio_from.origin,
        )
    clip_start = Fraction(start or 0)
    return AudioCarrier.attach(
        container,
        suffix,
        Path(os.fspath(audio_from)),
        start=clip_start,
        end=None if end is None else Fraction(end) - clip_start,
    )


def _encoder(suffix: str) -> av.Codec:
    for name in _ENCODERS[suffix]:
        try:
            return av.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise UsageError(f"this PyAV has no encoder for {suffix} video (tried {', '.join(_ENCODERS[suffix])})")


def _video_frame(rgb: np.ndarray, width: int, height: int, palette: Image.Image | None) -> av.VideoFrame:
    if palette is not None:
        indices = Image.fromarray(rgb).quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
        # PyAV takes pal8 as an (indices, ARGB palette) pair, which its stubs do not know.
        return av.VideoFrame.from_ndarray((np.asarray(indices), _argb(palette)), format="pal8")  # type: ignore[arg-type]
    pad = ((0, height - rgb.shape[0]), (0, width - rgb.shape[1]), (0, 0))
    if any(after for _, after in pad):
        rgb = np.pad(rgb, pad, mode="edge")
    return av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")


def _gif_palette(first: np.ndarray, frames: Iterable[FrameInput]) -> Image.Image:
    """One 256-colour palette for the clip: from frames spread over it when they are paths, else the first."""
    samples = [first]
    if isinstance(frames, Sequence) and len(frames) > 1:
        picks = sorted({round(i * (len(frames) - 1) / (_GIF_SAMPLES - 1)) for i in range(_GIF_SAMPLES)} - {0})
        samples += [_load_rgb(frames[i], i) for i in picks]
    strip = np.concatenate([s[:: max(1, s.shape[0] // 64), :: max(1, s.shape[1] // 64)][:64, :64] for s in samples])
    return Image.fromarray(np.ascontiguousarray(strip)).quantize(256, method=Image.Quantize.MEDIANCUT)


def _argb(palette: Image.Image) -> np.ndarray:
    colours = np.array(palette.getpalette() or [], dtype=np.uint8)[: 256 * 3].reshape(-1, 3)
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255
    argb[: len(colours), 1:] = colours
    return argb


def _writer(content: bytes | np.ndarray) -> Callable[[BinaryIO], object]:
    """What :func:`atomic_write` calls: the bytes as they are, or the pixels as a PNG."""
    if isinstance(content, bytes):
        return lambda fh: fh.write(content)
    return lambda fh: Image.fromarray(content).save(fh, "PNG")


def _is_path(item: object) -> bool:
    return isinstance(item, (str, os.PathLike))


def _default_name(item: FrameInput, index: int) -> str:
    return Path(os.fspath(item)).stem if _is_path(item) else f"frame_{index + 1:06d}"  # type: ignore[arg-type]


def _has_audio(source: FrameSource | str | os.PathLike[str]) -> bool:
    if isinstance(source, FrameSource):
        return source.has_audio
    try:
        with av.open(os.fspath(source), mode="r") as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return False


def _load_rgb(item: FrameInput, index: int) -> np.ndarray:
    """A frame as uint8 H x W x 3."""
    if isinstance(item, np.ndarray):
        array = item
        if array.dtype != np.uint8:
            array = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    elif isinstance(item, Image.Image):
        array = np.asarray(item.convert("RGB"))
    else:
        try:
            with Image.open(os.fspath(item)) as image:
                array = np.asarray(image.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise ImageError(f"frame {index + 1} '{os.fspath(item)}' cannot be read ({av_reason(exc)})") from exc
    if array.ndim != 3 or array.shape[2] != 3:
        raise UsageError(f"frame {index + 1} is not an RGB image (shape {array.shape})")
    return np.ascontiguousarray(array)


def _checked_size(rgb: np.ndarray, size: tuple[int, int] | None, index: int) -> tuple[int, int]:
    found = (int(rgb.shape[1]), int(rgb.shape[0]))
    if size is not None and found != tuple(size):
        raise UsageError(f"frame {index + 1} is {found[0]}x{found[1]}, the video {size[0]}x{size[1]}")
    return found
