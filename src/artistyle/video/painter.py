"""Painting a clip after Ruder, Dosovitskiy and Brox (2016): frame by frame, each later frame started
from the previous result warped to it and held near it by the temporal loss.

The first frame is painted like an image (from noise, coarse to fine where the size asks for it,
``first_steps`` iterations). Frame ``i > 0`` is one scale of ``steps`` iterations that starts from
frame ``i - 1``'s result warped by the backward flow (Lanczos by default: bilinear blurs a little more
every frame), and, where the consistency weights ``c`` are 0 (disoccluded pixels, motion boundaries,
sources outside the frame), from the frame itself; the
temporal loss ``temporal_weight * mean(c * (x - warped)^2)`` keeps the trusted pixels near the
warped result, so the brush strokes follow the motion instead of re-arranging every frame; each finished later
frame's mean colour is then held as far from its photo's as the first frame's was (:mod:`.brightness`).

Every finished frame is written atomically, as a PNG named after the input frame, to a work
folder, with a small state file that records the picture key of the frames
(:func:`artistyle.picture.picture_key`: the first and later frames' picture settings, the video settings
that differ from their defaults, the seed given, and the styles' and the input's CONTENT, never a path or a
modification time; a 0.5 state file's hash is still accepted where it was written, and then replaced by
the key). A new :class:`VideoPainting` over the same folder, settings and input, even moved or copied
elsewhere with the input, continues after the last finished frame (after Ctrl-C, a crash or
``kill -9``) and ends with the same frames as an uninterrupted run on a CPU: the previous result is
always taken as the 8-bit frame it was saved as, and every frame's start is deterministic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import UsageError
from ..files import atomic_write, file_sha256, same_file, short_reason
from ..images import load_image, resize_long_edge, save_image
from ..images.sources import ImageSource, as_loaded, image_list
from ..images.tensors import array_to_tensor, tensor_to_array
from ..jsontext import JSONTextError, parse_json
from ..nst import NST
from ..painting import Painting
from ..picture import picture_key, picture_settings, schema_changes
from ..transfer import Progress
from ..version import __version__
from .brightness import anchor, held_offset
from .encode import EncodedVideo, encode_video
from .flow import FlowPrefetcher, FlowStep
from .frames import FrameSource, open_frames
from .legacy import legacy_hashes
from .settings import VideoSettings, first_frame_config, later_frames_config
from .warp import warp

__all__ = ["STATE_FILE", "VideoPainting", "VideoProgress", "VideoSettings", "paint_video"]

STATE_FILE = ".artistyle-video.json"
RAW_FOLDER = ".raw"  # the results before colour control, where that differs from the frames


@dataclass(frozen=True)
class VideoProgress:
    """One event of a clip: an iteration of frame ``frame`` (``progress`` set), or a frame done."""

    frame: int  # 0-based among the selected frames
    frames: int
    name: str
    progress: Progress | None  # None: the frame was just written (``done``) or found finished
    done: bool
    iterations: int  # iterations of the whole clip so far (finished frames count fully)
    total_iterations: int


class VideoPainting:
    """Iterate for :class:`VideoProgress` events; :meth:`stop` ends after the current iteration
    (the frame being painted is not written); finished frames are in :attr:`work`."""

    def __init__(
        self,
        nst: NST,
        source: FrameSource,
        styles: Sequence[ImageSource],
        work: str | os.PathLike[str],
        settings: VideoSettings = VideoSettings(),
        *,
        restart: bool = False,
        private: bool = False,
    ):
        """``nst``: the settings as given (:attr:`NST.given`) decide both kinds of frame, resolved by the
        library: the first frame's (``settings.first_steps`` or the config's steps, or a fast start's
        schedule) and the later frames' (``settings.steps`` on one scale from the warped previous result,
        the given content weight or the default: a fast start's raised weight is the first frame's only).
        ``restart``: discard the finished frames. ``private``: ``work`` is the driver's own folder (a
        batch's hidden one), so frames it holds from other settings or another input are replaced, not
        refused: nobody else's pictures can be there."""
        self.source = source
        self.private = private
        self.styles = [as_loaded(s, "style image") for s in styles]
        self.settings = settings
        self.work = Path(os.fspath(work))
        given = nst.given
        self.config = nst.config
        self.seed = nst.seed
        # The first frame is painted like an image; the later ones on one scale from the warped previous
        # result, with the content weight the user gave (a fast start's raised weight would not suit them).
        self.given = given
        self.first_config = first_frame_config(given, settings)
        self.later_config = later_frames_config(given, settings)
        # Before the state file is written or a frame removed: the first frame's scales (too many, or too small),
        # the styles' count against the settings, and the work folder.
        self.first_config.check(len(self.styles), nst.device.type)
        self._check_work_folder()
        self._state = self._open_work(restart)
        self.seed = int(self._state["seed"])
        first = dataclasses.replace(self.first_config, seed=self.seed)
        later = dataclasses.replace(self.later_config, seed=self.seed)
        self.first_nst, self.later_nst = NST(first), NST(later)
        self.size = self.first_nst.size
        self.first_frame_steps = sum(first.scale_schedule(len(first.scale_sizes(self.size))))
        self.total_iterations = self.first_frame_steps + max(0, len(source) - 1) * settings.steps
        self.finished = self._finished_frames()
        self._stopped = threading.Event()
        self._painting: Painting | None = None

    # -- the work folder ---------------------------------------------------------------------------
    def _check_work_folder(self) -> None:
        """Refuse (UsageError, one line) a work folder that is no folder, a private one that is a link, and
        inputs that painting would replace or remove: a style image (or the clip) in the work folder under a
        frame's name or the state file's, a frame folder that is the work folder itself."""
        work = self.work
        if os.path.lexists(work) and not work.is_dir():
            what = "a link to nothing" if work.is_symlink() else "a file"
            raise UsageError(f"the work folder '{work}' is {what}, not a folder; move it or choose another output")
        if self.private and work.is_symlink():
            raise UsageError(f"the work folder '{work}' is a link; remove it (frames are never written through it)")
        if not work.is_dir():
            return
        written = {os.path.normcase(f"{name}.png") for name in self.source.names} | {os.path.normcase(STATE_FILE)}
        folders = (work, work / RAW_FOLDER)
        inputs = [("style image", s.path) for s in self.styles if s.path is not None]
        for role, path in [("input", self.source.path), *inputs]:
            if self.source.is_folder and role == "input":
                if any(same_file(path, folder) for folder in folders):
                    raise UsageError(f"the frame folder '{path}' is the work folder: painting would replace its "
                                     "frames; choose another output")
            elif (os.path.normcase(Path(path).name) in written
                  and any(same_file(Path(path).parent, folder) for folder in folders)):
                raise UsageError(f"painting would replace the {role} '{path}' (it is in the work folder '{work}' "
                                 "under a frame's name); move it or choose another output")

    def _settings_hash(self) -> str:
        """The picture key (:func:`artistyle.picture.picture_key`) of the frames: the first and the later
        frames' picture settings, the video settings that differ from their defaults, the seed given, the
        style images' content and the input's content (:func:`_input_identity`); no path, no time."""
        return picture_key(
            settings={"first": picture_settings(self.first_config, _digest),
                      "later": picture_settings(self.later_config, _digest),
                      "video": schema_changes(self.settings)},
            seed=self.config.seed,
            inputs={"styles": self._style_digests(), "input": _input_identity(self.source)})

    def _style_digests(self) -> list[str]:
        return [file_sha256(s.path) if s.path is not None else _array_digest(s.rgb) for s in self.styles]

    def _legacy_hashes(self) -> list[str]:
        """The state file's hash as 0.5 wrote it for these frames (:func:`.legacy.legacy_hashes`)."""
        return legacy_hashes(self.source, self.given, self.first_config, self.settings, self._style_digests(),
                             self.config.seed)

    def _open_work(self, restart: bool) -> dict[str, Any]:
        state_path = self.work / STATE_FILE
        digest = self._settings_hash()
        state, damaged = None, None
        if state_path.is_file() and not restart:
            try:
                state = parse_json(state_path.read_bytes())
            except (OSError, JSONTextError) as exc:
                damaged = short_reason(exc)
            if damaged is None and not (isinstance(state, dict) and isinstance(state.get("seed"), int)):
                damaged = "not a state record"
            if damaged is None and isinstance(state, dict):
                if state.get("settings_hash") == digest:
                    return state
                if state.get("settings_hash") in self._legacy_hashes():
                    # A 0.5 folder at its original place: keyed anew, so that it may be moved from now on.
                    state = {**state, "settings_hash": digest}
                    self._write_state(state)
                    return state
        existing = [] if restart or self.private else self._frame_files()
        if existing:  # never paint over frames that this run cannot prove are its own
            if damaged is not None:  # the frames may well be this run's, but nothing can tell
                raise UsageError(f"'{self.work}' holds finished frames ({existing[0].name}, ...), but its state file "
                                 f"{STATE_FILE} is damaged ({damaged}), so they cannot be matched to these settings; "
                                 "give --restart to paint every frame again, or choose another output")
            why = "painted with other settings or from another input" if state_path.is_file() else "not painted here"
            raise UsageError(f"'{self.work}' already holds {existing[0].name} ({why}); "
                             "give --restart to replace its frames, or choose another output")
        self.work.mkdir(parents=True, exist_ok=True)
        for name in self.source.names:  # frames of an earlier run would be taken as finished
            for folder in (self.work, self.work / RAW_FOLDER):
                (folder / f"{name}.png").unlink(missing_ok=True)
        state = {"artistyle": __version__, "settings_hash": digest, "seed": self.seed,
                 "frames": len(self.source), "fps": str(self.source.fps)}
        self._write_state(state)
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        state_path = self.work / STATE_FILE
        data = json.dumps(state, indent=1).encode()
        atomic_write(state_path, lambda fh: fh.write(data), f"video state {state_path}")

    def _frame_files(self) -> list[Path]:
        return [self.work / f"{name}.png" for name in self.source.names if (self.work / f"{name}.png").exists()]

    def _finished_frames(self) -> int:
        """How many frames, from the first, are already written."""
        count = 0
        for name in self.source.names:
            if not (self.work / f"{name}.png").is_file():
                break
            count += 1
        return count

    def frame_paths(self) -> list[Path]:
        """The finished frames' files, in order."""
        return [self.work / f"{name}.png" for name in self.source.names[: self.finished]]

    def _raw_path(self, name: str) -> Path:
        colour_kept = self.config.preserve_color == "luminance" or self.config.original_colors
        return self.work / RAW_FOLDER / f"{name}.png" if colour_kept else self.work / f"{name}.png"

    # -- painting ------------------------------------------------------------------------------------
    def stop(self) -> None:
        """End after the current iteration; the frame being painted is not written."""
        self._stopped.set()
        if self._painting is not None:
            self._painting.stop()

    def __iter__(self) -> Iterator[VideoProgress]:
        count, names = len(self.source), self.source.names
        done_iterations = self._iterations_before(self.finished)
        for index in range(self.finished):
            yield VideoProgress(index, count, names[index], None, True, self._iterations_before(index + 1),
                                self.total_iterations)
        if self.finished >= count:
            return
        # The flows into the first frame to paint need the earlier frames it is compared with.
        first = max(0, self.finished - self.settings.long_term[-1])
        frames = (self.working(frame.rgb) for frame in self.source.frames(first))
        previous: np.ndarray | None = None
        held: Tensor | None = None  # the brightness anchor, from the first frame (brightness.anchor)
        if self.finished > 0:
            previous = self._load_raw(names[self.finished - 1])
            held = self._first_anchor() if self.settings.brightness == "hold" else None
        prefetcher = FlowPrefetcher(frames, method=self.settings.flow, preset=self.settings.flow_preset,
                                    offsets=self.settings.long_term, colour_tolerance=self.settings.color_tolerance,
                                    first_needed=self.finished - first)
        with prefetcher as steps:
            for step in steps:
                index = first + step.index
                if index < self.finished:
                    continue
                if self._stopped.is_set():
                    return
                if index == 0 or step.backward is None or step.weights is None or previous is None:
                    painting = self.first_nst.paint(step.frame, self.styles)
                else:
                    painting = self._later(index, step, previous)
                self._painting = painting
                for event in painting:
                    yield VideoProgress(index, count, names[index], event, False,
                                        done_iterations + painting.iteration, self.total_iterations)
                if self._stopped.is_set():
                    return
                if index > 0 and held is not None and self.settings.brightness == "hold":
                    painting.add_offset(held_offset(painting.raw_image, array_to_tensor(step.frame), held))
                previous = self._write(names[index], painting)
                if index == 0:
                    held = anchor(array_to_tensor(previous), array_to_tensor(step.frame))
                self.finished = index + 1
                done_iterations = self._iterations_before(index + 1)
                yield VideoProgress(index, count, names[index], None, True, done_iterations, self.total_iterations)

    def _iterations_before(self, frame: int) -> int:
        return 0 if frame == 0 else self.first_frame_steps + (frame - 1) * self.settings.steps

    def check(self) -> None:
        """Build (and drop) the first frame's painting: a clip too large for the memory budget, or an
        image too elongated for the network, fails now, before any work."""
        first = next(iter(self.source.frames(0)))
        self.first_nst.paint(self.working(first.rgb), self.styles)

    def working(self, rgb: np.ndarray) -> np.ndarray:
        """A frame at the working size, float32 in [0, 1]: the painting's content and the flow's input."""
        return resize_long_edge(rgb.astype(np.float32) / 255.0, self.size)

    def encode(self, output: str | os.PathLike[str]) -> EncodedVideo:
        """Encode the finished frames as ``output`` (a video or a folder) at the clip's rate, with its sound."""
        return encode_video(self.frame_paths(), output, fps=self.source.fps, audio_from=self.source,
                            protect=[s.path for s in self.styles if s.path is not None])

    def _first_anchor(self) -> Tensor:
        """:func:`.brightness.anchor` of the finished first frame, as the uninterrupted run took it (its 8-bit file)."""
        first = self.working(next(iter(self.source.frames(0))).rgb)
        return anchor(array_to_tensor(self._load_raw(self.source.names[0])), array_to_tensor(first))

    def _later(self, index: int, step: FlowStep, previous: np.ndarray) -> Painting:
        """Frame ``i > 0``: start from the warped previous result, and where its ``c = 0`` from the
        closest earlier result that is trusted there (with long-term consistency), else the frame itself.

        Ruder et al. start from the previous result and the frame only; an older result that saw a
        disoccluded region is a better start there, as the long-term loss pulls those pixels to it anyway.
        """
        assert step.backward is not None and step.weights is not None
        frame = array_to_tensor(step.frame)
        # Resampled with the kernel the settings name (Lanczos: sharp), clamped as it may overshoot at edges.
        warped = warp(array_to_tensor(previous), step.backward, self.settings.warp)[0].clamp(0, 1)
        start = torch.where(torch.from_numpy(step.weights)[None, None] > 0, warped, frame)
        temporal = [(warped, step.weights)]  # the previous frame's long-term weights are its own
        for earlier in step.earlier[1:]:
            if not earlier.weights.any():
                continue  # nothing of that frame is trusted here beyond what closer ones give
            older = warp(array_to_tensor(self._load_raw(self.source.names[index - earlier.offset])),
                         earlier.backward, self.settings.warp)[0].clamp(0, 1)
            # Long-term weights are 0 wherever a closer frame is trusted, so this only fills the rest.
            start = torch.where(torch.from_numpy(earlier.weights)[None, None] > 0, older, start)
            temporal.append((older, earlier.weights))
        return self.later_nst.paint(step.frame, self.styles, init=start, temporal=temporal)

    def _write(self, name: str, painting: Painting) -> np.ndarray:
        """Write the frame (and its pre-colour result, when they differ); return the result to warp from,
        as the 8-bit image it was saved as, so a resumed run starts from exactly the same pixels."""
        raw_path = self._raw_path(name)
        if raw_path != self.work / f"{name}.png":
            raw_path.parent.mkdir(exist_ok=True)
            save_image(tensor_to_array(painting.raw_image), raw_path)
        painting.save(self.work / f"{name}.png")  # with the frame's settings record (artistyle --info)
        return self._load_raw(name)  # read back, exactly as a resumed run will read it

    def _load_raw(self, name: str) -> np.ndarray:
        rgb: np.ndarray = np.asarray(load_image(self._raw_path(name), role="finished frame").rgb, dtype=np.float32)
        return rgb


def paint_video(
    nst: NST,
    clip: str | os.PathLike[str],
    styles: ImageSource | Sequence[ImageSource],
    work: str | os.PathLike[str],
    settings: VideoSettings = VideoSettings(),
    *,
    start: float | None = None,
    end: float | None = None,
    every: int = 1,
    restart: bool = False,
) -> VideoPainting:
    """The library's ``artistyle video``: a :class:`VideoPainting` of ``clip`` (a video file or a folder
    of frames) in the style of ``styles``, its finished frames in ``work``; iterate it, then
    :meth:`VideoPainting.encode` the result. (A function here rather than a method of :class:`NST`:
    the core never imports the video package, which needs PyAV and OpenCV.)"""
    return VideoPainting(nst, open_frames(clip, start=start, end=end, every=every), image_list(styles), work, settings,
                         restart=restart)


def _array_digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _digest(path: str) -> str | None:
    """A file's SHA-256, or None when it cannot be read (the painting then fails on it, with the reason)."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def _input_identity(source: FrameSource) -> dict[str, Any]:
    """The input clip as far as resuming cares, by content: a clip file's SHA-256, or a frame folder's
    files' names (relative) with their SHA-256, and the selected frames and rate; no path, no time."""
    path = Path(source.path)
    if path.is_dir():
        files: Any = [[f, file_sha256(path / f)] for f in sorted(os.listdir(path)) if (path / f).is_file()]
    else:
        files = file_sha256(path)
    return {"files": files, "names": list(source.names), "fps": str(source.fps)}
