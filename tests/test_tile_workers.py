"""One picture's tiles on several worker processes (issue 26): the same loss, gradient and picture."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, StyleConfig
from artistyle.errors import UsageError
from artistyle.objective import StyleObjective
from artistyle.tile_workers import LocalTileWorkers, worker_tile
from artistyle.tiling import halo_for, tiles
from artistyle.weights import default_weights

from .conftest import make_content, make_style, run

SHAPE = (1, 3, 112, 144)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Bit for bit needs the same kernels: the driver (the reference) and the workers on one thread each."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def objectives(config: StyleConfig, workers: LocalTileWorkers, tile: int = 64) -> tuple[StyleObjective, ...]:
    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(*SHAPE, generator=generator), torch.rand(1, 3, 96, 80, generator=generator)
    made = (StyleObjective(default_weights(), config, tile=tile),
            StyleObjective(default_weights(), config, tile=tile, workers=workers))
    for objective in made:
        objective.set_content(content)
        objective.set_style(style)
    return made


def same(a: tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor],
         b: tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]) -> bool:
    return (a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])
            and torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]))


@pytest.fixture(scope="module")
def pools() -> Iterator[dict[int, LocalTileWorkers]]:
    """Worker pools shared by this module's tests (a pool takes any objective's plan: starting is the slow part)."""
    made: dict[int, LocalTileWorkers] = {}
    yield made
    for pool in made.values():
        pool.close()


@pytest.mark.parametrize(("count", "style_loss"), [(1, "gram"), (2, "meanstd"), (3, "gram")])
def test_workers_give_the_single_process_loss_and_gradient_bit_for_bit(
    count: int, style_loss: str, pools: dict[int, LocalTileWorkers]
) -> None:
    """The driver adds the tiles' results in the tiles' order, whichever worker made them."""
    image = torch.rand(*SHAPE, generator=torch.Generator().manual_seed(1))
    workers = pools.setdefault(count, LocalTileWorkers(count, threads=1))
    passes = workers.times.passes
    alone, spread = objectives(StyleConfig(style_loss=style_loss, tv_weight=0.1), workers)  # type: ignore[arg-type]
    assert len(tiles(SHAPE[2], SHAPE[3], 64, halo_for("conv5_1"))) == 6
    assert same(alone.evaluate(image), spread.evaluate(image))
    assert same(alone.evaluate(image * 0.5), spread.evaluate(image * 0.5))  # the crops are sent again
    assert all(torch.equal(alone.terms(image)[k], v) for k, v in spread.terms(image).items())
    assert workers.times.passes == passes + 5 and workers.restarts == 0
    assert re.fullmatch(rf"{count} local workers: \d+\.\d\d s compute \+ \d+\.\d\d s transfer an evaluation",
                        workers.describe())  # what the progress bar shows


def test_a_worker_killed_between_the_passes_is_replaced_and_the_result_is_unchanged() -> None:
    image = torch.rand(*SHAPE, generator=torch.Generator().manual_seed(2))
    with LocalTileWorkers(2, threads=1) as workers:
        alone, spread = objectives(StyleConfig(), workers)
        expected = alone.evaluate(image)
        tiled = spread._tiled()
        _, kernels = tiled.terms(image)  # pass 1: the workers now hold this image's crops
        victim = workers._workers[1]
        assert victim is not None
        process = victim.handle[0]
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=10)
        grad = tiled.gradient(image, kernels, gathered=True)  # pass 2 is redone with the crops sent again
        assert workers.restarts == 1
        assert torch.equal(grad + 0, tiled.gradient(image, kernels))
        assert same(expected, spread.evaluate(image))


def test_a_worker_that_fails_fails_the_run_with_one_line() -> None:
    with LocalTileWorkers(1, threads=1) as workers:
        _, spread = objectives(StyleConfig(), workers)
        with pytest.raises(Exception, match="a tile worker failed: ") as raised:
            spread.evaluate(torch.rand(1, 3, 112, 144).to(torch.float64))  # the network's weights are float32
        assert "\n" not in str(raised.value)


def test_worker_tile_spreads_the_crops_evenly() -> None:
    assert worker_tile(256, 170, 2) == 256  # small: halos make a split cost more than it saves
    tile = worker_tile(1024, 768, 2)
    layout = tiles(768, 1024, tile, halo_for("conv5_1"))
    assert len(layout) >= 2
    load = [0, 0]
    for k, t in enumerate(layout):
        load[k % 2] += (t.cy1 - t.cy0) * (t.cx1 - t.cx0)
    assert max(load) < 0.8 * 1024 * 768  # each worker has well under the whole image's work


def test_sliced_wasserstein_is_refused_with_tile_workers() -> None:
    with pytest.raises(UsageError, match="--tile-workers"):
        StyleConfig(style_loss="sw", tile_workers=2).validate()


@pytest.mark.parametrize("count", [1, 3])
def test_a_painting_on_workers_is_the_single_process_painting(count: int) -> None:
    """20 iterations of L-BFGS amplify any difference in rounding: equal pixels mean equal sums every time."""
    content, style = make_content((128, 96)), make_style()
    # Layers down to conv3_1 only: a 32 px halo, so six 48 px tiles cost little more than the whole image.
    settings = {"size": 128, "steps": 20, "scales": 1, "seed": 1, "device": "cpu", "tile": 48,
                "content_layers": ("conv2_2",), "style_layers": ("conv1_1", "conv2_1", "conv3_1")}
    alone = NST(**settings).paint(content, style)
    alone.run()
    with NST(**settings, tile_workers=count) as nst:
        spread = nst.paint(content, style)
        spread.run()
        workers = nst.engine.tile_workers()
        assert workers is not None and workers.times.passes > 20
    assert torch.equal(alone.raw_image, spread.raw_image)


def test_the_command_line_paints_with_tile_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    make_content((128, 96)).save(content)
    make_style().save(style)
    outputs = []
    for extra in (["--tile", "64"], ["--tile", "64", "--tile-workers", "2"]):
        out = tmp_path / f"out{len(outputs)}.png"
        code, _, err = run(capsys, str(content), str(style), "-o", str(out), "--size", "128", "--steps", "4",
                           "--scales", "1", "--seed", "2", "--device", "cpu", "-q", *extra)
        assert code == 0, err
        outputs.append(np.asarray(Image.open(out)))
    assert np.array_equal(outputs[0], outputs[1])


def test_ray_without_tile_workers_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "photo.png", "painting.png", "--ray")
    assert code == 2 and "--ray runs the tile workers on Ray: give --tile-workers N too" in err



def test_a_painting_resumes_on_another_number_of_workers() -> None:
    """Stopped in this process at iteration 7, resumed on two workers: the uninterrupted single process's picture."""
    content, style = make_content((128, 96)), make_style()
    settings = {"size": 128, "steps": 12, "scales": 1, "seed": 1, "device": "cpu", "tile": 48,
                "content_layers": ("conv2_2",), "style_layers": ("conv1_1", "conv2_1", "conv3_1")}
    uninterrupted = NST(**settings).paint(content, style)
    uninterrupted.run()
    first = NST(**settings).paint(content, style)
    for event in first:
        if event.iteration == 7:
            first.stop()
    with NST(**settings, tile_workers=2) as nst:
        again = nst.paint(content, style)
        again.load_state_dict(first.state_dict())
        assert [e.iteration for e in again] == list(range(8, 13))
    assert torch.equal(again.raw_image, uninterrupted.raw_image)


def test_the_command_line_resumes_with_other_tile_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style, checkpoint = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "run.ckpt"
    make_content((96, 64)).save(content)
    make_style().save(style)
    common = ["--size", "96", "--steps", "3", "--scales", "1", "--seed", "2", "--device", "cpu", "--tile", "48", "-q"]
    assert run(capsys, str(content), str(style), "-o", str(tmp_path / "a.png"), *common,
               "--checkpoint", str(checkpoint))[0] == 0
    code, _, err = run(capsys, "--resume", str(checkpoint), "--tile-workers", "2", "-o", str(tmp_path / "b.png"))
    assert code == 0, err
    code, _, err = run(capsys, "--resume", str(checkpoint), "--tile", "64")
    assert code == 2 and "drop --tile" in err


def test_a_batch_job_paints_on_tile_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos, paintings = tmp_path / "photos", tmp_path / "paintings"
    photos.mkdir()
    paintings.mkdir()
    make_content((96, 64)).save(photos / "p.png")
    make_style().save(paintings / "s.png")
    common = ["--size", "96", "--steps", "3", "--scales", "1", "--seed", "2", "--device", "cpu", "--tile", "48", "-q"]
    for out, extra in (("alone", []), ("spread", ["--tile-workers", "2"])):
        code, _, err = run(capsys, "batch", str(photos), str(paintings), "-o", str(tmp_path / out), *common, *extra)
        assert code == 0, err
    name = "p__s.png"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "alone" / name)),
                          np.asarray(Image.open(tmp_path / "spread" / name)))
    code, _, err = run(capsys, "batch", str(photos), str(paintings), "-o", str(tmp_path / "x"), *common,
                       "--tile-workers", "2", "--workers", "2")
    assert code == 2 and "give one of them" in err


def test_three_workers_paint_what_one_process_is_refused_under_the_same_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 26, item 3: each process gets --max-memory. One process needs the large crops' network beside the
    optimiser; the driver of tile workers holds the optimiser and runs only the small targets' crops, each worker
    one large crop and its tiles' data. 512 x 384 px, 256 px tiles: one process needs at least about 860 MB (the
    shortest history, on disk), the driver about 740 MB and each of 3 workers about 700 MB (the planner's
    estimates, docs/benchmarks.md)."""
    from artistyle.memory import memory_parts, process_bytes

    layers = ("conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    alone = process_bytes(memory_parts(512, 384, layers, history=5, tile=256, storage="disk")["process"])
    split = [process_bytes(p) for p in memory_parts(512, 384, layers, history=20, tile=256, workers=3).values()]
    budget = (alone + max(split)) // 2
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    make_content((128, 96)).save(content)
    make_style().save(style)
    common = [str(content), str(style), "--size", "512", "--tile", "256", "--steps", "2", "--scales", "1", "--seed",
              "1", "--device", "cpu", "-q"]
    code, _, err = run(capsys, *common, "-o", str(tmp_path / "refused.png"), "--max-memory", str(budget))
    assert code == 2 and "needs about" in err and not (tmp_path / "refused.png").exists()
    code, _, err = run(capsys, *common, "-o", str(tmp_path / "spread.png"), "--max-memory", str(budget),
                       "--tile-workers", "3")
    assert code == 0, err
    assert run(capsys, *common, "-o", str(tmp_path / "alone.png"))[0] == 0  # given enough memory
    assert np.array_equal(np.asarray(Image.open(tmp_path / "alone.png")), np.asarray(Image.open(tmp_path / "spread.png")))


def test_plan_shows_a_print_on_eight_workers_without_painting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    make_content((120, 80)).save(content)
    make_style().save(style)
    code, out, err = run(capsys, str(content), str(style), "-o", str(tmp_path / "print.png"), "--size", "10800",
                         "--tile-workers", "8", "--max-memory", "24G", "--plan")
    assert code == 0, err
    assert "10800x7200 px on 8 tile workers, 24.0 GB for each process (--max-memory): it fits" in out
    assert "| driver | **total** |" in out and "| worker | **total** |" in out
    assert not (tmp_path / "print.png").exists()
    code, _, err = run(capsys, str(content), str(style), "--size", "10800", "--tile-workers", "8", "--max-memory",
                       "2G", "--plan")
    assert code == 2 and "on 8 tile workers needs about" in err
