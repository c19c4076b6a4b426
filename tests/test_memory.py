"""Memory planning: the estimate, the history shrink, and failing early with a size that fits."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from artistyle import UsageError, memory
from artistyle.memory import MIN_HISTORY, available_memory, estimate_peak, parse_bytes, plan_memory

from .conftest import FAST, run

LAYERS = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CPU = torch.device("cpu")


@pytest.mark.parametrize("text, value", [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5GB", int(1.5 * 2**30)),
                                         ("2gib", 2 * 2**30), ("1000", 1000)])
def test_parse_bytes(text: str, value: int) -> None:
    assert parse_bytes(text) == value


def test_parse_bytes_rejects_nonsense() -> None:
    with pytest.raises(UsageError, match="invalid memory size"):
        parse_bytes("12X")


def test_estimate_grows_with_pixels_and_history() -> None:
    small = estimate_peak(256, 256, LAYERS, history=20)
    large = estimate_peak(512, 512, LAYERS, history=20)
    assert 3.0 < (large - 350 * 2**20) / (small - 350 * 2**20) < 4.1  # linear in pixels beyond the base
    image = 3 * 512 * 512 * 4
    more = estimate_peak(512, 512, LAYERS, history=30)
    assert more - large == pytest.approx(1.3 * 20 * image, rel=0.01)
    assert estimate_peak(512, 512, ("conv1_1",), history=20) < large  # a shallower network needs less


def test_planner_keeps_history_when_it_fits_and_shrinks_it_when_not() -> None:
    roomy = plan_memory(512, 512, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=8 * 2**30)
    assert roomy.history == 20
    tight_budget = estimate_peak(512, 512, LAYERS, history=MIN_HISTORY) + 2**20
    tight = plan_memory(512, 512, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=tight_budget)
    assert tight.history == MIN_HISTORY and tight.estimate <= tight_budget


def test_planner_fails_early_and_names_a_size_that_fits() -> None:
    budget = 1 * 2**30
    with pytest.raises(UsageError, match=r"needs about .* the largest size that fits is about --size (\d+)") as info:
        plan_memory(4096, 3072, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=budget)
    size = int(re.search(r"--size (\d+)", str(info.value)).group(1))  # type: ignore[union-attr]
    w, h = size, round(size * 3 / 4)
    # The suggestion is for the smallest tile, history and history store (on disk) the planner would use.
    assert estimate_peak(w, h, LAYERS, history=MIN_HISTORY, tile=256, storage="disk") <= budget
    assert estimate_peak(w + 16, round((size + 16) * 3 / 4), LAYERS, history=MIN_HISTORY, tile=256,
                         storage="disk") > budget


def test_estimate_counts_the_anchor_pass() -> None:
    image = 3 * 2048 * 1536 * 4
    plain = estimate_peak(2048, 1536, LAYERS, history=20)
    # Untiled, the main pass is the larger one: the anchor adds only its two image-sized gradients.
    assert estimate_peak(2048, 1536, LAYERS, history=20, anchor=(512, 384)) - plain == pytest.approx(
        1.3 * 2 * image, rel=0.01)
    # With tiles smaller than the anchor image, the anchor pass sets the network's share.
    tiled = estimate_peak(2048, 1536, LAYERS, history=20, tile=128)
    anchored = estimate_peak(2048, 1536, LAYERS, history=20, tile=128, anchor=(512, 384))
    assert anchored - tiled > 1.3 * 2 * image + 100 * 2**20


def test_painting_plans_the_anchor_pass_only_where_it_runs(content_path: Path, style_path: Path) -> None:
    from artistyle import NST

    def plans(anchor: int) -> list[int]:
        nst = NST(size=256, device="cpu", seed=0, scales=3, tile=16, style_anchor=anchor)
        painting = nst.paint(str(content_path), str(style_path))
        assert painting.sizes == [128, 181, 256]
        return [plan.estimate for plan in painting.plans]

    off, on = plans(0), plans(200)
    assert on[:2] == off[:2]  # 128 and 181 px: up to the anchor, no anchor pass
    assert on[2] > off[2]  # 256 px: the 181 px anchor pass is larger than a 16 px tile's crop


def test_the_default_budget_is_a_share_of_the_free_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    # The system's free memory comes from psutil on every platform (no /proc/meminfo, no guess).
    class Free:
        available = 6 * 2**30

    monkeypatch.setattr(memory.psutil, "virtual_memory", Free)
    assert available_memory(CPU) == 6 * 2**30
    plan = plan_memory(512, 512, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=None)
    assert plan.budget == int(memory.DEFAULT_SHARE * 6 * 2**30)
    Free.available = 200 * 2**20  # too little for 512 px at any history or tile
    with pytest.raises(UsageError):
        plan_memory(512, 512, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=None)


def test_planner_rejects_a_budget_below_the_minimum() -> None:
    with pytest.raises(UsageError, match="below the"):
        plan_memory(64, 64, LAYERS, history=20, optimizer="lbfgs", device=CPU, max_memory=10 * 2**20)


def test_cli_max_memory(capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "o.png")
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--max-memory", "1M")
    assert code == 2 and "below the" in err and err.count("\n") == 1
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", out, *FAST, "--max-memory", "lots")
    assert code == 2 and "invalid memory size" in err
    argv = [str(content_path), str(style_path), "-o", out, "--device", "cpu", "--steps", "1", "-q"]
    code, _, err = run(capsys, *argv, "--size", "4000", "--max-memory", "2G")
    assert code == 2 and "largest size that fits is about --size" in err and not Path(out).exists()
    assert "a 4000x" in err  # the size asked for, not a coarser scale that also does not fit
    code, stdout, err = run(capsys, *argv, "--size", "48", "--max-memory", "10G", "--json")
    assert code == 0, err
    assert json.loads(stdout)["lbfgs_history"] == 20 and json.loads(stdout)["memory_estimate_mb"] > 300
