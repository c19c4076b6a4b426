"""The seed's tutorial-style API: image_loader, style_model_and_losses, run_nst (artistyle.tutorial).

The differential check: the tutorial's nn.Sequential with its loss layers gives the
engine's StyleObjective loss and input gradient on the same image.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from artistyle import NST, UsageError
from artistyle.engine import Inputs
from artistyle.tutorial import ContentLossLayer, StyleLossLayer, TVLossLayer

from .conftest import SAMPLES

CONTENT, STYLE = SAMPLES / "chelsea_cat.jpg", SAMPLES / "starry_night.jpg"


def test_image_loader_gives_three_tensors_of_one_size() -> None:
    nst = NST(size=64, device="cpu", seed=4)
    content, style, start = nst.image_loader(CONTENT, STYLE)
    assert content.shape == style.shape == start.shape == (1, 3, 43, 64)
    assert all(t.dtype == torch.float32 for t in (content, style, start))
    # The content is the run's own; the start is the engine's seeded white noise.
    inputs = nst.load_images(CONTENT, STYLE)
    assert torch.equal(content, inputs.content)
    assert torch.equal(start, nst.initial_image(inputs))
    assert 0.4 < float(start.mean()) < 0.6 and float(start.std()) < 0.05


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"tv_weight": 5.0, "pooling": "avg", "padding": "reflect", "style_layer_weights": (1, 2, 3, 4, 5)},
        {"content_layers": ("conv2_2", "conv4_2"), "style_layers": ("conv1_1", "conv3_1"), "style_weight": 1e-2},
        {"style_loss": "meanstd"},
        {"style_loss": "w2", "padding": "zeros"},
        {"style_loss": "sw"},
    ],
)
def test_sequential_model_matches_the_engines_objective(settings: dict[str, object]) -> None:
    nst = NST(size=64, device="cpu", seed=4, **settings)  # type: ignore[arg-type]
    content, style, start = nst.image_loader(CONTENT, STYLE)
    model, style_losses, content_losses = nst.style_model_and_losses(content, style)
    config = nst.config
    assert isinstance(model, nn.Sequential)
    assert [type(m) for m in style_losses] == [StyleLossLayer] * len(config.style_layers)
    assert [type(m) for m in content_losses] == [ContentLossLayer] * len(config.content_layers)
    # Each loss layer sits right after the convolution it watches, and the model ends with a loss layer.
    names = [name for name, _ in model.named_children()]
    for layer in config.content_layers:
        assert names[names.index(layer) + 1] == f"content_loss_{layer}"
    for layer in config.style_layers:
        assert f"style_loss_{layer}" in names[names.index(layer) + 1 : names.index(layer) + 3]
    assert names[-1].startswith(("style_loss_", "content_loss_"))
    tv = [m for m in model.children() if isinstance(m, TVLossLayer)]

    image = (start + 0.2 * torch.rand(start.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    x = image.clone().requires_grad_(True)
    model(x)
    total = sum(m.loss for m in [*style_losses, *content_losses, *tv])
    assert isinstance(total, torch.Tensor)
    (grad,) = torch.autograd.grad(total, x)
    total = total.detach()

    objective = nst.build_model(Inputs(content, [style], None))
    terms, loss, engine_grad = objective.evaluate(image)
    assert abs(float(total) - float(loss)) <= 1e-6 * abs(float(loss))
    for module, layer in zip(content_losses, config.content_layers):
        assert torch.allclose(module.loss.detach(), terms[f"content:{layer}"], rtol=1e-5, atol=0)
    for module, layer in zip(style_losses, config.style_layers):
        assert torch.allclose(module.loss.detach(), terms[f"style:{layer}"], rtol=1e-4, atol=0)
    assert (float(tv[0].loss.detach()) if tv else 0.0) == pytest.approx(float(terms.get("tv", 0.0)), rel=1e-6)
    assert float((grad - engine_grad).norm() / engine_grad.norm()) < 1e-5


def test_tutorial_route_takes_one_style_and_no_masks(tmp_path: Path) -> None:
    nst = NST(size=48, device="cpu", seed=1)
    with pytest.raises(UsageError, match="one style image"):
        nst.image_loader(CONTENT, [STYLE, STYLE])
    mask = tmp_path / "mask.png"
    Image.new("L", (451, 300), 1).save(mask)
    masked = NST(size=48, device="cpu", seed=1, masks=(str(mask),))
    content, style = torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48)
    with pytest.raises(UsageError, match="no region masks"):
        masked.style_model_and_losses(content, style)


def test_the_seed_api_end_to_end() -> None:
    """The README's check: image_loader, style_model_and_losses and run_nst on real paths."""
    nst = NST(size=64, steps=3, device="cpu", seed=2)
    content, style, _start = nst.image_loader(str(CONTENT), str(STYLE))
    model, style_losses, content_losses = nst.style_model_and_losses(content, style)
    assert isinstance(model, nn.Sequential) and len(style_losses) == 5 and len(content_losses) == 1
    assert nst.run_nst(str(CONTENT), str(STYLE)).size == (64, 43)
