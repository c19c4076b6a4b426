"""Exact tiled evaluation: same targets, loss and gradient as the whole image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from artistyle import NST, StyleConfig
from artistyle.memory import estimate_peak, plan_memory
from artistyle.objective import StyleObjective
from artistyle.tiling import halo_for, tiles
from artistyle.vgg import layer_stride
from artistyle.weights import default_weights

from .conftest import FAST, make_content, make_style, run


def test_halo_and_stride() -> None:
    assert layer_stride("conv5_1") == 16 and halo_for("conv5_1") == 80  # reach 70 px, on the 16 px grid
    assert layer_stride("conv2_1") == 2 and layer_stride("pool2") == 4 and halo_for("conv1_1") == 16


@pytest.mark.parametrize("height, width, size", [(211, 190, 48), (64, 64, 64), (100, 300, 128), (33, 47, 16)])
def test_owned_blocks_cover_the_image_once_and_crops_are_aligned(height: int, width: int, size: int) -> None:
    cover = torch.zeros(height, width, dtype=torch.int32)
    halo = 80
    for t in tiles(height, width, size, halo):
        cover[t.y0 : t.y1, t.x0 : t.x1] += 1
        assert t.cy0 % 16 == 0 and t.cx0 % 16 == 0
        assert t.cy0 <= t.y0 and t.cy1 >= t.y1 and t.cx0 <= t.x0 and t.cx1 >= t.x1
        assert t.cy0 == max(0, t.y0 - halo) and t.cy1 == min(height, t.y1 + halo)
    assert bool((cover == 1).all())


@pytest.mark.parametrize(
    "settings",
    [
        {},  # the paper's layers, down to conv5_1
        {"content_layers": ("conv2_2",), "style_layers": ("conv1_1", "relu2_1", "pool2"), "tv_weight": 0.5},
        {"pooling": "avg", "style_layers": ("conv3_1", "conv1_2")},
        {"padding": "reflect"},
        {"padding": "replicate", "style_layers": ("conv1_1", "conv2_1")},
    ],
)
@pytest.mark.slow
def test_tiled_loss_and_gradient_equal_untiled(settings: dict) -> None:
    config = StyleConfig(**settings)
    content, style, image = torch.rand(1, 3, 211, 190), torch.rand(1, 3, 150, 170), torch.rand(1, 3, 211, 190)
    whole = StyleObjective(default_weights(), config)
    tiled = StyleObjective(default_weights(), config, tile=48)
    for objective in (whole, tiled):
        objective.set_content(content)
        objective.set_style(style)
    for name in whole.style_layers:
        a, b = whole.style_losses[name].target, tiled.style_losses[name].target
        assert ((a - b).norm() / a.norm()).item() < 1e-5, name
    for name in whole.content_layers:
        # Relative, as for the Gram targets: elementwise allclose failed on a CPU whose convolution kernels
        # round differently (relative error 1.5e-7..4e-7 over the whole map, up to 0.014 on values of 13420).
        a, b = whole.content_losses[name].target, tiled.content_losses[name].target
        assert ((a - b).norm() / a.norm()).item() < 1e-5, name
    terms, _loss, grad = whole.evaluate(image)
    tiled_terms, _tiled_loss, tiled_grad = tiled.evaluate(image)
    no_grad_terms = tiled.terms(image)  # what a run reports at its end, also tile by tile
    assert all(abs(no_grad_terms[k] - terms[k]).item() <= 1e-4 * abs(terms[k]).item() for k in terms)
    assert set(terms) == set(tiled_terms)
    for key in terms:
        assert abs(terms[key] - tiled_terms[key]).item() <= 1e-4 * abs(terms[key]).item(), key
    assert ((grad - tiled_grad).norm() / grad.norm()).item() < 1e-3


@pytest.mark.slow
def test_tiled_run_follows_the_untiled_one() -> None:
    def paint(tile: int | None) -> torch.Tensor:
        nst = NST(size=96, device="cpu", seed=3, steps=3, scales=1, tile=tile)
        return nst.paint(make_content((96, 80)), make_style()).run()

    assert (paint(None) - paint(32)).abs().max().item() < 1e-3


def test_planner_tiles_when_the_whole_image_does_not_fit() -> None:
    layers = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    untiled = estimate_peak(2048, 2048, layers, history=5)
    budget = untiled - 2**30
    plan = plan_memory(2048, 2048, layers, history=20, optimizer="lbfgs", device=torch.device("cpu"),
                       max_memory=budget)
    assert plan.tile is not None and plan.estimate <= budget
    forced = plan_memory(256, 256, layers, history=20, optimizer="lbfgs", device=torch.device("cpu"),
                         max_memory=8 * 2**30, tile=64)
    assert forced.tile == 64


def test_cli_tile(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.png")
    code, stdout, err = run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--tile", "32", "--json")
    assert code == 0, err
    assert json.loads(stdout)["tile"] == 32
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--tile", "8")
    assert code == 2 and "tile must be at least 16" in err


def test_objective_takes_tile_and_half_dtype_in_its_constructor() -> None:
    objective = StyleObjective(default_weights(), StyleConfig(), tile=64, half_dtype=torch.bfloat16)
    assert objective.tile == 64 and objective.features.half_dtype is torch.bfloat16
    objective.set_anchor(torch.rand(1, 3, 32, 32))
    assert objective.anchor_features is not None and objective.anchor_features.half_dtype is torch.bfloat16
    plain = StyleObjective(default_weights(), StyleConfig())
    assert plain.tile is None and plain.features.half_dtype is None
