"""A plain float64 interpreter for the fast start's two ONNX graphs: the reference the shipped session is held to.

The Magenta graphs (:mod:`artistyle.fast`) are int8 in QDQ form: every quantised tensor is
``DequantizeLinear(QuantizeLinear(x))`` and every Conv a float Conv of dequantised inputs. Read as written,
op by op, the network is a float computation with rounding at the quantisers; this module runs it so, in
torch float64, with nothing of the CPU's instruction set in it. It implements exactly the ops the two graphs
use (opset 15), only with the attributes they use, and raises :class:`Unsupported` on anything else:

QuantizeLinear (scalar scale, int8 zero point, round half to even, saturation), DequantizeLinear (scalar or
per-axis), Transpose, Conv (pads, strides, group, dilations; no auto_pad), Clip, Add, Sub, Mul,
GlobalAveragePool, Reshape, Pad (reflect), Relu, Sqrt, Reciprocal, Resize (nearest, asymmetric, floor, from
scales), Sigmoid.

Quantised values are held as float64 integers (exact: int8 and int32 fit in the 53-bit mantissa). The
``onnx`` package only reads the graph.

``saturate_int16=names`` models the bug of issue 24, onnxruntime's fused int8 Conv on x86-64 without VNNI:
there a QDQ Conv becomes a QLinearConv whose activations are shifted to uint8 (``q + 128``) and whose GEMM
sums *pairs* of u8 x s8 products in 16-bit registers with signed saturation (VPMADDUBSW) before widening to
32 bits. Each Conv named (:func:`fused_convs` gives those onnxruntime fuses) then adds its products in pairs
along the NHWC im2col order (kernel row, kernel column, channel), clamps every pair sum to [-32768, 32767]
and corrects for the zero point exactly, as the kernel does. Depthwise Convs are left exact (onnxruntime's
depthwise int8 kernel is not a pairwise GEMM). It is a model, not onnxruntime's kernel: against the real
thing (QEMU as an AVX2 EPYC-Milan) see tests/test_fast_reference.py.

``dtype=torch.float32`` runs the same interpreter in float32: the float-rounding floor of these graphs.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["OPS", "ReferenceSession", "Unsupported", "fused_convs"]

OPSET = 15
OPS = frozenset({
    "QuantizeLinear", "DequantizeLinear", "Transpose", "Conv", "Clip", "Add", "GlobalAveragePool", "Reshape", "Pad",
    "Relu", "Sub", "Mul", "Sqrt", "Reciprocal", "Resize", "Sigmoid",
})
INT8 = (-128.0, 127.0)
INT16 = (-32768.0, 32767.0)
CHUNK = 1 << 24  # pair sums held at once by the saturating Conv (float64 elements)


class Unsupported(NotImplementedError):
    """An op, attribute or value this interpreter does not implement (the graphs do not use it)."""


@dataclass(frozen=True)
class Quantised:
    """Where a dequantised tensor came from: its integers, scale and zero point (per output channel for weights)."""

    q: Tensor
    scale: Tensor
    zero_point: Tensor


@dataclass(frozen=True)
class Port:
    """What :meth:`ReferenceSession.get_inputs` gives, as onnxruntime's ``NodeArg`` does."""

    name: str
    shape: list[int]


def fused_convs(path: str | Path) -> set[str]:
    """The group-1 Convs of the graph at ``path`` that onnxruntime, at its default optimisation, fuses into int8
    QLinearConv (read from the graph it saves after optimising: the fused node keeps the Conv's name plus a
    ``_token_N`` suffix)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(folder) / "optimised.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(options.optimized_model_filepath).graph
    names = {n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"}
    fused = {re.sub(r"_token_\d+$", "", n.name) for n in optimised.node
             if n.op_type == "QLinearConv" and attributes(n).get("group", 1) == 1}
    if not fused <= names:
        raise Unsupported(f"fused Convs not named after the graph's: {sorted(fused - names)[:3]}")
    return fused


def attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def check(node: Any, given: Mapping[str, Any], allowed: Mapping[str, Any]) -> None:
    """Raise unless every attribute of ``node`` is one of ``allowed``'s names with one of its values (None: any)."""
    for name, value in given.items():
        if name not in allowed:
            raise Unsupported(f"{node.op_type} {node.name!r}: attribute {name}={value!r}")
        if allowed[name] is not None and text(value) not in allowed[name]:
            raise Unsupported(f"{node.op_type} {node.name!r}: {name}={text(value)!r}, only {allowed[name]}")


def round_half_even(x: Tensor) -> Tensor:
    return torch.round(x)  # torch rounds half to even, as QuantizeLinear asks


def reflect_indices(size: int, before: int, after: int) -> Tensor:
    """The source index of each position of a reflect-padded axis (the edge is not repeated)."""
    if before < 0 or after < 0 or max(before, after) >= size:
        raise Unsupported(f"reflect pad ({before}, {after}) of an axis of {size}")
    index = torch.arange(-before, size + after).abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


class ReferenceSession:
    """One graph, run in float64; ``run`` and ``get_inputs`` as an onnxruntime session has them."""

    def __init__(self, path: str | Path, *, saturate_int16: Collection[str] = (), dtype: torch.dtype = torch.float64):
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        versions = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        if versions.get("ai.onnx") != OPSET:
            raise Unsupported(f"opset {versions.get('ai.onnx')}, only {OPSET}")
        self.graph = model.graph
        self.saturate_int16 = frozenset(saturate_int16)
        self.dtype = dtype
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
                raise Unsupported(f"op {node.domain or 'ai.onnx'}.{node.op_type} ({node.name!r})")
        unknown = self.saturate_int16 - {node.name for node in self.graph.node if node.op_type == "Conv"}
        if unknown:
            raise ValueError(f"no Conv named {sorted(unknown)[0]!r} in {path}")
        self.constants: dict[str, Tensor] = {}
        self.types: dict[str, str] = {}
        for tensor in self.graph.initializer:
            array = numpy_helper.to_array(tensor)
            self.types[tensor.name] = array.dtype.name
            if array.dtype == np.int64:
                self.constants[tensor.name] = torch.from_numpy(array.copy())
            elif array.dtype in (np.int8, np.uint8, np.int32, np.float32):
                self.constants[tensor.name] = torch.from_numpy(array.astype(np.float64)).to(dtype)
            else:
                raise Unsupported(f"initializer {tensor.name!r} of type {array.dtype}")
        names = set(self.constants)
        self.inputs = [Port(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim])
                       for v in self.graph.input if v.name not in names]
        self.calls: dict[str, int] = {}  # op type -> nodes run (a test checks every op was exercised)
        self.saturated_convs = 0  # Convs run with the saturating pair sums in the last run
        self.provenance: dict[str, Quantised] = {}  # dequantised tensor -> its integers (for the saturating Conv)

    def get_inputs(self) -> list[Port]:
        return list(self.inputs)

    def run(self, outputs: Sequence[str] | None, feed: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Every node in the graph's (topological) order; the outputs as float64 arrays."""
        values: dict[str, Tensor] = dict(self.constants)
        for port in self.inputs:
            array = np.asarray(feed[port.name])
            if list(array.shape) != port.shape:
                raise ValueError(f"input {port.name!r}: shape {list(array.shape)}, the graph says {port.shape}")
            values[port.name] = torch.from_numpy(array.astype(np.float64)).to(self.dtype)
        self.provenance = {}
        self.saturated_convs = 0
        wanted = list(outputs) if outputs else [o.name for o in self.graph.output]
        last_use = {name: i for i, node in enumerate(self.graph.node) for name in node.input}
        for i, node in enumerate(self.graph.node):
            args = [values[name] if name else None for name in node.input]
            result = getattr(self, node.op_type)(node, attributes(node), *args)
            values[node.output[0]] = result
            self.calls[node.op_type] = self.calls.get(node.op_type, 0) + 1
            for name in node.input:  # free what no later node reads
                if name and last_use.get(name) == i and name not in self.constants and name not in wanted:
                    values.pop(name, None)
                    self.provenance.pop(name, None)
        return [values[name].numpy() for name in wanted]

    # ----------------------------------------------------------------------------------- quantisation

    def QuantizeLinear(self, node: Any, attrs: dict[str, Any], x: Tensor, scale: Tensor, zero: Tensor | None
                       ) -> Tensor:
        check(node, attrs, {"axis": None})
        if scale.dim() != 0 or zero is None or zero.dim() != 0:
            raise Unsupported(f"QuantizeLinear {node.name!r}: only a scalar scale and int8 zero point")
        if self.types.get(node.input[2]) != "int8":
            raise Unsupported(f"QuantizeLinear {node.name!r}: zero point of type {self.types.get(node.input[2])}")
        return (round_half_even(x / scale) + zero).clamp(*INT8)

    def DequantizeLinear(self, node: Any, attrs: dict[str, Any], q: Tensor, scale: Tensor, zero: Tensor | None
                         ) -> Tensor:
        check(node, attrs, {"axis": None})
        zero = torch.zeros_like(scale) if zero is None else zero
        if scale.dim() == 0:
            out = (q - zero) * scale
        elif scale.dim() == 1:
            axis = attrs.get("axis", 1) % q.dim()
            shape = [1] * q.dim()
            shape[axis] = scale.numel()
            out = (q - zero.reshape(shape)) * scale.reshape(shape)
        else:
            raise Unsupported(f"DequantizeLinear {node.name!r}: scale of shape {list(scale.shape)}")
        self.provenance[node.output[0]] = Quantised(q, scale, zero)
        return out

    # ----------------------------------------------------------------------------------- layout

    def Transpose(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {"perm": None})
        return x.permute(*attrs["perm"]).contiguous()

    def Reshape(self, node: Any, attrs: dict[str, Any], x: Tensor, shape: Tensor) -> Tensor:
        check(node, attrs, {"allowzero": (0,)})
        dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape.tolist())]
        return x.reshape(dims)

    def Pad(self, node: Any, attrs: dict[str, Any], x: Tensor, pads: Tensor, value: Tensor | None = None) -> Tensor:
        check(node, attrs, {"mode": ("reflect",)})
        if attrs.get("mode") is None:
            raise Unsupported(f"Pad {node.name!r}: mode constant")
        amounts = pads.tolist()
        n = x.dim()
        for axis in range(n):
            before, after = amounts[axis], amounts[axis + n]
            if before or after:
                x = x.index_select(axis, reflect_indices(x.shape[axis], before, after))
        return x

    def Resize(self, node: Any, attrs: dict[str, Any], x: Tensor, roi: Tensor | None = None,
               scales: Tensor | None = None, sizes: Tensor | None = None) -> Tensor:
        check(node, attrs, {"mode": ("nearest",), "coordinate_transformation_mode": ("asymmetric",),
                            "nearest_mode": ("floor",), "exclude_outside": (0,)})
        if attrs.get("mode") != b"nearest" or attrs.get("coordinate_transformation_mode") != b"asymmetric" or \
                attrs.get("nearest_mode") != b"floor":
            raise Unsupported(f"Resize {node.name!r}: only nearest, asymmetric, floor (all given)")
        if sizes is not None or scales is None or scales.numel() != x.dim():
            raise Unsupported(f"Resize {node.name!r}: only from scales, one per axis")
        for axis, scale in enumerate(scales.tolist()):
            out = int(np.floor(x.shape[axis] * scale))
            # asymmetric: x_original = x_resized / scale; nearest_mode floor; clamped to the axis.
            index = torch.floor(torch.arange(out, dtype=torch.float64) / scale).long().clamp(0, x.shape[axis] - 1)
            x = x.index_select(axis, index)
        return x

    # ----------------------------------------------------------------------------------- arithmetic

    def Conv(self, node: Any, attrs: dict[str, Any], x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        check(node, attrs, {"dilations": None, "group": None, "kernel_shape": None, "pads": None, "strides": None})
        if x.dim() != 4:
            raise Unsupported(f"Conv {node.name!r}: only 2-D")
        if list(attrs.get("kernel_shape", w.shape[2:])) != list(w.shape[2:]):
            raise Unsupported(f"Conv {node.name!r}: kernel_shape differs from the weights'")
        top, left, bottom, right = attrs.get("pads", [0, 0, 0, 0])
        stride = tuple(attrs.get("strides", [1, 1]))
        dilation = tuple(attrs.get("dilations", [1, 1]))
        group = int(attrs.get("group", 1))
        if node.name in self.saturate_int16:
            if group != 1 or node.input[0] not in self.provenance or node.input[1] not in self.provenance:
                raise Unsupported(f"Conv {node.name!r}: saturation is modelled for quantised group-1 Convs only")
            self.saturated_convs += 1
            return self.saturating_conv(node, (top, left, bottom, right), stride, dilation, b)
        padded = F.pad(x, (left, right, top, bottom))
        return F.conv2d(padded, w, b, stride=stride, dilation=dilation, groups=group)

    def saturating_conv(self, node: Any, pads: tuple[int, int, int, int], stride: tuple[int, int],
                        dilation: tuple[int, int], bias: Tensor | None) -> Tensor:
        """The Conv as the x86 u8s8 kernel without VNNI computes it: 16-bit saturating sums of product pairs."""
        act, wts = self.provenance[node.input[0]], self.provenance[node.input[1]]
        if act.scale.dim() != 0 or wts.scale.dim() != 1 or bool((wts.zero_point != 0).any()):
            raise Unsupported(f"Conv {node.name!r}: saturation modelled for per-tensor activations, symmetric weights")
        shift = 128.0  # int8 activations become uint8: q + 128, zero point + 128
        u8 = act.q + shift
        zero_u8 = float(act.zero_point) + shift
        top, left, bottom, right = pads
        n, c, _, _ = u8.shape
        m, _, kh, kw = wts.q.shape
        padded = F.pad(u8, (left, right, top, bottom), value=zero_u8)  # a real zero is the zero point
        cols = F.unfold(padded, (kh, kw), dilation=dilation, stride=stride)  # (N, C*kh*kw, L), order (c, i, j)
        length = cols.shape[2]
        cols = cols.reshape(n, c, kh * kw, length).permute(0, 2, 1, 3).reshape(n, kh * kw * c, length)  # NHWC order
        weights = wts.q.permute(0, 2, 3, 1).reshape(m, kh * kw * c)
        k = weights.shape[1]
        if k % 2:
            cols = F.pad(cols, (0, 0, 0, 1))
            weights = F.pad(weights, (0, 1))
        pairs_a = cols.reshape(n, (k + 1) // 2, 2, length)
        pairs_w = weights.reshape(m, (k + 1) // 2, 2)
        acc = torch.empty(n, m, length, dtype=torch.float64)
        step = max(1, CHUNK // (m * pairs_w.shape[1]))
        for start in range(0, length, step):
            a = pairs_a[..., start:start + step]
            sums = torch.einsum("npjl,mpj->nmpl", a, pairs_w).clamp(*INT16)
            acc[..., start:start + step] = sums.sum(2)
        acc -= zero_u8 * wts.q.sum((1, 2, 3)).reshape(1, m, 1)  # the zero point, corrected exactly (32-bit)
        out = acc * act.scale * wts.scale.reshape(1, m, 1)
        if bias is not None:
            out = out + bias.reshape(1, m, 1)
        h_out = (padded.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        return out.reshape(n, m, h_out, length // h_out)

    def Clip(self, node: Any, attrs: dict[str, Any], x: Tensor, low: Tensor | None = None,
             high: Tensor | None = None) -> Tensor:
        check(node, attrs, {})
        return x.clamp(None if low is None else float(low), None if high is None else float(high))

    def Add(self, node: Any, attrs: dict[str, Any], a: Tensor, b: Tensor) -> Tensor:
        check(node, attrs, {})
        return a + b

    def Sub(self, node: Any, attrs: dict[str, Any], a: Tensor, b: Tensor) -> Tensor:
        check(node, attrs, {})
        return a - b

    def Mul(self, node: Any, attrs: dict[str, Any], a: Tensor, b: Tensor) -> Tensor:
        check(node, attrs, {})
        return a * b

    def GlobalAveragePool(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {})
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)

    def Relu(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {})
        return x.clamp_min(0.0)

    def Sqrt(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {})
        return x.sqrt()

    def Reciprocal(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {})
        return 1.0 / x

    def Sigmoid(self, node: Any, attrs: dict[str, Any], x: Tensor) -> Tensor:
        check(node, attrs, {})
        return torch.sigmoid(x)
