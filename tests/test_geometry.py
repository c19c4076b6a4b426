"""The VGG-19 geometry API: channels, strides and receptive-field reach, and what tiling and masks derive from them."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from artistyle.errors import UsageError
from artistyle.masks import erosion_radius
from artistyle.tiling import halo_for
from artistyle.vgg import (
    CONV_NAMES,
    LAYER_NAMES,
    LAYERS,
    Normalization,
    VGGFeatures,
    VGGWeights,
    deepest_layer,
    layer_channels,
    layer_index,
    layer_reach,
    layer_stride,
    layers_through,
)

# name: (channels, stride, reach, halo, erosion radius), pinned from the code before the geometry API existed.
KNOWN = {
    "conv1_1": (64, 1, 1, 16, 1), "relu1_1": (64, 1, 1, 16, 1), "conv1_2": (64, 1, 2, 16, 1),
    "relu1_2": (64, 1, 2, 16, 1), "pool1": (64, 2, 2, 16, 1),
    "conv2_1": (128, 2, 4, 16, 1), "relu2_1": (128, 2, 4, 16, 1), "conv2_2": (128, 2, 6, 16, 2),
    "relu2_2": (128, 2, 6, 16, 2), "pool2": (128, 4, 6, 16, 1),
    "conv3_1": (256, 4, 10, 16, 2), "relu3_1": (256, 4, 10, 16, 2), "conv3_2": (256, 4, 14, 16, 2),
    "relu3_2": (256, 4, 14, 16, 2), "conv3_3": (256, 4, 18, 32, 3), "relu3_3": (256, 4, 18, 32, 3),
    "conv3_4": (256, 4, 22, 32, 3), "relu3_4": (256, 4, 22, 32, 3), "pool3": (256, 8, 22, 32, 2),
    "conv4_1": (512, 8, 30, 32, 2), "relu4_1": (512, 8, 30, 32, 2), "conv4_2": (512, 8, 38, 48, 3),
    "relu4_2": (512, 8, 38, 48, 3), "conv4_3": (512, 8, 46, 48, 3), "relu4_3": (512, 8, 46, 48, 3),
    "conv4_4": (512, 8, 54, 64, 4), "relu4_4": (512, 8, 54, 64, 4), "pool4": (512, 16, 54, 64, 2),
    "conv5_1": (512, 16, 70, 80, 3), "relu5_1": (512, 16, 70, 80, 3), "conv5_2": (512, 16, 86, 96, 3),
    "relu5_2": (512, 16, 86, 96, 3), "conv5_3": (512, 16, 102, 112, 4), "relu5_3": (512, 16, 102, 112, 4),
    "conv5_4": (512, 16, 118, 128, 4), "relu5_4": (512, 16, 118, 128, 4), "pool5": (512, 32, 118, 128, 2),
}


def test_table_and_lookups_agree_with_the_known_values() -> None:
    assert tuple(KNOWN) == LAYER_NAMES == tuple(layer.name for layer in LAYERS)
    for i, layer in enumerate(LAYERS):
        channels, stride, reach, halo, erosion = KNOWN[layer.name]
        assert layer.index == layer_index(layer.name) == i
        assert layer.channels == layer_channels(layer.name) == channels
        assert layer.stride == layer_stride(layer.name) == stride
        assert layer.reach == layer_reach(layer.name) == reach
        assert halo_for(layer.name) == halo and erosion_radius(layer.name) == erosion, layer.name
        assert layer.kind == layer.name[:4].rstrip("0123456789")
    assert layer_stride("conv1_1") == 1 and layer_reach("conv1_1") == 1
    assert layer_stride("conv5_1") == 16 and layer_reach("conv5_1") == 70 and halo_for("conv5_1") == 80
    assert tuple(layer.name for layer in LAYERS if layer.kind == "conv") == CONV_NAMES and len(CONV_NAMES) == 16


def test_layer_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LAYERS[0].channels = 3  # type: ignore[misc]


def test_reach_is_half_the_receptive_field_beyond_the_stride_cell() -> None:
    # The textbook recurrence: a k x k window at jump j widens the receptive field by (k - 1) j.
    size, jump = 1, 1
    for layer in LAYERS:
        if layer.kind == "conv":
            size += 2 * jump
        elif layer.kind == "pool":
            size, jump = size + jump, jump * 2
        assert layer.stride == jump and size == layer.stride + 2 * layer.reach, layer.name


def test_deepest_and_layers_through() -> None:
    assert deepest_layer(["conv4_2", "conv1_1", "pool2", "conv5_1", "relu3_1"]) == "conv5_1"
    assert [layer.name for layer in layers_through("pool1")] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert layers_through("pool5") == LAYERS


def test_unknown_layer_is_a_usage_error_with_a_suggestion() -> None:
    for lookup in (layer_stride, layer_reach, layer_channels, layer_index):
        with pytest.raises(UsageError, match="did you mean conv4_2"):
            lookup("conv4-2")


def _averaging_weights() -> VGGWeights:
    """One-channel averaging convolutions: VGG-19's geometry at a tiny cost.

    Positive everywhere, so no gradient inside the receptive field cancels or vanishes.
    """
    convs = {name: (torch.full((1, 3 if i == 0 else 1, 3, 3), 1.0 / 9), torch.zeros(1)) for i, name in enumerate(CONV_NAMES)}
    return VGGWeights(convs=convs, normalization=Normalization.imagenet(), name="averaging", sha256="0" * 64)


@pytest.mark.parametrize("name", ["conv1_1", "conv2_1", "pool2", "conv3_1", "conv4_2", "conv5_1"])
def test_reach_is_the_receptive_field_of_the_network(name: str) -> None:
    # One feature's input gradient is nonzero exactly over its stride cell widened by the reach on each side.
    stride, reach = layer_stride(name), layer_reach(name)
    net = VGGFeatures(_averaging_weights(), [name], pooling="avg").double()
    size = stride * (2 * (-(-reach // stride)) + 4)
    image = (0.5 + torch.rand(1, 3, size, size, dtype=torch.float64)).requires_grad_(True)  # positive after ImageNet
    features = net(image)[name]
    p = features.shape[-1] // 2
    (grad,) = torch.autograd.grad(features[0, 0, p, p], image)
    rows = grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    cols = grad[0].abs().sum(dim=(0, 1)).nonzero().flatten()
    cell = (p * stride - reach, (p + 1) * stride + reach - 1)
    assert (rows.min().item(), rows.max().item()) == cell and (cols.min().item(), cols.max().item()) == cell
