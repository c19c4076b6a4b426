"""The studio's images: uploads kept as their bytes and decoded in memory, the bundled samples, and the
previews and results a run makes.

Nothing here touches the disk (the samples are read from the installed package).
An upload is decoded from its bytes each time a run needs it; the library takes
PIL images and loaded images as well as paths, so a mask or a fine style is
handed over as an image, named by the client's file name for the library's
messages. A file name from the client only ever labels an image in messages.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import ImageError
from ..images import LoadedImage, encode_image, load_image, tensor_to_array, to_pil
from ..metadata import METADATA_KEY, image_metadata

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

    from ..config import StyleConfig
    from ..painting import Painting

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_UPLOAD_BYTES",
    "PREVIEW_EDGE",
    "StoredImage",
    "bundled_samples",
    "client_name",
    "decode_upload",
    "first_guess_png",
    "open_upload",
    "painted_record",
    "preview_jpeg",
    "result_png",
]

DEFAULT_MAX_UPLOAD_BYTES = 20_000_000  # per image; a 40 MP JPEG from a camera fits
DEFAULT_MAX_PIXELS = 40_000_000  # per image; decoded to float32 that is 480 MB
PREVIEW_EDGE = 1024  # long edge of the live preview (JPEG); the result keeps its full size
# What each bundled sample is: a photo to paint, or a painting whose style to take (the page offers each in its list).
SAMPLE_KINDS = {"astronaut.jpg": "photo", "chelsea_cat.jpg": "photo", "great_wave.jpg": "painting",
                "starry_night.jpg": "painting"}
# What the studio reads, in words a user can act on (the library reads more: BMP, GIF).
READABLE = "use a PNG, JPEG, WebP or TIFF file"


def client_name(name: str | None, default: str = "image") -> str:
    """A file name from the client, fit for messages only: last component, printable, short."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name[:60] + "...") if len(name) > 63 else (name or default)


def open_upload(data: bytes, name: str, role: str, max_pixels: int | None = None) -> Image.Image:
    """``data`` opened as a PIL image (header only) named ``name``; its pixel count checked against ``max_pixels``.

    The image's ``filename`` is the client's name, which the library's
    messages quote ("mask 'regions.png' is 10x10 px; ...").
    """
    label = f"{role} '{name}'"
    if not data:
        raise ImageError(f"{label} is empty (0 bytes)")
    with warnings.catch_warnings():
        # Pillow's own bomb guard fires in load_image with the library's message; here
        # only the header is read, so its size can be compared with the studio's limit.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            img = None
        except Exception as exc:  # UnidentifiedImageError and a damaged header alike
            raise ImageError(f"{label} is not an image the studio can read; {READABLE}") from exc
    if img is None or (max_pixels is not None and img.width * img.height > max_pixels):
        limit = f"the studio's limit of {max_pixels or Image.MAX_IMAGE_PIXELS:,} pixels"
        if img is None:
            raise ImageError(f"{label} has too many pixels, far over {limit}")
        raise ImageError(f"{label} is {img.width}x{img.height} = {img.width * img.height:,} pixels, over {limit}")
    img.filename = name  # names the image in the library's messages; never opened as a path
    return img


def decode_upload(data: bytes, name: str, role: str, max_pixels: int | None = None) -> LoadedImage:
    """``data`` fully decoded by the library's loader (sRGB floats), with its checks and the pixel limit."""
    return load_image(open_upload(data, name, role, max_pixels), role=role)


@dataclass(frozen=True)
class StoredImage:
    """An image as uploaded (its bytes) and what was learnt when it was checked."""

    id: str
    name: str
    data: bytes
    width: int
    height: int
    sample: bool = False
    kind: str = ""  # a sample's: "photo" or "painting" (SAMPLE_KINDS)
    # Its SHA-256, so that a page can tell the same image added twice (made once, on first use).
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", hashlib.sha256(self.data).hexdigest())

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as :class:`~artistyle.images.LoadedImage` has it."""
        return self.width, self.height

    @property
    def path(self) -> str:
        """The name the client gave, which messages quote where the command line quotes a path."""
        return self.name

    def decode(self, role: str) -> LoadedImage:
        """The image in the library's form (sRGB floats), decoded from memory."""
        return decode_upload(self.data, self.name, role)

    def picture(self, role: str) -> Image.Image:
        """The image decoded from memory in its own mode (a palette mask stays a palette), named by the client."""
        img = open_upload(self.data, self.name, role)
        try:
            img.load()  # now, so that damaged data is an ImageError here and not an OSError in the library
        except Exception as exc:
            raise ImageError(f"{role} '{self.name}' cannot be decoded (damaged or truncated data)") from exc
        return img

    @property
    def media_type(self) -> str:
        """The MIME type of its format, from the header (a sample or an upload that was checked)."""
        try:
            with Image.open(io.BytesIO(self.data)) as img:
                return Image.MIME.get(img.format or "", "application/octet-stream")
        except Exception:
            return "application/octet-stream"

    def info(self) -> dict[str, Any]:
        info = {"id": self.id, "name": self.name, "width": self.width, "height": self.height, "bytes": len(self.data),
                "sha256": self.digest}
        return {**info, "kind": self.kind} if self.kind else info


def bundled_samples() -> dict[str, StoredImage]:
    """The sample images shipped in the package, by id (``sample:NAME``)."""
    samples = {}
    folder = resources.files("artistyle") / "samples"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.lower().endswith((".jpg", ".jpeg", ".png")):
            data = entry.read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
            sid = f"sample:{entry.name}"
            samples[sid] = StoredImage(sid, entry.name, data, width, height, sample=True,
                                       kind=SAMPLE_KINDS.get(entry.name, "photo"))
    return samples


def preview_jpeg(image: Tensor) -> bytes:
    """A painting's image (its :attr:`~artistyle.painting.Painting.image` so far, or its start image) as a JPEG
    preview, at most PREVIEW_EDGE px."""
    picture = to_pil(tensor_to_array(image))
    picture.thumbnail((PREVIEW_EDGE, PREVIEW_EDGE), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def result_png(painting: Painting, text: dict[str, str] | None = None) -> bytes:
    """The result as the command line saves it (sRGB profile, the content's alpha put back, the ``text``
    chunks: see :func:`artistyle.metadata.image_metadata`), in memory."""
    return encode_image(tensor_to_array(painting.image), "png", alpha=painting.alpha, text=text, straight=True)


def first_guess_png(image: Tensor, alpha: np.ndarray | None, config: StyleConfig, seed: int) -> bytes:
    """A fast start's first guess (:meth:`~artistyle.painting.Painting.start_image`, at the output size) as a PNG,
    with the content's alpha and the run's settings record, as a result has them."""
    return encode_image(tensor_to_array(image), "png", alpha=alpha, text=image_metadata(config, seed), straight=True)


def painted_record(data: bytes) -> dict[str, Any] | None:
    """The settings record (:func:`artistyle.metadata.image_metadata`) of a PNG painted by ArtiStyle, from its
    bytes: ``{"artistyle": version, "seed", "settings"}``; None for any other image.

    Read from the chunks before the pixels, without decoding them (ArtiStyle writes its record there).
    """
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            raw = img.info.get(METADATA_KEY)
        record = json.loads(raw) if isinstance(raw, str) else None
    except Exception:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return None
    return record
