"""The frozen VGG-19 feature network: its geometry, its input transform and its forward/backward.

Layers are named as in the paper: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1,
conv2_1, ...`` up to ``pool5``. ``conv*`` is the convolution's output before its
ReLU. :class:`VGGFeatures` is cut after the deepest layer asked for and returns
the requested layers of one forward pass as a dict.

Geometry (one table, :data:`LAYERS`, read through :func:`layer_channels`,
:func:`layer_stride`, :func:`layer_reach` and :func:`layer_index`): every conv is
3x3 with padding 1, every pool 2x2 with stride 2. A layer's *stride* is the
product of the pools up to it (16 at conv5_1); its *reach* is how far, in input
pixels, the receptive field of one feature extends past the feature's own
stride cell: each conv adds one step of the current stride (70 px at conv5_1).
Tiling (halos), the memory planner and the region masks (erosion) use them.

The weights (:mod:`artistyle.weights` loads them) carry their own input
normalisation (:attr:`VGGWeights.normalization`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .conv_padding import padded_conv_input_grad
from .errors import UsageError
from .settings import short_repr

__all__ = [
    "CONV_NAMES",
    "LAYERS",
    "LAYER_NAMES",
    "Layer",
    "Normalization",
    "VGGFeatures",
    "VGGWeights",
    "check_layer_names",
    "deepest_layer",
    "layer_channels",
    "layer_index",
    "layer_reach",
    "layer_stride",
    "layers_through",
    "normalize",
]

# VGG-19 configuration "E": output channels of the convolutions in each block.
BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of VGG-19: ``kind`` is conv, relu or pool; ``index`` its position in :data:`LAYERS`.

    ``stride``: total pooling stride up to and including this layer; ``reach``: how far
    (input px) a feature's receptive field reaches past its own stride cell.
    """

    name: str
    kind: str
    channels: int
    index: int
    stride: int
    reach: int


def _layer_table() -> tuple[Layer, ...]:
    """Every layer in order, with its geometry: each 3x3 conv adds one ``stride`` of reach, each pool doubles it."""
    table: list[tuple[str, str, int, int, int]] = []
    stride, reach = 1, 0
    for b, widths in enumerate(BLOCKS, start=1):
        for i, width in enumerate(widths, start=1):
            reach += stride
            table.append((f"conv{b}_{i}", "conv", width, stride, reach))
            table.append((f"relu{b}_{i}", "relu", width, stride, reach))
        stride *= 2
        table.append((f"pool{b}", "pool", widths[-1], stride, reach))
    return tuple(Layer(name, kind, channels, i, s, r) for i, (name, kind, channels, s, r) in enumerate(table))


LAYERS: tuple[Layer, ...] = _layer_table()
LAYER_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS)
CONV_NAMES: tuple[str, ...] = tuple(layer.name for layer in LAYERS if layer.kind == "conv")
_BY_NAME: dict[str, Layer] = {layer.name: layer for layer in LAYERS}


def check_layer_names(names: Iterable[str], what: str = "layer") -> list[str]:
    """Return ``names`` as a list, or raise :class:`UsageError` with a "did you mean"."""
    out = list(names)
    if not out:
        raise UsageError(f"no {what}s given")
    for name in out:
        if name not in _BY_NAME:
            # The name may come from a web page: quote a short prefix, and match only short names.
            close = difflib.get_close_matches(name, LAYER_NAMES, n=1) if len(name) <= 40 else []
            hint = f"; did you mean {close[0]}?" if close else " (see --list-layers)"
            raise UsageError(f"unknown {what} {short_repr(name)}{hint}")
    return out


def _layer(name: str) -> Layer:
    try:
        return _BY_NAME[name]
    except KeyError:
        check_layer_names([name])  # raises UsageError with a suggestion
        raise


def layer_index(name: str) -> int:
    """Position of ``name`` in :data:`LAYERS` (conv1_1 is 0)."""
    return _layer(name).index


def layer_channels(name: str) -> int:
    """Number of feature channels at ``name`` (64 ... 512)."""
    return _layer(name).channels


def layer_stride(name: str) -> int:
    """Total pooling stride of the network up to and including ``name`` (1 at conv1_1, 16 at conv5_1)."""
    return _layer(name).stride


def layer_reach(name: str) -> int:
    """How far (input px) a feature's receptive field at ``name`` reaches past its stride cell (70 at conv5_1)."""
    return _layer(name).reach


def deepest_layer(names: Iterable[str]) -> str:
    """The layer of ``names`` that comes last in the network."""
    return max(names, key=layer_index)


def layers_through(name: str) -> tuple[Layer, ...]:
    """The layers from conv1_1 up to and including ``name``."""
    return LAYERS[: layer_index(name) + 1]


def normalize(image: Tensor, mean: Tensor, std: Tensor, channel_order: Sequence[int]) -> Tensor:
    """Map an RGB image in [0, 1] to a network's input: ``(x[:, order] - mean) / std``."""
    if list(channel_order) != [0, 1, 2]:
        image = image[:, list(channel_order)]
    return (image - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


class Normalization(nn.Module):
    """The input transform a set of VGG weights expects, as a module.

    ``mean`` and ``std`` are per channel *after* reordering, in units of the
    [0, 1] image. The original Caffe VGG-19 wants BGR in 0..255 minus the
    ImageNet mean: ``order=(2, 1, 0)``, ``mean=[103.939, 116.779, 123.68]/255``,
    ``std=1/255``. torchvision's weights want RGB with ImageNet mean and std.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], channel_order: Sequence[int] = (0, 1, 2)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32))
        self.channel_order = tuple(int(i) for i in channel_order)

    @classmethod
    def caffe(cls) -> Normalization:
        """BGR, 0..255, minus the mean pixel [103.939, 116.779, 123.68] (Simonyan & Zisserman)."""
        return cls([103.939 / 255, 116.779 / 255, 123.68 / 255], [1 / 255] * 3, (2, 1, 0))

    @classmethod
    def imagenet(cls) -> Normalization:
        """RGB with ImageNet mean and standard deviation (torchvision's convention)."""
        return cls([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

    def forward(self, image: Tensor) -> Tensor:
        return normalize(image, self.mean, self.std, self.channel_order)

    def extra_repr(self) -> str:
        return f"order={self.channel_order}, mean={self.mean.tolist()}, std={self.std.tolist()}"


@dataclass(frozen=True)
class VGGWeights:
    """Convolution weights of a VGG-19 plus the input transform they expect.

    ``convs`` maps each conv name (``conv1_1`` ...) to ``(weight, bias)`` with
    weight shape ``(out, in, 3, 3)``. :func:`artistyle.weights.load_weights` makes them.
    """

    convs: Mapping[str, tuple[Tensor, Tensor]]
    normalization: Normalization
    name: str
    sha256: str

    def __repr__(self) -> str:  # the tensors are too long to print
        return f"VGGWeights(name={self.name!r}, sha256={self.sha256[:12]}...)"


_PADDING_MODES: dict[str, Literal["zeros", "reflect", "replicate"]] = {
    "zeros": "zeros", "reflect": "reflect", "replicate": "replicate"
}


class VGGFeatures(nn.Module):
    """Frozen VGG-19 up to the deepest requested layer, returning named features.

    ``forward(image)`` takes an RGB image in [0, 1] of shape ``(B, 3, H, W)``,
    applies the weights' own normalisation and returns ``{name: features}`` for
    ``layers``. ReLUs run in place except where their input is returned, which
    keeps the memory of a forward + backward pass near the minimum. ``half_dtype``
    (bfloat16 or float16) runs the convolutions in mixed precision; None: float32.
    """

    def __init__(
        self, weights: VGGWeights, layers: Iterable[str], pooling: str = "max", padding: str = "zeros",
        *, half_dtype: torch.dtype | None = None,
    ):
        super().__init__()
        self.layers = tuple(dict.fromkeys(check_layer_names(layers)))
        if pooling not in ("max", "avg"):
            raise UsageError(f"unknown pooling '{pooling}'; choose max or avg")
        self.pooling = pooling
        if padding not in _PADDING_MODES:
            raise UsageError(f"unknown padding '{padding}'; choose zeros, reflect or replicate")
        # VGG was trained with zero padding, which leaves a frame along a painting's borders (darker
        # mostly at the top and left: VGG's kernels are not mirror-symmetric). Reflect padding (the
        # default, StyleConfig.padding) shows the network a border that looks like the picture; replicate
        # counts the border pixel twice and leaves a light line (docs/benchmarks.md, "Edges").
        self.padding = padding
        # Hand-written input-gradient backward (half the memory); False uses plain autograd.
        self.memory_saving = True
        # bfloat16 or float16 for the convolutions (mixed precision on a GPU); None: float32.
        self.half_dtype = half_dtype
        self.normalization = Normalization(
            weights.normalization.mean.tolist(), weights.normalization.std.tolist(), weights.normalization.channel_order
        )
        # (name, kind) of every layer the forward runs, cut after the deepest one asked for.
        self._plan = tuple((layer.name, layer.kind) for layer in layers_through(deepest_layer(self.layers)))
        self.convs = nn.ModuleDict()
        for name, kind in self._plan:
            if kind == "conv":
                w, b = weights.convs[name]
                conv = nn.Conv2d(
                    w.shape[1], w.shape[0], kernel_size=3, padding=1, padding_mode=_PADDING_MODES[padding],
                    device="meta",
                )
                # Share the cached tensors instead of copying them: one copy of the weights however many models.
                conv.weight = nn.Parameter(w.to(memory_format=torch.channels_last), requires_grad=False)
                conv.bias = nn.Parameter(b, requires_grad=False)
                self.convs[name] = conv
        # Channels-last lets oneDNN / cuDNN skip layout reorders (faster on CPU; docs/benchmarks.md).
        self.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs
        self.eval()
        self.requires_grad_(False)

    @property
    def deepest(self) -> str:
        """The last layer the forward runs (the deepest one asked for)."""
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
                outputs: tuple[Tensor, ...] = _InputGradientVGG.apply(x, self)  # type: ignore[no-untyped-call]
                return dict(zip(self.layers, outputs))
            return dict(zip(self.layers, _run_layers(self, x, kept=None)))


def border_mode(padding: str, height: int, width: int) -> str:
    """The padding a convolution's ``height x width`` input gets: ``padding``, except that reflection needs two
    pixels on a side, so a map one pixel high or wide (a small image's deepest layers) is padded by replication,
    reflection's limit there."""
    return "replicate" if padding == "reflect" and min(height, width) < 2 else padding


def _conv(net: VGGFeatures, name: str, x: Tensor) -> Tensor:
    """The convolution ``name`` on ``x``, padded by one pixel as :func:`border_mode` says."""
    conv: nn.Conv2d = net.convs[name]  # type: ignore[assignment]  # a Conv2d, always
    if net.padding == "zeros":
        zero_padded: Tensor = conv(x)
        return zero_padded
    padded = F.pad(x, [1, 1, 1, 1], mode=border_mode(net.padding, x.shape[-2], x.shape[-1]))
    return F.conv2d(padded, conv.weight, conv.bias)


def _run_layers(net: VGGFeatures, x: Tensor, kept: dict[str, Tensor] | None) -> list[Tensor]:
    """The forward pass; returns the requested layers in ``net.layers`` order.

    With ``kept`` given, it records per conv the one tensor the backward pass
    needs there: the ReLU output, or the conv output when that is requested.
    ReLUs run in place except where their input is returned.
    """
    out: dict[str, Tensor] = {}
    conv = ""
    for name, kind in net._plan:
        if kind == "conv":
            x = _conv(net, name, x)
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
    def forward(ctx: Any, x: Tensor, net: VGGFeatures) -> tuple[Tensor, ...]:
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
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, None]:
        net: VGGFeatures = ctx.net
        kept = dict(zip(ctx.kept_names, ctx.saved_tensors))
        incoming = {name: g for name, g in zip(net.layers, grads) if g is not None}
        plan = net._plan
        g: Tensor | None = None
        owned = False  # whether g is our own buffer (safe to add into in place)
        for i in range(len(plan) - 1, -1, -1):
            name, kind = plan[i]
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
                weight: Tensor = net.convs[name].weight  # type: ignore[assignment]  # a Conv2d's, always
                # The backward runs outside autocast: match the gradient's (half) precision by hand.
                weight = weight if weight.dtype == g.dtype else weight.to(g.dtype)
                if net.padding == "zeros":
                    g = F.conv_transpose2d(g, weight, padding=1)
                else:
                    g = padded_conv_input_grad(g, weight, border_mode(net.padding, g.shape[-2], g.shape[-1]))
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
