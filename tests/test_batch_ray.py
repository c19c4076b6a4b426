"""``artistyle batch --ray``: Ray on a local instance, stopping, a bad address, Ray missing, and a node killed mid-batch
on a simulated cluster (:class:`ray.cluster_utils.Cluster`). Tiny images, a few steps, CPU, fixed seeds.

One local Ray (2 CPUs) serves the module; the cluster test, last in the file, ends it and starts its own."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import StyleConfig
from artistyle.batch import JOURNAL_NAME, Batch, BatchProgress, Job, LocalExecutor, make_jobs, product_jobs
from artistyle.batch.ray_executor import INSTALL_HINT, RayExecutor

from .conftest import REPO, make_clip, run

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow
SMALL = StyleConfig(size=32, steps=2, seed=1, device="cpu")
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture
def inputs(folders: tuple[Path, Path]) -> tuple[Path, Path]:
    return folders


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def journal(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / JOURNAL_NAME).read_text().splitlines() if line.strip()]


def jobs_into(out: Path, photos: Path, paintings: Path, config: StyleConfig = SMALL) -> list[Job]:
    return make_jobs(product_jobs(str(photos), str(paintings)), out, config)


def assert_same_pictures(a: Path, b: Path, names: list[str]) -> None:
    for name in names:
        assert np.array_equal(pixels(a / name), pixels(b / name)), name


def test_ray_paints_what_the_local_executor_paints(local_ray: None, tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    photos, paintings = inputs
    (photos / "bad.png").write_bytes(b"\x89PNG not really")  # fails on its input: recorded once, never retried
    local = Batch(jobs_into(tmp_path / "local", photos, paintings), tmp_path / "local", executor=LocalExecutor()).run()
    events: list[BatchProgress] = []
    remote = Batch(jobs_into(tmp_path / "ray", photos, paintings), tmp_path / "ray", executor=RayExecutor()).run(
        events.append)
    assert [r.status for r in remote.results if r] == [r.status for r in local.results if r] == \
        ["ok", "ok", "ok", "ok", "failed", "failed"]
    ok = [r.job.name for r in local.results if r and r.status == "ok"]
    assert_same_pictures(tmp_path / "local", tmp_path / "ray", ok)
    records = journal(tmp_path / "ray")
    assert len(records) == 6  # one line per job: the bad input was not retried
    for record in records:
        kind, ip, pid = record["worker"].split(":")
        assert kind == "ray" and ip and int(pid) != os.getpid()
    failed = [r for r in remote.results if r and r.status == "failed"]
    expected = [r.error for r in local.results if r and r.status == "failed"]
    assert [r.error for r in failed] == expected and str(photos / "bad.png") in (failed[0].error or "")
    assert any(e.running for e in events) and events[-1].ok == 4
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]  # no temporary left


def test_ray_outputs_carry_the_settings_record(local_ray: None, tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    """The Ray worker encodes through the one paint-and-save (Painting.encode): artistyle --info reads the record."""
    from artistyle.metadata import read_image_metadata

    photos, paintings = inputs
    outcome = Batch(jobs_into(tmp_path / "ray", photos, paintings), tmp_path / "ray", executor=RayExecutor()).run()
    assert outcome.count("ok") == 4
    for result in outcome.results:
        assert result is not None
        record = read_image_metadata(result.job.output)
        assert record is not None and record["seed"] == 1 and record["settings"]["steps"] == 2


def test_cli_ray_and_skip_on_rerun(local_ray: None, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                   inputs: tuple[Path, Path]) -> None:
    photos, paintings = inputs
    out = tmp_path / "out"
    argv = ["batch", "--ray", str(photos / "a.png"), str(paintings), "-o", str(out), "--device", "cpu", "--size", "32",
            "--steps", "2", "--seed", "1", "-q", "--cpus-per-job", "1"]  # --ray before CONTENTS: a local Ray
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert [r["status"] for r in journal(out)] == ["ok", "ok"]
    assert run(capsys, *argv)[0] == 0
    assert [r["status"] for r in journal(out)[-2:]] == ["skipped", "skipped"]


def test_stop_cancels_running_jobs_unwritten(local_ray: None, tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    photos, paintings = inputs
    out = tmp_path / "out"
    [short, long, *_] = jobs_into(out, photos, paintings)
    long = Job(long.content, long.styles, long.output, StyleConfig(size=32, steps=100000, seed=1, device="cpu"))
    batch = Batch([short, long], out, executor=RayExecutor())

    def stop_after_first(event: BatchProgress) -> None:
        if event.result is not None:
            batch.stop()

    outcome = batch.run(stop_after_first)
    assert [(r.status, r.error) for r in outcome.results if r] == [("ok", None), ("failed", "interrupted")]
    assert short.output.exists() and not long.output.exists()


def test_a_clip_is_painted_from_its_bytes_and_comes_back_encoded(
    local_ray: None, tmp_path: Path, inputs: tuple[Path, Path]
) -> None:
    """A video job on Ray: the clip travels as bytes, the worker paints in its temporary folder, the driver writes
    the video; the same frames as the local executor paints, and no work folder in OUTDIR. (A GIF output: its
    encoding is exact, where H.264 through FFmpeg may differ between two encodes of the same frames.)"""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    from artistyle.batch import JobSpec
    from artistyle.video.frames import open_frames

    _, paintings = inputs
    clip = make_clip(tmp_path / "clip.mp4", frames=3)
    config = StyleConfig(size=48, steps=2, seed=1, device="cpu")
    specs = [JobSpec(clip, (paintings / "wave.png",), output="painted.gif")]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the Ray task (--cpus-per-job 1): float sums in the same order, the same pixels
    try:
        local = Batch(make_jobs(specs, tmp_path / "local", config), tmp_path / "local").run()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "ray"
    remote = Batch(make_jobs(specs, out, config), out, executor=RayExecutor()).run()
    assert [r.status for r in remote.results if r] == [r.status for r in local.results if r] == ["ok"]
    [record] = journal(out)
    assert record["worker"].startswith("ray:") and record["status"] == "ok"
    painted = [f.rgb for f in open_frames(out / "painted.gif")]
    expected = [f.rgb for f in open_frames(tmp_path / "local" / "painted.gif")]
    assert len(painted) == 3 and all(np.array_equal(a, b) for a, b in zip(painted, expected))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_unreachable_address_is_one_line_within_30_s(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    photos, paintings = inputs
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "artistyle", "batch", str(photos), str(paintings), "-o",
                           str(tmp_path / "out"), "--ray", "127.0.0.1:1", "--device", "cpu", "-q"],
                          env=ENV, capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "127.0.0.1:1" in done.stderr and "cannot be reached" in done.stderr


def test_ray_missing_says_what_to_install(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    photos, paintings = inputs
    argv = ["batch", str(photos), str(paintings), "-o", str(tmp_path / "out"), "--ray", "--device", "cpu", "-q"]
    code = f"import sys; sys.modules['ray'] = None; from artistyle.cli import main; sys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert INSTALL_HINT in done.stderr and "pip install" in done.stderr


def test_a_killed_node_loses_nothing(local_ray: None, tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    """Kill one of two worker nodes mid-batch: its job is retried on the other; all outputs as an undisturbed run."""
    from ray.cluster_utils import Cluster

    photos, paintings = inputs
    config = StyleConfig(size=32, steps=10, seed=1, device="cpu")
    reference = Batch(jobs_into(tmp_path / "ref", photos, paintings, config), tmp_path / "ref").run()
    ray.shutdown()  # the module's local Ray: this test needs a cluster of its own
    store = 80 * 2**20
    cluster = Cluster(initialize_head=True, connect=True,
                      head_node_args={"num_cpus": 0, "object_store_memory": store, "include_dashboard": False})
    try:
        nodes = [cluster.add_node(num_cpus=1, object_store_memory=store) for _ in range(2)]
        cluster.wait_for_nodes()
        removed = threading.Event()

        def kill_a_node_once_running(event: BatchProgress) -> None:
            if len(event.running) == 2 and not removed.is_set():  # a job on each node, both still starting up
                removed.set()
                threading.Timer(0.5, cluster.remove_node, [nodes[0]]).start()

        out = tmp_path / "out"
        outcome = Batch(jobs_into(out, photos, paintings, config), out, executor=RayExecutor()).run(
            kill_a_node_once_running)
        assert removed.is_set()
        assert [r.status for r in outcome.results if r] == ["ok"] * 4
        records = journal(out)
        assert [r["status"] for r in records] == ["ok"] * 4  # one ok line per job, nothing recorded twice
        assert len({r["worker"] for r in records}) == 1  # the surviving node's one worker painted all four
        assert_same_pictures(tmp_path / "ref", out, [r.job.name for r in reference.results if r])
        assert not [p for p in out.iterdir() if p.name.startswith(".")]
    finally:
        ray.shutdown()
        cluster.shutdown()
