"""Carrying a clip's sound into the video being written, cut to the clip's part, interleaved as it grows.

The first audio stream is copied packet by packet (no re-encoding) when the output container
can hold its codec (:data:`CONTAINER_AUDIO`); otherwise it is re-encoded to the container's own
(:data:`REENCODE_TO`: AAC for .mp4/.mov, Opus for .webm) and a note says so. The cut follows
the video: from the clip's start to the end of the frames written (or an earlier ``end``), to
the nearest audio packet when copied, to the nearest decoded audio frame when re-encoded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import av.error

from ..errors import ImageError
from .frames import av_reason, clip_origin

__all__ = ["CONTAINER_AUDIO", "REENCODE_TO", "AudioCarrier"]

#: Audio codecs (FFmpeg names) each output container takes as they are.
CONTAINER_AUDIO: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"}),
    ".mov": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_f32le"}),
    ".webm": frozenset({"opus", "vorbis"}),
}
#: The encoder used when the container cannot hold the input's codec.
REENCODE_TO = {".mp4": "aac", ".mov": "aac", ".webm": "libopus"}
_OPUS_RATES = (48000, 24000, 16000, 12000, 8000)


class AudioCarrier:
    """One input's audio stream flowing into an output container, on the output video's clock."""

    def __init__(
        self,
        source: av.container.InputContainer,
        stream: av.audio.stream.AudioStream,
        output: av.container.OutputContainer,
        out_stream: av.audio.stream.AudioStream,
        *,
        window_start: Fraction,
        end: Fraction | None,
        copy: bool,
    ) -> None:
        self._source, self._stream, self._output, self._out = source, stream, output, out_stream
        self._window_start = window_start  # seconds on the input's clock that become 0 in the output
        self._end = end  # clip seconds after the start where the sound stops at the latest
        self._copy = copy
        self._pending: Iterator[av.Packet[Any] | av.AudioFrame] = self._items()
        self._held: av.Packet[Any] | av.AudioFrame | None = None
        self.codec = out_stream.codec_context.name

    @classmethod
    def attach(
        cls,
        output: av.container.OutputContainer,
        suffix: str,
        path: Path,
        *,
        start: Fraction,
        end: Fraction | None,
        origin: Fraction | None = None,
    ) -> tuple[AudioCarrier | None, str | None]:
        """Add ``path``'s sound to ``output`` (before its first packet); the carrier and a note for the user."""
        try:
            source = av.open(os.fspath(path), mode="r")
        except (av.error.FFmpegError, OSError) as exc:
            raise ImageError(f"the sound of '{path}' cannot be read ({av_reason(exc)})") from exc
        if not source.streams.audio:
            source.close()
            return None, None
        stream = source.streams.audio[0]
        codec = stream.codec_context.name
        if suffix not in CONTAINER_AUDIO:
            source.close()
            return None, f"the sound ({codec}) is not kept: a {suffix or 'frame folder'} output has none"
        if origin is None:
            origin = clip_origin(source.streams.video[0]) if source.streams.video else Fraction(0)
        note = None
        if codec in CONTAINER_AUDIO[suffix]:
            out_stream = output.add_stream_from_template(stream)
        else:
            target = REENCODE_TO[suffix]
            rate = stream.rate if target != "libopus" or stream.rate in _OPUS_RATES else 48000
            out_stream = cast(av.audio.stream.AudioStream, output.add_stream(target, rate=rate))
            out_stream.layout = stream.layout.name if stream.layout.nb_channels <= 2 else "stereo"
            encoder = out_stream.codec_context.name
            note = f"the sound was re-encoded from {codec} to {encoder}: {suffix} cannot hold {codec}"
        carrier = cls(
            source, stream, output, out_stream, window_start=origin + start, end=end, copy=note is None
        )
        return carrier, note

    def _items(self) -> Iterator[av.Packet[Any] | av.AudioFrame]:
        """The input's packets (copying) or decoded frames (re-encoding), in order."""
        for packet in self._source.demux(self._stream):
            if packet.pts is None:
                continue
            if self._copy:
                yield packet
            else:
                yield from packet.decode()

    def pump(self, until: Fraction) -> None:
        """Write the sound up to ``until`` seconds of output (the video written so far)."""
        limit = until if self._end is None else min(until, self._end)
        while True:
            if self._held is None:
                try:
                    self._held = next(self._pending)
                except StopIteration:
                    return
                except av.error.FFmpegError:
                    return  # damaged sound past this point: the video matters more than its tail
            item = self._held
            if item.pts is None or item.time_base is None:
                self._held = None
                continue
            time = item.pts * item.time_base - self._window_start
            if time >= limit:
                return
            self._held = None
            if time < 0:
                continue  # before the clip's part
            shift = round(self._window_start / item.time_base)
            if isinstance(item, av.Packet):
                item.pts -= shift
                if item.dts is not None:
                    item.dts -= shift
                item.stream = self._out
                self._output.mux(item)
            else:
                item.pts -= shift
                for packet in self._out.encode(item):
                    self._output.mux(packet)

    def finish(self, duration: Fraction) -> None:
        """Write the sound up to the video's ``duration``, flush the encoder and close the input."""
        try:
            self.pump(duration)
            if not self._copy:
                for packet in self._out.encode(None):
                    self._output.mux(packet)
        finally:
            self._source.close()

    def close(self) -> None:
        """Close the input (after a failure: nothing more is written)."""
        self._source.close()
