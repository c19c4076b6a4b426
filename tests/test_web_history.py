"""The studio's API for pages that come back (issue 16): jobs listed with their settings and images, the
schedule behind the Steps field, progress with a rate and an ETA, no result before the first iteration,
and the settings and seed recorded in the PNG (read back by ``artistyle --info``)."""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from artistyle.cli import main
from artistyle.config import StyleConfig
from artistyle.metadata import METADATA_KEY, read_image_metadata

from .conftest import REPO, make_content, make_style, png
from .conftest import submit_job as submit
from .conftest import wait_for_job as wait_for

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient



@pytest.mark.parametrize("query", [{"size": 512}, {"size": 900, "steps": 100}, {"size": 256, "scales": 1}, {}])
def test_the_schedule_is_the_engines(client: TestClient, query: dict[str, int]) -> None:
    plan = client.get("/api/schedule", params=query).json()
    config = StyleConfig(**query)  # type: ignore[arg-type]
    size = config.output_size("cpu")
    sizes = config.scale_sizes(size)
    assert plan == {"size": size, "sizes": sizes, "steps": config.scale_schedule(len(sizes)),
                    "total": sum(config.scale_schedule(len(sizes))), "fast": False}


def test_a_bad_schedule_query_is_one_line(client: TestClient) -> None:
    for query, fragment in (({"size": "big"}, "size must be a whole number"), ({"size": 10}, "size"),
                            ({"size": 99999}, "at most")):
        response = client.get("/api/schedule", params=query)
        assert response.status_code == 400 and fragment in response.json()["error"]
        assert "\n" not in response.json()["error"]


def test_a_job_says_how_to_show_it_again(client: TestClient, studio_images: tuple[str, str]) -> None:
    content, style = studio_images
    job = submit(client, content, [style], size=64, steps=12, seed=5, preserve_color="luminance")
    seen_eta = False
    while True:
        state = client.get(f"/api/jobs/{job['id']}").json()
        seen_eta |= state["status"] == "running" and state["eta"] is not None and state["rate"] is not None
        if state["status"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    assert state["status"] == "done" and seen_eta
    assert state["sizes"] == [64] and state["schedule"] == [12] and state["eta"] is None
    # Everything the form needs: the settings with the seed actually used, and the images by id.
    assert state["settings"]["seed"] == 5 and state["settings"]["preserve_color"] == "luminance"
    assert state["settings"]["size"] == 64 and "device" not in state["settings"]
    assert state["images"]["content"]["id"] == content and state["images"]["styles"][0]["name"] == "style.png"
    photo = client.get(f"/api/images/{content}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(photo.content)).size == (80, 64)
    assert client.get("/api/images/sample:starry_night.jpg").headers["content-type"] == "image/jpeg"
    assert client.get("/api/images/nope").status_code == 404
    # The history lists it, newest first, without its losses.
    listed = client.get("/api/jobs").json()
    assert listed[0]["id"] == job["id"] and listed[0]["losses"] == [] and listed[0]["seconds"] > 0


def test_the_png_records_its_settings_and_seed(client: TestClient, studio_images: tuple[str, str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    content, style = studio_images
    job = submit(client, content, [style], size=48, steps=3, seed=11, scales=1)
    assert wait_for(client, job["id"], ("done", "failed"))["status"] == "done"
    result = client.get(f"/api/jobs/{job['id']}/result.png").content
    path = tmp_path / "studio.png"
    path.write_bytes(result)
    record = read_image_metadata(path)
    assert record is not None and record["seed"] == 11 and record["settings"]["steps"] == 3
    assert json.loads(Image.open(path).text[METADATA_KEY]) == record  # type: ignore[attr-defined]
    assert main(["--info", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == record

    # The command line records the same for the same run, in a file with the same pixels.
    make_content().save(tmp_path / "content.png")
    make_style().save(tmp_path / "style.png")
    out = tmp_path / "cli.png"
    assert main([str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o", str(out), "--device", "cpu",
                 "--size", "48", "--steps", "3", "--seed", "11", "--scales", "1", "-q"]) == 0
    assert read_image_metadata(out) == record
    assert Image.open(out).tobytes() == Image.open(path).tobytes()
    capsys.readouterr()

    # A picture without the record says so in one line.
    plain = tmp_path / "plain.png"
    make_style().save(plain)
    assert main(["--info", str(plain)]) == 1
    err = capsys.readouterr().err
    assert "has no ArtiStyle settings" in err and err.count("\n") == 1
    assert main(["--info", str(tmp_path / "missing.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_cancel_before_the_first_iteration_gives_no_image(
    client: TestClient, studio_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancel lands just as the painting is prepared: the start image (noise) is no result.
    from artistyle.engine import Engine

    studio = client.app.state.studio  # type: ignore[attr-defined]
    real = Engine.transfer  # what the painting calls at each scale

    def cancelled_while_preparing(self: Engine, *args: Any, **kwargs: Any) -> Any:
        transfer = real(self, *args, **kwargs)  # the first scale's start image exists
        studio.cancel(studio.status()["running"])
        return transfer

    monkeypatch.setattr(Engine, "transfer", cancelled_while_preparing)
    content, style = studio_images
    job = submit(client, content, [style], size=64, steps=50, seed=1, scales=1)
    state = wait_for(client, job["id"], ("cancelled", "done", "failed"))
    assert state["status"] == "cancelled" and state["iteration"] == 0 and not state["result"]
    assert client.get(f"/api/jobs/{job['id']}/result.png").status_code == 404


def test_the_pulse_names_the_process_and_changes_with_the_jobs(
    client: TestClient, studio_images: tuple[str, str]
) -> None:
    # A page tells a restarted studio (another instance) from one out of reach for a while (the same one).
    status, pulse = client.get("/api/status").json(), client.get("/api/pulse").json()
    assert pulse["instance"] == status["instance"] and len(pulse["instance"]) >= 12
    assert status["limits"]["max_history"] == 16 and {"running", "waiting", "revision"} <= set(pulse)
    assert client.get("/api/pulse").headers["cache-control"] == "no-store"
    content, style = studio_images
    job = submit(client, content, [style], size=48, steps=2)
    wait_for(client, job["id"], ("done",))
    later = client.get("/api/pulse").json()
    assert later["instance"] == pulse["instance"] and later["revision"] != pulse["revision"]
    assert client.get("/api/pulse").json()["revision"] == later["revision"]  # nothing changed since


# ---------------------------------------------------------------- issue 24: what a page needs not to strand its user


def test_the_history_keeps_its_number_of_results(
    client: TestClient, studio_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from artistyle.web import jobs as web_jobs

    monkeypatch.setattr(web_jobs, "MAX_FINISHED_JOBS", 2)
    assert client.get("/api/status").json()["limits"]["max_history"] == 2
    content, style = studio_images
    ids = []
    for seed in (1, 2, 3):
        ids.append(submit(client, content, [style], size=32, steps=1, seed=seed)["id"])
        wait_for(client, ids[-1], ("done",))
    # The job that was running when the last one was submitted counts too: 2 kept, not 3.
    kept = [job["id"] for job in client.get("/api/jobs").json() if job["status"] not in ("queued", "running")]
    assert kept == ids[:0:-1]
    assert client.get(f"/api/jobs/{ids[0]}/result.png").status_code == 404


def test_a_fast_start_cancelled_before_iterating_offers_its_first_guess(
    client: TestClient, studio_images: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from artistyle.engine import Engine
    from artistyle.fast import missing_dependencies

    if missing_dependencies():
        pytest.skip("the fast extra is not installed")
    studio = client.app.state.studio  # type: ignore[attr-defined]
    real = Engine.transfer

    def cancelled_while_preparing(self: Engine, *args: Any, **kwargs: Any) -> Any:
        transfer = real(self, *args, **kwargs)  # the first guess has been shown
        studio.cancel(studio.status()["running"])
        return transfer

    monkeypatch.setattr(Engine, "transfer", cancelled_while_preparing)
    content, style = studio_images
    job = submit(client, content, [style], size=64, seed=6, init="fast")
    state = wait_for(client, job["id"], ("cancelled", "done", "failed"))
    assert state["status"] == "cancelled" and state["iteration"] == 0 and not state["result"]
    assert state["first_guess"] and state["preview"]
    guess = client.get(f"/api/jobs/{job['id']}/first-guess.png")
    assert guess.status_code == 200 and "_first_guess.png" in guess.headers["content-disposition"]
    path = tmp_path / "guess.png"
    path.write_bytes(guess.content)
    record = read_image_metadata(path)
    assert record is not None and record["seed"] == 6 and record["settings"]["init"] == "fast"
    with Image.open(path) as image:
        assert max(image.size) == 64
    # A job that iterated has none.
    monkeypatch.undo()
    done = submit(client, content, [style], size=32, steps=1)
    assert not wait_for(client, done["id"], ("done",))["first_guess"]
    assert client.get(f"/api/jobs/{done['id']}/first-guess.png").status_code == 404


def test_samples_say_what_they_are_and_uploads_their_digest(client: TestClient) -> None:
    samples = {s["name"]: s for s in client.get("/api/samples").json()}
    assert {name: s["kind"] for name, s in samples.items()} == {
        "astronaut.jpg": "photo", "chelsea_cat.jpg": "photo", "great_wave.jpg": "painting",
        "starry_night.jpg": "painting"}
    data = (REPO / "src" / "artistyle" / "samples" / "great_wave.jpg").read_bytes()
    upload = client.post("/api/images", content=data, headers={"x-filename": "wave.jpg"}).json()
    # The same picture as the sample, by its content: a page adds it as a style once.
    assert upload["sha256"] == samples["great_wave.jpg"]["sha256"] and "kind" not in upload
    message = client.post("/api/images", content=b"hello, world", headers={"x-filename": "notes.txt"}).json()["error"]
    assert "notes.txt" in message and "PNG, JPEG" in message and "Pillow" not in message


def test_the_eta_times_each_scale_and_prices_the_next_as_measured() -> None:
    from artistyle.transfer import Progress
    from artistyle.web.images import StoredImage
    from artistyle.web.job import Job, scale_cost

    image = StoredImage("a", "a.png", b"x", 40, 40)
    job = Job("j", StyleConfig(), image, [image], status="running", sizes=[317, 448], schedule=[40, 32])
    clock = 2.0  # the first iteration: its scale's preparation and one iteration of 0.5 s
    for iteration in range(1, 11):
        job.advanced(Progress(iteration, 72, 1.0, {}, clock, scale=0, scales=2, size=(317, 211)), clock)
        clock += 0.5
    assert job.seconds_per_iteration() == pytest.approx(0.5)
    # 30 more at 0.5 s, then 32 at 1.46 times that (twice the pixels, as measured) and a preparation of 1.5 s
    # (this scale's first iteration, less one iteration) at the same ratio.
    assert scale_cost(448, 317) == pytest.approx(1.46, rel=0.01)
    assert job.eta() == pytest.approx(30 * 0.5 + (32 * 0.5 + 1.5) * scale_cost(448, 317))
    # At the finer scale its own rate counts: 0.8 s per iteration there.
    clock += 3.0
    for iteration in range(41, 51):
        job.advanced(Progress(iteration, 72, 1.0, {}, clock, scale=1, scales=2, size=(448, 298)), clock)
        clock += 0.8
    assert job.seconds_per_iteration() == pytest.approx(0.8)
    assert job.eta() == pytest.approx(22 * 0.8)


def test_the_command_line_of_a_form(client: TestClient, studio_images: tuple[str, str]) -> None:
    import shlex

    from artistyle.cli.options import build_parser, given_settings
    from artistyle.web.command import sample_path

    content, style = studio_images
    settings = {"size": 64, "steps": 5, "seed": 3, "style_weight": 0.001, "padding": "zeros", "init": "fast",
                "original_colors": False, "style_layers": ["conv1_1", "conv2_1"], "style_blend": [2, 1],
                "preserve_color": None}
    response = client.post("/api/command", json={"content": content, "styles": [style, "sample:great_wave.jpg"],
                                                  "settings": settings})
    assert response.status_code == 200, response.text
    command = response.json()["command"]
    words = shlex.split(command)
    assert words[:4] == ["artistyle", "content.png", "style.png", sample_path("great_wave.jpg")]
    assert words[-2:] == ["-o", "artistyle_content_style_great_wave_seed3.png"]
    # Only what differs from the defaults; the command line reads back the very settings sent.
    assert "--style-weight" not in words and "--original-colors" not in words and "--preserve-color" not in words
    given = given_settings(build_parser().parse_args(words[1:-2]))
    assert given == {"size": 64, "steps": 5, "seed": 3, "padding": "zeros", "init": "fast",
                     "style_layers": ("conv1_1", "conv2_1"), "style_blend": (2.0, 1.0)}
    bad = client.post("/api/command", json={"content": content, "styles": [style], "settings": {"size": 1}})
    assert bad.status_code == 400 and "size" in bad.json()["error"]


def test_a_painted_png_gives_back_its_settings_on_upload(client: TestClient, studio_images: tuple[str, str]) -> None:
    content, style = studio_images
    job = submit(client, content, [style], size=48, steps=2, seed=21, padding="zeros", init="noise")
    wait_for(client, job["id"], ("done",))
    painted = client.get(f"/api/jobs/{job['id']}/result.png").content
    record = client.post("/api/images", content=painted, headers={"x-filename": "again.png"}).json()["record"]
    assert record["seed"] == 21 and record["settings"]["padding"] == "zeros" and record["settings"]["steps"] == 2
    # The boxes to fill: what differs from an empty box (and the size and seed), not the defaults resolved.
    assert record["given"] == ["padding", "seed", "size", "steps"]
    # A plain PNG has none.
    assert "record" not in client.post("/api/images", content=png(make_style()), headers={"x-filename": "p.png"}).json()
