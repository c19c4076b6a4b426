"""Mixed precision: the half-precision path (CUDA's default) exercised on the CPU with bfloat16."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from artistyle import NST
from artistyle.vgg import VGGFeatures
from artistyle.weights import default_weights

from .conftest import FAST, make_content, make_style, run


def test_cpu_default_is_float32() -> None:
    assert NST(size=40, device="cpu").half_dtype is None
    assert NST(size=40, device="cpu", precision="bf16").half_dtype is torch.bfloat16


def test_half_precision_backward_matches_autograd() -> None:
    net = VGGFeatures(default_weights(), ["conv1_1", "conv2_1", "conv3_1"])
    net.half_dtype = torch.bfloat16
    x = torch.rand(1, 3, 40, 36, requires_grad=True)

    def grad() -> torch.Tensor:
        feats = net(x)
        assert all(f.dtype == torch.bfloat16 for f in feats.values())
        loss = sum(f.float().pow(2).mean() for f in feats.values())
        (g,) = torch.autograd.grad(loss, x)
        return g

    ours = grad()
    net.memory_saving = False
    reference = grad()
    assert ours.dtype == torch.float32
    assert ((ours - reference).norm() / reference.norm()).item() < 2e-2


def test_bf16_run_lowers_the_loss() -> None:
    nst = NST(size=40, device="cpu", seed=1, steps=8, precision="bf16")
    events = list(nst.paint(make_content(), make_style()))
    assert events[-1].loss < events[0].loss and torch.isfinite(nst.paint(make_content(), make_style()).run()).all()


def test_cli_precision(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.png")
    assert run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--precision", "bf16")[0] == 0
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--precision", "fp8")
    assert code == 2 and "invalid choice" in err
