"""Where L-BFGS keeps its history (issue 26, item 3): fp32, bf16 (half the memory) or memory-mapped files on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from artistyle import NST
from artistyle.memory import estimate_peak, plan_memory
from artistyle.optim import LBFGS

from .conftest import make_content, make_style, run

SETTINGS = {"size": 64, "steps": 12, "scales": 1, "seed": 3, "device": "cpu"}
LAYERS = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


def painted(**extra: object) -> tuple[torch.Tensor, float]:
    painting = NST(**SETTINGS, **extra).paint(make_content(), make_style())
    painting.run()
    return painting.raw_image, painting.history[-1]["loss"]


def test_history_on_disk_is_the_same_painting_and_bf16_a_close_one() -> None:
    fp32, loss = painted()
    disk, _ = painted(lbfgs_storage="disk")
    assert torch.equal(fp32, disk)  # float32 files: the same numbers, paged by the operating system
    half, half_loss = painted(lbfgs_storage="bf16")
    assert not torch.equal(fp32, half) and half_loss < 1.2 * loss  # rounded pairs: another path, as far down


@pytest.mark.parametrize("storage", ["bf16", "disk"])
def test_a_run_with_a_stored_history_resumes_bit_for_bit(storage: str) -> None:
    settings = {**SETTINGS, "lbfgs_storage": storage}
    whole = NST(**settings).paint(make_content(), make_style())
    whole.run()
    first = NST(**settings).paint(make_content(), make_style())
    for event in first:
        if event.iteration == 5:
            first.stop()
    again = NST(**settings).paint(make_content(), make_style())
    again.load_state_dict(first.state_dict())
    again.run()
    assert torch.equal(again.raw_image, whole.raw_image)


def test_bf16_pairs_take_half_the_memory_and_disk_pairs_none() -> None:
    x = torch.zeros(1, 3, 32, 32)
    for storage, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("disk", torch.float32)):
        optimizer = LBFGS(x.clone(), storage=storage)  # type: ignore[arg-type]
        target = torch.rand_like(x)
        for _ in range(4):
            optimizer.step(lambda o=optimizer, t=target: ((o.param - t).pow(2).sum(), 2 * (o.param - t)))
        assert optimizer.steps_s and all(s.dtype == dtype for s in optimizer.steps_s)
    args = (1024, 1024, LAYERS)
    full, half = (estimate_peak(*args, history=20, storage=s) for s in ("fp32", "bf16"))
    assert full - half == pytest.approx(1.3 * 20 * 3 * 1024 * 1024 * 4, rel=1e-6)  # 20 of the 40 vectors' bytes


def test_the_planner_keeps_fp32_when_it_fits_and_says_bf16_or_disk_when_only_they_fit() -> None:
    kwargs = {"history": 20, "optimizer": "lbfgs", "device": torch.device("cpu"), "tile": 256}
    roomy = plan_memory(1024, 1024, LAYERS, max_memory=2**40, **kwargs)  # type: ignore[arg-type]
    assert roomy.storage == "fp32" and roomy.history == 20
    bf16_need = estimate_peak(1024, 1024, LAYERS, history=5, tile=256, storage="bf16")
    assert estimate_peak(1024, 1024, LAYERS, history=5, tile=256) > bf16_need
    tight = plan_memory(1024, 1024, LAYERS, max_memory=bf16_need, **kwargs)  # type: ignore[arg-type]
    assert tight.storage == "bf16"
    disk_need = estimate_peak(1024, 1024, LAYERS, history=5, tile=256, storage="disk")
    assert plan_memory(1024, 1024, LAYERS, max_memory=disk_need, **kwargs).storage == "disk"  # type: ignore[arg-type]
    with pytest.raises(Exception, match="needs about"):
        plan_memory(1024, 1024, LAYERS, max_memory=bf16_need, storage="fp32", **kwargs)  # type: ignore[arg-type]


def test_the_command_line_says_where_the_history_went(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    make_content().save(content)
    make_style().save(style)
    w, h = 64, 51  # make_content() is 80 x 64
    need = estimate_peak(w, h, LAYERS, history=5, tile=None, storage="bf16")
    assert estimate_peak(w, h, LAYERS, history=5, tile=None) > need
    code, _, err = run(capsys, str(content), str(style), "-o", str(tmp_path / "o.png"), "--size", "64", "--steps",
                       "2", "--scales", "1", "--device", "cpu", "--max-memory", str(need))
    assert code == 0, err
    assert "memory: the L-BFGS history is kept in bfloat16 (half the memory)" in err


def test_a_disk_history_leaves_no_files_behind_as_pairs_are_dropped() -> None:
    """Each pair's file is unlinked once mapped: a long run must not leave one file per iteration on disk."""
    import os

    x = torch.zeros(1, 3, 16, 16)
    optimizer = LBFGS(x, history=3, storage="disk")
    target = torch.rand_like(x)
    for _ in range(30):
        optimizer.step(lambda: ((optimizer.param - target).pow(2).sum(), 2 * (optimizer.param - target)))
    assert len(optimizer.steps_s) == 3 and optimizer._folder is not None
    assert os.listdir(optimizer._folder.name) == []
