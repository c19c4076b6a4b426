"""One picture's tiles on Ray actors (issue 26) on a simulated two-node cluster (:class:`ray.cluster_utils.Cluster`):
the single process's picture bit for bit, and the same result after a worker's node is taken away mid-run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import NST, StyleConfig
from artistyle.objective import StyleObjective
from artistyle.weights import default_weights

from .conftest import make_content, make_style, run

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
# Layers down to conv3_1: a 16 px halo, so the 48 px tiles of a 128 x 96 picture cost little more than the whole.
SETTINGS = {"size": 128, "steps": 20, "scales": 1, "seed": 1, "device": "cpu", "tile": 48,
            "content_layers": ("conv2_2",), "style_layers": ("conv1_1", "conv2_1", "conv3_1")}


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """A head with no CPUs and three nodes of one CPU each: two actors, and room for a replacement."""
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    store = 80 * 2**20
    made = Cluster(initialize_head=True, connect=True,
                   head_node_args={"num_cpus": 0, "object_store_memory": store, "include_dashboard": False})
    nodes = [made.add_node(num_cpus=1, object_store_memory=store) for _ in range(3)]
    made.wait_for_nodes()
    made.worker_nodes_list = nodes  # type: ignore[attr-defined]
    yield made
    ray.shutdown()
    made.shutdown()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the actors run one thread each (one CPU): the same kernels
    yield
    torch.set_num_threads(before)


def test_a_painting_on_two_ray_nodes_is_the_single_process_painting(cluster: object) -> None:
    from artistyle.batch.ray_tiles import RayTileWorkers

    content, style = make_content((128, 96)), make_style()
    alone = NST(**SETTINGS).paint(content, style)
    alone.run()
    workers = RayTileWorkers(2)
    with NST(**SETTINGS, workers=workers) as nst:
        spread = nst.paint(content, style)
        spread.run()
        nodes = workers.nodes()
    assert len(set(nodes)) == 2  # one actor on each of two nodes
    assert torch.equal(alone.raw_image, spread.raw_image)


def test_a_node_lost_between_the_passes_changes_nothing(cluster: object) -> None:
    from artistyle.batch.ray_tiles import RayTileWorkers

    generator = torch.Generator().manual_seed(0)
    content, style = torch.rand(1, 3, 96, 128, generator=generator), torch.rand(1, 3, 64, 64, generator=generator)
    image = torch.rand(1, 3, 96, 128, generator=generator)
    config = StyleConfig(content_layers=("conv2_2",), style_layers=("conv1_1", "conv2_1", "conv3_1"))
    alone = StyleObjective(default_weights(), config, tile=48)
    workers = RayTileWorkers(2)
    spread = StyleObjective(default_weights(), config, tile=48, workers=workers)
    for objective in (alone, spread):
        objective.set_content(content)
        objective.set_style(style)
    try:
        reference = alone._tiled()
        expected = reference.gradient(image, reference.terms(image)[1])
        tiled = spread._tiled()
        _, kernels = tiled.terms(image)  # pass 1: the actors hold the crops
        doomed = workers.nodes()[0]
        node = next(n for n in cluster.worker_nodes_list if n.node_id == doomed)  # type: ignore[attr-defined]
        cluster.remove_node(node)  # type: ignore[attr-defined]
        grad = tiled.gradient(image, kernels, gathered=True)  # redone on a new actor on the third node
        assert workers.restarts >= 1
        assert doomed not in workers.nodes()
        assert torch.equal(grad, expected)
    finally:
        workers.close()


def test_the_command_line_paints_on_ray_tile_workers(
    cluster: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    make_content((128, 96)).save(content)
    make_style().save(style)
    outputs = []
    for extra in ([], ["--tile-workers", "2", "--ray"]):
        out = tmp_path / f"out{len(outputs)}.png"
        code, _, err = run(capsys, str(content), str(style), "-o", str(out), "--size", "128", "--steps", "4",
                           "--scales", "1", "--seed", "2", "--device", "cpu", "--tile", "48", "-q", *extra)
        assert code == 0, err
        outputs.append(np.asarray(Image.open(out)))
    assert np.array_equal(outputs[0], outputs[1])


def test_more_workers_than_the_cluster_holds_is_one_line_before_any_work(cluster: object) -> None:
    from artistyle.batch.ray_tiles import RayTileWorkers
    from artistyle.errors import UsageError

    total = int(ray.cluster_resources()["CPU"])  # 3, or 2 once a test above has taken a node away
    with pytest.raises(UsageError, match=f"{total + 1} tile workers of 1 CPUs each need {total + 1} CPUs at once; "
                                         f"the Ray cluster has {total}$"):
        RayTileWorkers(total + 1).connect()
