"""``OUTDIR/index.html``: a contact sheet of every job of a batch, one self-contained file.

One row per job: the content, style(s) and result as small JPEG thumbnails embedded as ``data:``
URIs (each input once, in the page's style sheet, however many jobs use it), the job's status,
seconds, settings and, for a failure, its reason. No script, no external file, every user string
escaped; written atomically.

A video job's content and result thumbnails are their first frames, read with the video extra
(without it, or for a clip FFmpeg cannot read, there is no thumbnail), and the row says "video" with
the clip's frame count (counted from its packets when opened, no decoding).
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ArtiStyleError
from ..files import atomic_write
from .jobs import Job, is_video
from .run import BatchResult, JobResult

__all__ = ["SHEET_NAME", "THUMBNAIL", "thumbnail", "thumbnail_uri", "write_contact_sheet"]

SHEET_NAME = "index.html"
THUMBNAIL = 160  # px, long edge

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.4em .6em;vertical-align:top;text-align:left}
.t{display:inline-block;width:SIZEpx;height:SIZEpx;background:center/contain no-repeat #eee}
img{max-width:SIZEpx;max-height:SIZEpx}.ok{color:#176f2c}.failed{color:#b00020}.skipped,.none{color:#666}
code{font-size:12px;white-space:pre-wrap}
""".replace("SIZE", str(THUMBNAIL))


def thumbnail_uri(path: Path) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail of an image file (None when it cannot be read)."""
    from ..images import load_image

    try:
        return jpeg_uri(load_image(path).rgb)
    except (ArtiStyleError, OSError, ValueError):
        return None


def thumbnail(path: Path, video: bool) -> tuple[str | None, int | None]:
    """The thumbnail of an image, or of a clip's first frame with the clip's frame count (None: unreadable here)."""
    if not video:
        return thumbnail_uri(path), None
    from .clips import first_frame

    found = first_frame(path)
    if found is None:
        return None, None
    rgb, frames = found
    try:
        return jpeg_uri(rgb), frames
    except (ArtiStyleError, OSError, ValueError):
        return None, frames


def jpeg_uri(rgb: np.ndarray) -> str:
    """A picture (float H x W x 3 in [0, 1], as images load) as a small JPEG ``data:`` URI."""
    from ..images import resize_long_edge, to_pil

    if max(rgb.shape[:2]) > THUMBNAIL:
        rgb = resize_long_edge(rgb, THUMBNAIL)
    buffer = io.BytesIO()
    to_pil(rgb).convert("RGB").save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_contact_sheet(outdir: Path, outcome: BatchResult, title: str = "ArtiStyle batch") -> Path:
    """Write ``OUTDIR/index.html`` for the batch's jobs and results; returns its path."""
    inputs: dict[str, tuple[str, str | None, int | None]] = {}  # path -> (css class, data URI, a clip's frames)

    def input_class(path: Path) -> tuple[str, int | None]:
        key = str(path)
        if key not in inputs:
            inputs[key] = (f"i{len(inputs)}", *thumbnail(path, is_video(path)))
        return inputs[key][0], inputs[key][2]

    rows = [row(job, result, input_class) for job, result in zip(outcome.jobs, outcome.results)]
    css = "".join(f".{cls}{{background-image:url({uri})}}\n" for cls, uri, _ in inputs.values() if uri)
    counts = ", ".join(f"{outcome.count(s)} {s}" for s in ("ok", "skipped", "failed"))
    if outcome.not_run:
        counts += f", {outcome.not_run} not run"
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}{css}</style></head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<p>{len(outcome.jobs)} jobs: {counts}.</p>\n"
        "<table>\n<thead><tr><th>content</th><th>style</th><th>result</th><th>job</th></tr></thead>\n<tbody>\n"
        + "".join(rows)
        + "</tbody></table>\n</body></html>\n"
    )
    path = outdir / SHEET_NAME
    atomic_write(path, lambda fh: fh.write(page.encode("utf-8")), f"contact sheet '{path}'")
    return path


def row(job: Job, result: JobResult | None, input_class: Callable[[Path], tuple[str, int | None]]) -> str:
    """One job's table row."""
    e = html.escape

    def tile(path: Path) -> str:
        return f'<span class="t {input_class(path)[0]}" role="img" aria-label="{e(path.name)}" ' \
               f'title="{e(str(path))}"></span>'

    status = result.status if result is not None else "none"
    label = "not run" if result is None else result.status
    if result is not None and result.status in ("ok", "skipped") and result.error is None:
        uri, _ = thumbnail(job.output, job.is_video)
        picture = f'<img src="{uri}" alt="{e(job.name)}">' if uri else "(no thumbnail)" if job.is_video else \
            "(unreadable)"
    else:
        picture = ""
    details = [f'<b>{e(job.name)}</b> <span class="{status}">{e(label)}</span>']
    if job.is_video:
        frames = input_class(job.content)[1]
        details.append("video" + (f", {frames} frames" if frames is not None else ""))
    if result is not None and result.status != "skipped":
        details.append(f"{result.seconds:.1f} s" + (f", seed {result.seed}" if result.seed is not None else ""))
    if result is not None and result.error:
        details.append(f'<span class="{status}">{e(result.error)}</span>')
    settings = job.settings()
    if settings:
        details.append(f"<code>{e(json.dumps(settings))}</code>")
    styles = " ".join(tile(s) for s in job.styles)
    return (f'<tr class="job" id="{e(job.name)}"><td>{tile(job.content)}</td><td>{styles}</td><td>{picture}</td>'
            f"<td>{'<br>'.join(details)}</td></tr>\n")
