"""Reading clips: a video file or a folder of frame images, streamed one frame at a time.

Contract
--------
:func:`open_frames` checks its input up front and returns a :class:`FrameSource`; iterating it
decodes lazily and yields :class:`Frame` tuples ``(index, name, rgb)``:

* ``rgb`` is a C-contiguous ``uint8`` array, H x W x 3, sRGB, upright (a video's rotation
  metadata is applied; a frame image goes through :func:`~artistyle.images.load_image`: EXIF
  orientation, ICC to sRGB, alpha on white, 16-bit reduced to 8).
* ``index`` counts the selected frames from 0; ``name`` is the output name of the frame: the
  file's stem for a folder, ``frame_000001`` ... (1-based over the selected frames) for a video.
* A folder is taken in natural name order, case-insensitively (``frame_2`` before ``frame_10``);
  files whose extension is in :data:`~artistyle.images.IMAGE_SUFFIXES` count, hidden ones do not.

Selection: ``start`` and ``end`` are seconds on the clip's clock (0 is the first frame; a decimal
such as 0.2 is taken exactly); a frame is kept when ``start <= its presentation time < end``,
then every ``every``-th one of those from the first. ``fps`` is the rate of the selected frames,
the source's average rate divided by ``every``, kept as an exact :class:`~fractions.Fraction`
(30000/1001 stays that); a folder plays at :data:`DEFAULT_FOLDER_FPS` unless told.

``count`` is exact: a folder's files, or a video's packets counted by demuxing (no decoding)
once when it is opened, selected by their timestamps; every container FFmpeg reads holds one
frame per video packet. A frame that cannot be decoded, or that the decoder drops, stops the
iteration with :class:`~artistyle.errors.ImageError` naming it, after every frame before it.

Every unusable input raises :class:`~artistyle.errors.UsageError` (:class:`ImageError` for the
file's content) with one line. Needs PyAV (the ``video`` extra).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError, UsageError
from ..files import check_regular_file
from ..images.decode import IMAGE_SUFFIXES, load_image
from .extra import INSTALL_HINT

try:
    import av
    import av.error
except ModuleNotFoundError as exc:  # one line for the CLI, not a traceback
    raise UsageError(INSTALL_HINT) from exc

__all__ = ["DEFAULT_FOLDER_FPS", "MAX_FPS", "MIN_FPS", "Frame", "FrameSource", "av_reason", "clip_origin",
           "natural_key", "open_frames"]

DEFAULT_FOLDER_FPS = Fraction(25)
# The frame rates a frame folder may be given: a slide every 1000 s to 1000 frames a second (what the encoders
# can time; a float rate is kept to 1/1001 precision by the command line, so a smaller one would become 0).
MIN_FPS, MAX_FPS = Fraction(1, 1000), Fraction(1000)
_ORIENTATION_TAG = 0x0112


class Frame(NamedTuple):
    """One selected frame: its position among the selected frames (from 0), output name and pixels."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the frame's position
    name: str
    rgb: np.ndarray  # uint8, H x W x 3, C-contiguous, upright sRGB


class FrameSource:
    """A checked clip: its rate, size, frame count and names; iterate it (again and again) for frames."""

    def __init__(
        self,
        path: Path,
        *,
        is_folder: bool,
        source_fps: Fraction,
        every: int,
        size: tuple[int, int],
        names: Sequence[str],
        has_audio: bool,
        origin: Fraction,
        start_time: Fraction,
    ) -> None:
        self.path = path
        self.is_folder = is_folder
        self.source_fps = source_fps  # the input's (average) rate
        self.fps = source_fps / every  # the selected frames' rate, the output's
        self.size = size  # (width, height), upright
        self.names = tuple(names)
        self.count = len(self.names)
        self.has_audio = has_audio
        self.origin = origin  # seconds on the file's own clock where the clip's clock starts
        self.start_time = start_time  # clip seconds of the first selected frame

    @property
    def duration(self) -> Fraction:
        """Seconds the selected frames last at :attr:`fps`: the output's length."""
        return self.count / self.fps

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, first: int = 0) -> Iterator[Frame]:
        """The selected frames from index ``first`` on (a resumed driver skips the finished ones)."""
        raise NotImplementedError

    def _check_size(self, rgb: np.ndarray, index: int) -> np.ndarray:
        height, width = rgb.shape[:2]
        if (width, height) != self.size:
            raise ImageError(
                f"frame {index + 1} ({self.names[index]}) of '{self.path}' is {width}x{height}, "
                f"the frames before it {self.size[0]}x{self.size[1]}"
            )
        return np.ascontiguousarray(rgb)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for natural name order, case-insensitive: ``frame_2`` before ``frame_10``."""
    parts = re.split(r"(\d+)", name.casefold())
    return tuple((1, int(part)) if part.isdigit() else (0, part) for part in parts if part)


def av_reason(exc: BaseException) -> str:
    """FFmpeg's short reason ("Invalid data found when processing input") without the errno and file name."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def clip_origin(stream: av.video.stream.VideoStream) -> Fraction:
    """Seconds on the file's clock where a video stream starts: the clip's 0, and the audio's cut point."""
    if stream.start_time is None or stream.time_base is None:
        return Fraction(0)
    return stream.start_time * stream.time_base


def open_frames(
    path: str | os.PathLike[str],
    *,
    start: float | None = None,
    end: float | None = None,
    every: int = 1,
    fps: Fraction | float | None = None,
) -> FrameSource:
    """Check a video file or frame folder and the part asked for; return its :class:`FrameSource`.

    ``fps`` is a frame folder's rate (default :data:`DEFAULT_FOLDER_FPS`); a video has its own.
    """
    source = Path(os.fspath(path))
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise UsageError(f"--every must be a whole number of at least 1, not {every!r}")
    first = _seconds(start, "--start")
    last = _seconds(end, "--end")
    if first is not None and last is not None and last <= first:
        raise UsageError(f"--end {end:g} s must be after --start {start:g} s")
    if source.is_dir():
        rate = DEFAULT_FOLDER_FPS if fps is None else _rate(fps)
        return _FolderSource.open(source, first, last, every, rate)
    if fps is not None:
        raise UsageError(f"a frame rate is given for a frame folder only; '{source}' has its own")
    # A FIFO or a device would block FFmpeg's probe (or never end): only a regular file is opened.
    if check_regular_file(source, f"input '{source}'", error=ImageError).st_size == 0:
        raise ImageError(f"input '{source}' is empty (0 bytes)")
    return _VideoSource.open(source, first, last, every)


def _rate(fps: Fraction | float) -> Fraction:
    """A frame folder's rate, checked: UsageError for NaN, an infinity, or a rate out of MIN_FPS..MAX_FPS."""
    if isinstance(fps, float) and not np.isfinite(fps):
        raise UsageError(f"the frame rate must be a number from {float(MIN_FPS):g} to {MAX_FPS}, not {fps}")
    rate = Fraction(fps)
    if not MIN_FPS <= rate <= MAX_FPS:
        raise UsageError(f"the frame rate must be a number from {float(MIN_FPS):g} to {MAX_FPS}, not {float(fps):g}")
    return rate


def _seconds(value: float | None, flag: str) -> Fraction | None:
    if value is None:
        return None
    if not np.isfinite(value) or value < 0:
        raise UsageError(f"{flag} must be a time in seconds of 0 or more, not {value}")
    return Fraction(repr(float(value)))  # 0.2 means 1/5, not the binary float's neighbour


def _select(
    times: Sequence[Fraction], duration: Fraction, start: Fraction | None, end: Fraction | None, every: int, path: Path
) -> list[int]:
    """Indices of the frames at ``start <= time < end``, every ``every``-th; UsageError when that is none."""
    length = f"'{path}' is {float(duration):.3f} s long"
    if start is not None and start >= duration:
        raise UsageError(f"--start {float(start):g} s is past the end of the clip: {length}")
    step = duration / len(times)
    if end is not None and end > duration + step:  # an end up to one frame late is the end
        raise UsageError(f"--end {float(end):g} s is past the end of the clip: {length}")
    chosen = [i for i, t in enumerate(times) if (start is None or t >= start) and (end is None or t < end)]
    if not chosen:
        raise UsageError(f"--start/--end select no frame of '{path}' (a frame every {float(step):.3f} s)")
    return chosen[::every]


class _FolderSource(FrameSource):
    """A folder of frame images."""

    paths: list[Path]

    @classmethod
    def open(
        cls, folder: Path, start: Fraction | None, end: Fraction | None, every: int, fps: Fraction
    ) -> _FolderSource:
        try:
            files = [
                p
                for p in folder.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
            ]
        except OSError as exc:
            raise ImageError(f"frame folder '{folder}' cannot be read ({av_reason(exc)})") from exc
        if not files:
            raise ImageError(f"frame folder '{folder}' has no images ({', '.join(IMAGE_SUFFIXES)})")
        files.sort(key=lambda p: (natural_key(p.name), p.name))
        seen: dict[str, str] = {}
        for p in files:  # the names become output file names: two frames may not share one
            if p.stem in seen:
                raise UsageError(f"frame folder '{folder}' has two frames named '{p.stem}': {seen[p.stem]}, {p.name}")
            seen[p.stem] = p.name
        times = [Fraction(i) / fps for i in range(len(files))]
        chosen = [files[i] for i in _select(times, len(files) / fps, start, end, every, folder)]
        size = _header_size(chosen[0], folder)
        for p in chosen[1:]:  # headers only: a clip of odd frames is refused before any work
            other = _header_size(p, folder)
            if other != size:
                raise ImageError(
                    f"frame '{p.name}' in '{folder}' is {other[0]}x{other[1]}, "
                    f"the frames before it {size[0]}x{size[1]}"
                )
        source = cls(
            folder,
            is_folder=True,
            source_fps=fps,
            every=every,
            size=size,
            names=[p.stem for p in chosen],
            has_audio=False,
            origin=Fraction(0),
            start_time=times[files.index(chosen[0])],
        )
        source.paths = chosen
        return source

    def frames(self, first: int = 0) -> Iterator[Frame]:
        for index in range(first, self.count):
            loaded = load_image(self.paths[index], role=f"frame {index + 1} of {self.count}")
            rgb = (loaded.rgb * 255 + 0.5).astype(np.uint8)
            yield Frame(index, self.names[index], self._check_size(rgb, index))


def _header_size(path: Path, folder: Path) -> tuple[int, int]:
    """A frame image's upright (width, height), from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.format == "PNG":  # getexif() would decode the whole PNG to look behind its pixels
                exif = Image.Exif()
                if "exif" in image.info:
                    exif.load(image.info["exif"])
            else:
                exif = image.getexif()
            if exif.get(_ORIENTATION_TAG) in (5, 6, 7, 8):  # turned a quarter
                width, height = height, width
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageError(f"frame '{path.name}' in '{folder}' is not a readable image ({av_reason(exc)})") from exc
    return width, height


class _VideoSource(FrameSource):
    """A video file, decoded by FFmpeg through PyAV."""

    stamps: list[int]  # the selected frames' presentation timestamps, in the stream's time base
    turns: int  # quarter turns counterclockwise that make a frame upright

    @classmethod
    def open(cls, path: Path, start: Fraction | None, end: Fraction | None, every: int) -> _VideoSource:
        first, turns, has_audio = _probe(path)
        stamps, durations, time_base, origin, rate = _scan(path)
        times = [p * time_base - origin for p in stamps]
        last = durations[-1] * time_base if durations[-1] else 1 / rate
        chosen = _select(times, times[-1] + last, start, end, every, path)
        width, height = (first.height, first.width) if turns % 2 else (first.width, first.height)
        source = cls(
            path,
            is_folder=False,
            source_fps=rate,
            every=every,
            size=(width, height),
            names=[f"frame_{i:06d}" for i in range(1, len(chosen) + 1)],
            has_audio=has_audio,
            origin=origin,
            start_time=times[chosen[0]],
        )
        source.stamps = [stamps[i] for i in chosen]
        source.turns = turns
        return source

    def frames(self, first: int = 0) -> Iterator[Frame]:
        with _open_container(self.path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if first > 0 or self.start_time > 0:
                # to the key frame at or before the first frame wanted; the frames up to it are skipped below
                container.seek(self.stamps[first], stream=stream, backward=True)
            decoded = container.decode(stream)
            index = first
            while index < self.count:
                label = f"frame {index + 1} ({self.names[index]}) of '{self.path}'"
                try:
                    frame = next(decoded)
                except StopIteration:
                    raise ImageError(f"{label} is missing: the video ends early") from None
                except av.error.FFmpegError as exc:
                    raise ImageError(f"{label} cannot be decoded ({av_reason(exc)})") from exc
                if frame.pts is None or frame.pts < self.stamps[index]:
                    continue  # before the selection, or between two selected frames
                if frame.pts > self.stamps[index] or frame.is_corrupt:
                    raise ImageError(f"{label} cannot be decoded (corrupt data)")
                rgb = np.rot90(frame.to_ndarray(format="rgb24"), self.turns)
                yield Frame(index, self.names[index], self._check_size(rgb, index))
                index += 1


def _open_container(path: Path) -> av.container.InputContainer:
    try:
        return av.open(os.fspath(path), mode="r")
    except av.error.FFmpegError as exc:
        raise ImageError(f"'{path}' is not a video FFmpeg can read ({av_reason(exc)})") from exc
    except OSError as exc:
        raise ImageError(f"'{path}' cannot be read ({av_reason(exc)})") from exc


def _probe(path: Path) -> tuple[av.VideoFrame, int, bool]:
    """The first frame (for its size), the quarter turns that make it upright, and whether there is sound."""
    with _open_container(path) as container:
        if not container.streams.video:
            what = "sound but no video stream (an audio file?)" if container.streams.audio else "no video stream"
            raise ImageError(f"'{path}' has {what}")
        stream = container.streams.video[0]
        try:
            frame = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise ImageError(f"the first frame of '{path}' cannot be decoded ({av_reason(exc)})") from exc
        if frame is None:
            raise ImageError(f"'{path}' is a video with no frames")
        # FFmpeg's display matrix: the angle to turn the stored picture counterclockwise for showing.
        turns = round(getattr(frame, "rotation", 0) / 90) % 4
        return frame, turns, bool(container.streams.audio)


def _scan(path: Path) -> tuple[list[int], list[int], Fraction, Fraction, Fraction]:
    """Every frame's timestamp and duration (sorted by time), by demuxing once; the time base, origin and rate."""
    with _open_container(path) as container:
        stream = container.streams.video[0]
        packets: dict[int, int] = {}
        try:
            for packet in container.demux(stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    if packet.size:
                        raise UsageError(f"'{path}' has frames without timestamps; remux it first (e.g. to .mkv)")
                    continue  # the demuxer's empty end-of-stream packet
                packets[stamp] = packet.duration or 0
        except av.error.FFmpegError:
            pass  # a damaged tail: the frames up to it count, and decoding will name the first bad one
        if not packets:
            raise ImageError(f"'{path}' is a video with no frames")
        time_base = stream.time_base or Fraction(1, 90000)
        stamps = sorted(packets)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            span = (stamps[-1] - stamps[0]) * time_base
            rate = Fraction(len(stamps) - 1) / span if span > 0 else Fraction(25)
        origin = clip_origin(stream) if stream.start_time is not None else stamps[0] * time_base
        return stamps, [packets[s] for s in stamps], Fraction(time_base), origin, Fraction(rate)
