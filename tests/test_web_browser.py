"""The studio in a real browser: Playwright driving Debian's Chromium (skipped when either is missing).

With ARTISTYLE_SCREENSHOT=1 the first test also saves the README's screenshot, docs/images/studio.jpg.
Accessibility is checked with axe-core's rules, from the copy in tests/vendor (never from another server).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from artistyle.config import StyleConfig
from artistyle.images import resized_shape
from artistyle.metadata import read_image_metadata

from .conftest import REPO, SAMPLES, TRIAL_FIELDS, hold_studio_runs, start_studio, trial_studio_settings

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]

from artistyle.web import app as web_app  # noqa: E402
from artistyle.web import jobs as web_jobs  # noqa: E402
from artistyle.web.app import create_app  # noqa: E402
from artistyle.web.server import bind  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
LIMIT_BYTES = 300_000
LIMIT_PIXELS = 1_000_000
SCREENSHOT = REPO / "docs" / "images" / "studio.jpg"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
TIMEOUT = 90_000  # ms; the first run loads the network, on a busy 2-core machine


def _serve(**limits: int) -> Iterator[str]:
    """The studio on a free loopback port, served by uvicorn on a thread of this process."""
    app = create_app(device="cpu", preview_interval=0.1, **limits)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the studio did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    instance.should_exit = True
    thread.join(15)
    sock.close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A studio with small upload limits, so that oversized files are cheap to make."""
    yield from _serve(max_upload_bytes=LIMIT_BYTES, max_pixels=LIMIT_PIXELS)


@pytest.fixture(scope="module")
def default_server() -> Iterator[str]:
    """A studio as `artistyle web` starts it (its limits show on the page and in the screenshot)."""
    yield from _serve()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser profile that may only talk to this machine; fails the test on page errors."""
    with guarded_context(browser) as guarded:
        yield guarded


@contextlib.contextmanager
def guarded_context(browser: Any, **options: Any) -> Iterator[Any]:
    options = {"viewport": {"width": 1280, "height": 860}, **options}
    context = browser.new_context(accept_downloads=True, **options)
    context.set_default_timeout(TIMEOUT)
    foreign: list[str] = []
    errors: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith(("http://127.0.0.1:", "blob:", "data:")):
            request_route.continue_()
        else:
            foreign.append(url)
            request_route.abort()

    context.route("**/*", route)
    context.on("page", lambda page: page.on("pageerror", lambda exc: errors.append(str(exc))))
    try:
        yield context
    finally:
        context.close()
    assert not foreign, f"the page asked for other servers: {foreign}"
    assert not errors, f"JavaScript errors: {errors}"


def open_studio(context: Any, server: str) -> Any:
    page = context.new_page()
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]")
    return page


def choose_samples(page: Any, content: str = "chelsea_cat.jpg", *styles: str) -> None:
    """A sample photo (used as soon as it is chosen) and sample styles (each added with the Add button)."""
    page.select_option("#content-sample", f"sample:{content}")
    for number, style in enumerate(styles or ("starry_night.jpg",), start=page.locator("#style-list li").count() + 1):
        page.select_option("#style-sample", f"sample:{style}")
        page.click("#style-sample-add")
        sync_api.expect(page.locator("#style-list li")).to_have_count(number)


def settings(page: Any, size: int, steps: int, seed: int = 1) -> None:
    page.fill("#size", str(size))
    page.fill("#steps", str(steps))
    page.fill("#seed", str(seed))


def status(page: Any) -> str:
    return page.get_attribute("#status", "data-status")


def wait_status(page: Any, *statuses: str, timeout: float = TIMEOUT) -> None:
    wanted = ",".join(f"#status[data-status={s}]" for s in statuses)
    page.wait_for_selector(wanted, state="attached", timeout=timeout)


def poll(condition: Any, timeout: float = TIMEOUT / 1000) -> None:
    """Wait for ``condition()`` in Python: the page's CSP forbids Playwright's string-eval waits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_paint_watch_and_download(context: Any, default_server: str, tmp_path: Path) -> None:
    screenshot = os.environ.get("ARTISTYLE_SCREENSHOT") == "1"
    page = open_studio(context, default_server)
    previews: list[bytes] = []
    page.on("response", lambda r: previews.append(r.body()) if "/preview.jpg" in r.url and r.ok else None)

    page.set_input_files("#content-file", str(SAMPLES / "chelsea_cat.jpg"))
    page.wait_for_selector("#content-thumb:not([hidden])")
    page.set_input_files("#style-file", str(SAMPLES / "starry_night.jpg"))
    page.wait_for_selector("#style-list li")
    # The README's screenshot shows a run large enough to see; the test itself stays tiny.
    size, steps = (256, 120) if screenshot else (64, 10)
    settings(page, size, steps)
    page.click("#start")
    wait_status(page, "done", timeout=900_000 if screenshot else TIMEOUT)

    width, height = resized_shape(451, 300, size)
    assert page.get_attribute("#loss", "data-points") == str(steps)
    assert page.evaluate("document.getElementById('preview').naturalWidth") == width
    assert len(set(previews)) >= 2, "the preview did not change during the run"
    assert "Done" in page.inner_text("#status") and page.is_hidden("#error")

    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "result.png"
    download.value.save_as(path)
    assert download.value.suggested_filename.endswith(".png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (width, height)

    if screenshot:
        page.mouse.move(0, 0)
        page.screenshot(path=str(SCREENSHOT), type="jpeg", quality=75)
        assert SCREENSHOT.stat().st_size < 150_000


def test_cancel_frees_the_worker(context: Any, server: str) -> None:
    page = open_studio(context, server)
    choose_samples(page, "astronaut.jpg", "great_wave.jpg")
    settings(page, 64, 5000)
    page.click("#start")
    poll(lambda: int(page.get_attribute("#status", "data-iteration") or 0) >= 2)
    page.click("#cancel")
    started = time.monotonic()
    wait_status(page, "cancelled", timeout=30_000)
    assert time.monotonic() - started < 30
    assert "Cancelled at iteration" in page.inner_text("#status")
    assert page.get_attribute("#download", "aria-disabled") == "false"  # the image so far
    assert page.request.get(server + "/api/status").json()["running"] is None
    assert page.is_enabled("#start") and page.is_disabled("#cancel")


def test_two_tabs_queue(context: Any, server: str) -> None:
    first, second = open_studio(context, server), open_studio(context, server)
    for page, steps in ((first, 30), (second, 10)):
        choose_samples(page)
        settings(page, 64, steps)
    first.click("#start")
    wait_status(first, "running")
    second.click("#start")
    wait_status(second, "queued", timeout=10_000)
    assert "place 1" in second.inner_text("#status")
    assert second.is_enabled("#cancel") and second.is_disabled("#start")
    wait_status(first, "done")
    wait_status(second, "running", "done")
    wait_status(second, "done")
    assert second.get_attribute("#loss", "data-points") == "10"


def test_oversized_uploads_are_refused(context: Any, server: str, tmp_path: Path) -> None:
    page = open_studio(context, server)
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8))
    heavy = tmp_path / "heavy.png"
    noise.save(heavy)
    assert heavy.stat().st_size > LIMIT_BYTES
    page.set_input_files("#content-file", str(heavy))
    page.wait_for_selector("#error:not([hidden])")
    assert "heavy.png" in page.inner_text("#error") and "0.3 MB" in page.inner_text("#error")

    # Small in bytes, too many pixels: the server refuses it, the page shows why.
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 1000), "white").save(wide)
    page.set_input_files("#style-file", str(wide))
    sync_api.expect(page.locator("#error")).to_contain_text("1,000,000 pixels", timeout=30_000)
    assert "wide.png" in page.inner_text("#error")
    assert page.locator("#style-list li").count() == 0 and page.is_disabled("#start")

    # The server's own byte limit, for a client that does not check first.
    response = page.evaluate("""async () => {
        const r = await fetch('/api/images', {method: 'POST', body: new Uint8Array(400000),
                                              headers: {'X-ArtiStyle': '1'}});
        return [r.status, await r.json()];
    }""")
    assert response[0] == 413 and "0.3 MB" in response[1]["error"]
    # Without the studio's header even its own origin is refused: a simple request is never enough.
    response = page.evaluate("""async () => {
        const r = await fetch('/api/images', {method: 'POST', body: new Uint8Array(10)});
        return [r.status, await r.json()];
    }""")
    assert response[0] == 403 and "X-ArtiStyle" in response[1]["error"]


def test_page_without_images_says_what_is_missing(context: Any, server: str) -> None:
    page = open_studio(context, server)
    assert page.is_disabled("#start") and "Choose a photo" in page.inner_text("#status")
    choose_samples(page)
    page.fill("#size", "10")
    page.click("#start")
    page.wait_for_selector("#error:not([hidden])")
    assert "size must be at least 32" in page.inner_text("#error")


def test_drop_images_on_the_page(context: Any, server: str) -> None:
    page = open_studio(context, server)
    dropped = page.evaluate("""async () => {
        const canvas = document.createElement('canvas');
        canvas.width = 96; canvas.height = 64;
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = '#c33'; ctx.fillRect(0, 0, 96, 64);
        ctx.fillStyle = '#33c'; ctx.fillRect(20, 10, 40, 40);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        for (const [zone, name] of [['content-drop', 'photo.png'], ['style-drop', 'paint.png']]) {
            const data = new DataTransfer();
            data.items.add(new File([blob], name, {type: 'image/png'}));
            document.getElementById(zone).dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        }
        return true;
    }""")
    assert dropped
    sync_api.expect(page.locator("#content-name")).to_contain_text("photo.png (96x64)")
    sync_api.expect(page.locator("#style-list li")).to_contain_text("paint.png")
    assert page.is_enabled("#start")


def test_fine_style_and_masks_in_the_page(context: Any, server: str, tmp_path: Path) -> None:
    page = open_studio(context, server)
    choose_samples(page)
    # A second style, with its blend knobs, removed again by its own button.
    page.set_input_files("#style-file", str(SAMPLES / "great_wave.jpg"))
    sync_api.expect(page.locator("#style-list li")).to_have_count(2)
    assert page.locator("#style-list li").nth(1).locator("input").count() == 2  # weight and scale
    page.click("#style-list li:nth-child(2) button.remove")
    sync_api.expect(page.locator("#style-list li")).to_have_count(1)
    sync_api.expect(page.locator("#style-list li")).to_contain_text("starry_night.jpg")
    settings(page, 48, 3)
    page.click("summary")
    page.set_input_files("#fine-style-file", str(SAMPLES / "great_wave.jpg"))
    sync_api.expect(page.locator("#fine-style-list li")).to_contain_text("great_wave.jpg")
    # A mask that is not the photo's size is refused at Start, by its own name.
    small = tmp_path / "small_mask.png"
    Image.new("L", (40, 40), 255).save(small)
    page.set_input_files("#mask-files", str(small))
    sync_api.expect(page.locator("#mask-list li")).to_contain_text("small_mask.png")
    page.click("#start")
    sync_api.expect(page.locator("#error")).to_contain_text("mask 'small_mask.png' is 40x40 px")
    page.click("#mask-list button.remove")
    assert page.locator("#mask-list li").count() == 0
    page.click("#start")
    wait_status(page, "done")
    assert "Done: 48x32" in page.inner_text("#status") and page.is_hidden("#error")


# ---------------------------------------------------------------- issue 16: runs that outlive the page


def iteration(page: Any) -> int:
    return int(page.get_attribute("#status", "data-iteration") or 0)


def test_a_reload_reattaches_to_the_run(context: Any, server: str) -> None:
    page = open_studio(context, server)
    choose_samples(page, "astronaut.jpg", "great_wave.jpg")
    settings(page, 64, 5000, seed=7)
    page.select_option("#preserve-color", "luminance")
    page.click("#start")
    poll(lambda: iteration(page) >= 2)
    job = page.evaluate("location.hash")
    assert job.startswith("#job=")

    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    # The same job, its progress going on, its settings and images back in the form.
    assert page.evaluate("location.hash") == job
    wait_status(page, "running")
    reattached = iteration(page)
    poll(lambda: iteration(page) > reattached)
    assert page.input_value("#size") == "64" and page.input_value("#seed") == "7"
    assert page.input_value("#steps") == "5000" and page.input_value("#preserve-color") == "luminance"
    assert "astronaut.jpg" in page.inner_text("#content-name")
    sync_api.expect(page.locator("#style-list li")).to_contain_text("great_wave.jpg")
    page.wait_for_selector("#preview:not([hidden])")
    assert int(page.get_attribute("#loss", "data-points")) >= iteration(page) - 5
    assert page.is_disabled("#start") and page.is_enabled("#cancel")

    # It can be cancelled from the reloaded page; a new Start then runs at once, queued behind nothing.
    page.click("#cancel")
    wait_status(page, "cancelled", timeout=30_000)
    sync_api.expect(page.locator("#history li").first).to_have_attribute("data-id", job.removeprefix("#job="))
    page.fill("#steps", "3")
    page.click("#start")
    wait_status(page, "running", "done", timeout=30_000)
    assert "queue" not in page.inner_text("#status")
    wait_status(page, "done")
    assert page.evaluate("location.hash") != job


def test_a_closed_tab_leaves_its_run_in_the_history(browser: Any, context: Any, server: str) -> None:
    page = open_studio(context, server)
    choose_samples(page)
    settings(page, 48, 5000, seed=3)
    page.click("#start")
    poll(lambda: iteration(page) >= 1)
    page.close()

    # Another browser (nothing remembered): the page says a run is going and offers to watch or cancel it.
    with guarded_context(browser) as other:
        stranger = open_studio(other, server)
        sync_api.expect(stranger.locator("#orphan")).to_be_visible()
        assert "running" in stranger.inner_text("#orphan-text")
        stranger.click("#orphan-watch")
        wait_status(stranger, "running")
        assert stranger.input_value("#seed") == "3"
        stranger.click("#cancel")
        wait_status(stranger, "cancelled", timeout=30_000)

    # The same browser again: it comes back to its run, now in the history with its result.
    again = open_studio(context, server)
    wait_status(again, "cancelled")
    item = again.locator("#history li").first
    sync_api.expect(item).to_contain_text("seed 3")
    assert item.locator("a[download]").count() == 1
    assert again.get_attribute("#download", "aria-disabled") == "false"


def test_progress_history_and_before_after(context: Any, server: str, tmp_path: Path) -> None:
    page = open_studio(context, server)
    page.click("summary")  # More settings
    page.select_option("#init", "noise")  # the paper's start and schedule (the studio's fast one: below)
    page.fill("#size", "512")
    page.fill("#steps", "")
    config = StyleConfig(size=512)
    plan = config.scale_schedule(len(config.scale_sizes(512)))
    # An empty Steps box is the default, and the help says what the schedule makes of it at this size.
    sync_api.expect(page.locator("#steps-help")).to_contain_text(
        f"Empty: the default, 300. At 512 px: {' + '.join(map(str, plan))} = {sum(plan)} iterations")

    choose_samples(page)
    settings(page, 96, 40, seed=4)  # 40 + 20 iterations: each scale lasts long enough to be seen
    page.fill("#scales", "2")
    sync_api.expect(page.locator("#steps-help")).to_contain_text("40 + 20 = 60 iterations over 2 scales")
    page.evaluate("""() => {
        window.announced = [];
        new MutationObserver(() => window.announced.push(document.getElementById('announce').textContent))
            .observe(document.getElementById('announce'), {childList: true, characterData: true, subtree: true});
    }""")
    page.click("#start")
    seen: set[str] = set()

    def progress_seen() -> bool:
        text = page.inner_text("#progress-text")
        if "scale 2 of 2" in text and "ETA" in text and ("it/s" in text or "s/it" in text):
            seen.add(text)
        return bool(seen) or status(page) == "done"

    poll(progress_seen)
    wait_status(page, "done")
    assert seen, "no progress line with the scale, the rate and an ETA"
    assert page.evaluate("document.getElementById('progress').value") == 60
    announced = page.evaluate("window.announced")
    assert any("scale 1 of 2" in a for a in announced) and any("scale 2 of 2" in a for a in announced)
    assert any(a.startswith("Done") for a in announced) and len(announced) <= 5, announced

    # A second run; both are in the history, newest first, each with its seed.
    items = page.locator("#history li")
    before = items.count()
    settings(page, 48, 3, seed=9)
    page.fill("#scales", "1")
    page.click("#start")
    wait_status(page, "done")
    sync_api.expect(items).to_have_count(before + 1)
    sync_api.expect(items.nth(0)).to_contain_text("seed 9")
    sync_api.expect(items.nth(1)).to_contain_text("seed 4")
    # One click puts the older run's settings back in the form.
    items.nth(1).locator("button.reuse").click()
    assert page.input_value("#seed") == "4" and page.input_value("#size") == "96"
    assert page.input_value("#scales") == "2" and page.input_value("#steps") == "40"
    # Its PNG, from the history, records those settings and the seed.
    with page.expect_download() as download:
        items.nth(1).locator("a[download]").click()
    path = tmp_path / "older.png"
    download.value.save_as(path)
    record = read_image_metadata(path)
    assert record is not None and record["seed"] == 4 and record["settings"]["scales"] == 2
    # Before / after: the photo over the result, cut where the slider is.
    items.nth(1).locator("button.thumb").click()
    page.wait_for_selector("#compare-row:not([hidden])")
    page.fill("#compare", "100")
    assert page.evaluate("getComputedStyle(document.getElementById('before')).clipPath").startswith("inset(0")
    assert page.get_attribute("#compare", "aria-valuetext") == "the photo"


# ---------------------------------------------------------------- issue 15: the fast start


def test_the_page_starts_fast_and_shows_the_first_guess_at_once(
    context: Any, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    from artistyle.fast import missing_dependencies

    if missing_dependencies():
        pytest.skip("the fast extra is not installed")
    # The first scale's iterations are held back until the page has shown the first guess.
    release = hold_studio_runs(monkeypatch)
    page = open_studio(context, server)
    # The studio's default start is fast; Steps is empty and its help gives the fast start's schedule.
    assert page.input_value("#init") == "fast" and page.input_value("#steps") == ""
    assert page.input_value("#content-weight") == ""
    help_line = page.locator("#steps-help")
    sync_api.expect(help_line).to_have_text(
        "Empty: the fast start's schedule. At 448 px: 40 + 32 = 72 iterations over 2 scales (317, 448 px), "
        "from the fast start.")
    assert page.get_attribute("#steps", "placeholder") == "40 + 32"
    assert "2.5" in page.get_attribute("#content-weight", "placeholder")
    # Steps given: the usual coarse to fine from the fast start; noise: the paper's.
    page.fill("#steps", "100")
    sync_api.expect(help_line).to_contain_text("At 448 px: 100 + 50 + 25 = 175 iterations over 3 scales")
    page.fill("#steps", "")
    page.click("summary")  # More settings
    assert "command line starts from noise" in page.inner_text("#init-help")
    page.select_option("#init", "noise")
    sync_api.expect(help_line).to_contain_text("Empty: the default, 300. At 448 px: 300 + 150 + 75 = 525 iterations")
    page.select_option("#init", "fast")
    sync_api.expect(help_line).to_contain_text("72 iterations over 2 scales (317, 448 px), from the fast start")

    choose_samples(page)
    page.fill("#size", "64")
    page.fill("#seed", "5")
    page.click("#start")
    try:
        page.wait_for_selector("#preview:not([hidden])", timeout=30_000)
        assert status(page) == "running" and iteration(page) == 0
        assert "first guess" in page.inner_text("#status")
        assert page.evaluate("document.getElementById('preview').naturalWidth") == 64
    finally:
        release.set()
    wait_status(page, "done")
    assert page.get_attribute("#loss", "data-points") == "72"
    # The run's settings back in the form leave Steps empty: it was the fast start's default.
    page.locator("#history li button.reuse").first.click()
    assert page.input_value("#init") == "fast" and page.input_value("#steps") == ""
    assert page.input_value("#seed") == "5" and page.input_value("#content-weight") == ""


# ---------------------------------------------------------------- issue 16: the bugs


def test_sample_lists_work_from_the_keyboard(context: Any, server: str) -> None:
    page = open_studio(context, server)
    samples = [o for o in page.eval_on_selector_all("#style-sample option", "os => os.map(o => o.value)") if o]
    # (Each list has its own samples since issue 24: the paintings for styles, the photos for the photo.)
    photos = [o for o in page.eval_on_selector_all("#content-sample option", "os => os.map(o => o.value)") if o]
    page.focus("#style-sample")
    for _ in range(len(samples)):
        page.keyboard.press("ArrowDown")
    # Arrowing through the list moves through the samples and adds nothing; Enter adds the one shown.
    assert page.input_value("#style-sample") == samples[-1]
    assert page.locator("#style-list li").count() == 0
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#style-list li")).to_have_count(1)
    sync_api.expect(page.locator("#style-list li")).to_contain_text(samples[-1].removeprefix("sample:"))
    page.focus("#content-sample")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.input_value("#content-sample") == photos[1]
    sync_api.expect(page.locator("#content-name")).to_contain_text(photos[1].removeprefix("sample:"))


def test_the_colour_option_says_what_it_does(context: Any, server: str) -> None:
    page = open_studio(context, server)
    label = page.inner_text("#preserve-color option[value=histogram]")
    # "histogram" recolours the style to the photo's colours: the label says so, not the opposite.
    assert "recolour the style to the photo's colours" in label
    assert "style's colours" not in page.inner_text("#preserve-color")


def test_cancel_while_preparing_offers_no_download(
    context: Any, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artistyle.engine import Engine

    real = Engine.transfer  # what the painting calls at each scale

    def slow_to_prepare(self: Engine, *args: Any, **kwargs: Any) -> Any:
        # The first scale is being set up (its start image exists, no iteration has ended): long
        # enough for the page to cancel then.
        transfer = real(self, *args, **kwargs)
        time.sleep(2.0)
        return transfer

    monkeypatch.setattr(Engine, "transfer", slow_to_prepare)
    page = open_studio(context, server)
    choose_samples(page)
    settings(page, 48, 50)
    page.click("#start")
    # Preparing, or (the studio's fast start) showing its first guess: no iteration has ended either way.
    sync_api.expect(page.locator("#status")).to_contain_text(re.compile("Preparing the run|first guess"),
                                                             timeout=30_000)
    page.click("#cancel")
    wait_status(page, "cancelled", timeout=30_000)
    assert "can be downloaded" not in page.inner_text("#status")
    assert "before the first iteration" in page.inner_text("#status")
    assert page.get_attribute("#download", "aria-disabled") == "true"
    assert page.get_attribute("#download", "href") is None


def focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def test_drop_zones_are_one_keyboard_stop_that_opens_the_chooser(context: Any, server: str) -> None:
    page = open_studio(context, server)
    # A click on a file input is what opens the chooser: each is recorded (and the chooser itself, which
    # headless Chromium opens only once per page, is not opened).
    page.evaluate("""() => {
        window.opened = [];
        for (const input of document.querySelectorAll('input[type=file]')) {
            input.addEventListener('click', (event) => { window.opened.push(input.id); event.preventDefault(); });
        }
    }""")
    for zone, after in (("content-drop", "content-sample"), ("style-drop", "style-sample")):
        page.focus(f"#{zone}")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus by keyboard, so :focus-visible applies
        assert focused(page) == zone
        outline = page.evaluate(f"getComputedStyle(document.getElementById('{zone}')).outlineStyle")
        width = page.evaluate(f"parseFloat(getComputedStyle(document.getElementById('{zone}')).outlineWidth)")
        assert outline != "none" and width >= 2, "no visible focus ring"
        for key in ("Enter", " "):
            page.keyboard.press(key)
            assert page.evaluate("window.opened.pop()") == zone.replace("drop", "file"), f"{key} did nothing"
        page.keyboard.press("Tab")
        assert focused(page) == after, "the drop zone takes more than one Tab stop"


# ---------------------------------------------------------------- issue 16: accessibility and layout


def axe_findings(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page (WCAG 2.x A and AA rules and best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['nodes']}" for v in results if v["impact"] in ("serious", "critical")]


def test_accessibility_and_a_keyboard_only_run(context: Any, server: str) -> None:
    page = open_studio(context, server)
    assert axe_findings(page) == []
    # Keyboard only, from the top of the page: a sample photo, a sample style, a small run, Start.
    page.keyboard.press("Tab")
    visited: list[str] = []

    def tab_to(target: str, limit: int = 60) -> None:
        for _ in range(limit):
            if focused(page) == target:
                return
            page.keyboard.press("Tab")
            visited.append(focused(page))
        raise AssertionError(f"Tab never reached #{target}: {visited}")

    tab_to("content-sample")
    page.keyboard.press("ArrowDown")
    tab_to("style-sample")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    tab_to("style-sample-add")
    page.keyboard.press("Enter")
    sync_api.expect(page.locator("#style-list li")).to_have_count(1)
    tab_to("size")
    page.keyboard.press("Control+A")
    page.keyboard.type("48")
    tab_to("steps")
    page.keyboard.press("Control+A")
    page.keyboard.type("4")
    tab_to("start")
    page.keyboard.press("Enter")
    wait_status(page, "done")
    assert focused(page) in ("cancel", "body", "", "None") or page.is_enabled("#start")

    # Every control named: the chosen photo, both sample lists, each style's boxes, the remove buttons.
    names = {
        "content-drop": page.get_attribute("#content-thumb", "alt"),  # the drop zone's content names it
        "weight": page.get_attribute("#style-list li input.style-weight", "aria-label"),
        "scale": page.get_attribute("#style-list li input.style-scale", "aria-label"),
        "remove": page.get_attribute("#style-list li button.remove", "aria-label"),
        "strength": page.get_attribute("#style-strength", "aria-valuetext"),
        "loss": page.get_attribute("#loss", "aria-label"),
    }
    assert names["content-drop"].startswith("Photo: ") and "choose another" in names["content-drop"]
    assert names["weight"].startswith("Weight of style 1") and names["scale"].startswith("Brush scale of style 1")
    assert names["remove"].startswith("Remove style 1")
    assert names["strength"].startswith("style weight ")
    assert "4 of 4 iterations" in names["loss"]
    assert page.inner_text("label[for=content-sample]") != page.inner_text("label[for=style-sample]")
    assert axe_findings(page) == []


def test_phone_width_and_dark_theme(browser: Any, server: str) -> None:
    with guarded_context(browser, viewport={"width": 390, "height": 844}, color_scheme="dark") as phone:
        page = open_studio(phone, server)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "wider than the phone"
        # Controls, then Start, then the preview.
        top = {name: page.locator(name).bounding_box()["y"] for name in ("#content-drop", "#size", "#start",
                                                                           "#preview-box")}
        assert top["#content-drop"] < top["#size"] < top["#start"] < top["#preview-box"]
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert sum(int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]) < 150, background
        assert axe_findings(page) == []

        choose_samples(page)
        settings(page, 64, 5000)
        page.click("#start")
        poll(lambda: iteration(page) >= 2)
        page.wait_for_selector("#preview:not([hidden])")
        # While it runs, the preview stays in view wherever the page is scrolled.
        for element in ("#cancel", "#content-drop", "#limits", "#padding"):
            page.locator(element).scroll_into_view_if_needed()
            box = page.locator("#preview").bounding_box()
            assert box is not None and box["y"] >= -1 and box["y"] + box["height"] <= 844 + 1, (element, box)
        page.locator("#cancel").scroll_into_view_if_needed()
        page.click("#cancel")
        wait_status(page, "cancelled", timeout=30_000)


# ---------------------------------------------------------------- issue 23: More settings from the schema

# The settings with a control of the page's own (the Settings panel, the styles' weight and scale, the start);
# every other setting the studio may send has a row in More settings, built from /api/status.
OWN_CONTROLS = {"size", "steps", "style_weight", "preserve_color", "original_colors", "seed", "padding", "init",
                "style_blend", "style_scale"}


def test_more_settings_are_built_from_the_status(context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A studio whose settings list has TrialConfig's fields, as if a developer had added them to StyleConfig.
    monkeypatch.setattr(web_app, "studio_settings", trial_studio_settings)
    served = _serve()
    server = next(served)
    try:
        page = open_studio(context, server)
        page.click("summary")  # More settings
        page.select_option("#init", "noise")  # the defaults as placeholders (a fast start shows its schedule)
        sync_api.expect(page.locator("#steps-help")).to_contain_text("Empty: the default")
        groups = page.request.get(server + "/api/status").json()["settings"]
        described = [s for group in groups for s in group["settings"]]
        assert {s["name"] for s in described} >= OWN_CONTROLS | set(TRIAL_FIELDS)

        # A row for every setting without a control of its own, in the status's order (init's row, the page's
        # own, moved to its place), and nothing else; each own control is on the page once.
        rows = page.eval_on_selector_all("#more-settings .field", "rows => rows.map(r => r.dataset.setting)")
        assert rows == [s["name"] for s in described if s["name"] not in OWN_CONTROLS - {"init"}]
        for setting in described:
            name = setting["name"]
            if name in OWN_CONTROLS:
                assert page.locator(f'[data-setting~="{name}"]').count() == 1, name
                continue
            control = page.locator(f'#more-settings .field[data-setting="{name}"]').locator("input, select")
            shown = "default" if setting["default_text"] is None else setting["default_text"]
            if setting["kind"] == "bool":
                assert control.get_attribute("type") == "checkbox" and control.is_checked() == setting["default"]
            elif setting["choices"]:
                options = control.locator("option")
                assert options.all_inner_texts() == [shown if shown == "default" else f"default ({shown})",
                                                     *setting["choices"]], name
                assert control.input_value() == "", name
            else:
                assert control.get_attribute("placeholder") == shown and control.input_value() == "", name
        # The trial fields: a number with its range and units, a choice in its group, a switch on by default.
        brush = page.locator("#brush-size")
        assert brush.get_attribute("type") == "number" and brush.get_attribute("min") == "2"
        assert brush.get_attribute("max") == "64" and page.inner_text("label[for=brush-size]") == "Brush size (px)"
        assert rows.index("brush_shape") == rows.index("pooling") + 1  # the end of the loss group's settings
        assert page.is_checked("#sparkle")

        # A value a list row cannot hold is refused by the studio, naming it.
        choose_samples(page)
        settings(page, 48, 2, seed=2)
        page.fill("#scale-steps", "2,a")
        page.click("#start")
        sync_api.expect(page.locator("#error")).to_contain_text("scale-steps must be a number, not 'a'")
        page.fill("#scale-steps", "")
        # Values typed into generated rows reach the job's settings; the rows left empty are not sent.
        page.fill("#tv-weight", "0.25")
        page.fill("#lbfgs-history", "7")
        page.fill("#style-layers", "conv1_1, conv2_1")
        page.fill("#scales", "1")
        page.fill("#style-size", "40")
        page.select_option("#pooling", "avg")
        page.click("#start")
        wait_status(page, "done")
        job_id = page.evaluate("location.hash").removeprefix("#job=")
        job = page.request.get(f"{server}/api/jobs/{job_id}").json()
        typed = {"tv_weight": 0.25, "lbfgs_history": 7, "style_layers": ["conv1_1", "conv2_1"], "scales": 1,
                 "style_size": 40, "pooling": "avg"}
        assert {name: job["settings"][name] for name in typed} == typed
        assert set(typed) <= set(job["given"])
        assert not set(job["given"]) & {"tol", "lr", "content_weight", "scale_steps", "color_match", "optimizer"}
        # The run's settings back in the form: the typed rows filled, the others empty.
        page.locator("#history li button.reuse").first.click()
        assert page.input_value("#lbfgs-history") == "7" and page.input_value("#style-layers") == "conv1_1,conv2_1"
        assert page.input_value("#pooling") == "avg" and page.input_value("#tol") == ""
        assert page.input_value("#color-match") == "" and page.is_checked("#sparkle")
    finally:
        next(served, None)  # stops the server


# ---------------------------------------------------------------- issue 24: the studio never strands its user


@contextlib.contextmanager
def real_studio(folder: Path) -> Iterator[tuple[list[Any], str, int]]:
    """``artistyle web`` as a user starts it (a subprocess on 127.0.0.1): ``[process]`` (a test may stop it and
    put another in its place), its address and its port; whatever process is there at the end is stopped."""
    process, url = start_studio(folder)
    processes = [process]
    try:
        yield processes, url.rstrip("/"), int(url.rstrip("/").rsplit(":", 1)[1])
    finally:
        for running in processes:
            if running.poll() is None:
                running.terminate()
                running.wait(30)


def test_a_stopped_studio_shows_at_once_and_a_restarted_one_recovers(browser: Any, tmp_path: Path) -> None:
    with real_studio(tmp_path) as (processes, base, port), guarded_context(browser) as context:
        page = open_studio(context, base)
        choose_samples(page)
        settings(page, 64, 5000)
        page.fill("#seed", "")
        page.click("#start")
        poll(lambda: iteration(page) >= 1)
        # Stopped as Ctrl-C stops it (SIGTERM does the same): the page says so within 5 s, with the buttons back.
        processes[0].terminate()
        stopped = time.monotonic()
        sync_api.expect(page.locator("#connection")).to_be_visible(timeout=5_000)
        wait_status(page, "lost", timeout=5_000)
        assert time.monotonic() - stopped < 5
        assert "start it again with `artistyle web`" in page.inner_text("#connection")
        assert "The studio stopped during the run, at iteration" in page.inner_text("#status")
        assert "ETA" not in page.inner_text("#progress-text")
        assert page.is_enabled("#start") and page.is_disabled("#cancel")
        assert processes[0].wait(30) == 0

        # Started again on the same address: the page comes back by itself and says what was lost.
        processes.append(start_studio(tmp_path, port)[0])
        sync_api.expect(page.locator("#connection")).to_be_hidden(timeout=15_000)
        sync_api.expect(page.locator("#notice")).to_contain_text("The studio was restarted", timeout=5_000)
        assert "the run you were watching (stopped at iteration" in page.inner_text("#notice")
        assert status(page) == "idle" and page.is_enabled("#start") and page.is_disabled("#cancel")
        assert page.evaluate("location.hash") == ""
        # The form is as it was, and Start paints on the new studio.
        assert "chelsea_cat.jpg" in page.inner_text("#content-name") and page.input_value("#size") == "64"
        page.fill("#steps", "2")
        page.click("#start")
        wait_status(page, "done")
        assert page.is_hidden("#error")

        # The page opened again after another restart (closed meanwhile, so it could not see the restart itself):
        # it says what became of the run it showed, and puts its settings back.
        address = page.url
        assert "#job=" in address
        page.close()
        processes[-1].terminate()
        processes[-1].wait(30)
        processes.append(start_studio(tmp_path, port)[0])
        page = context.new_page()
        page.goto(address)
        page.wait_for_selector("body[data-ready=true]")
        sync_api.expect(page.locator("#notice")).to_contain_text("The studio was restarted since this page last")
        assert "chelsea_cat.jpg" in page.inner_text("#content-name") and page.input_value("#steps") == "2"
        assert page.input_value("#seed") == ""


def test_a_studio_out_of_reach_for_a_while_is_followed_again(context: Any, server: str) -> None:
    page = open_studio(context, server)
    choose_samples(page)
    settings(page, 48, 5000)
    page.click("#start")
    poll(lambda: iteration(page) >= 1)
    job = page.evaluate("location.hash")
    context.set_offline(True)
    sync_api.expect(page.locator("#connection")).to_be_visible(timeout=5_000)
    wait_status(page, "lost", timeout=5_000)
    context.set_offline(False)
    # The same studio process: the page follows the same run again, which went on meanwhile.
    wait_status(page, "running", timeout=10_000)
    sync_api.expect(page.locator("#connection")).to_be_hidden()
    assert page.evaluate("location.hash") == job and page.is_hidden("#notice")
    before = iteration(page)
    poll(lambda: iteration(page) > before)
    page.click("#cancel")
    wait_status(page, "cancelled", timeout=30_000)


def in_view(page: Any, selector: str, height: int) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["y"] >= -1 and box["y"] + min(box["height"], 100) <= height + 1


def test_phone_width_brings_errors_and_the_result_into_view(browser: Any, server: str, tmp_path: Path) -> None:
    with guarded_context(browser, viewport={"width": 390, "height": 844}) as phone:
        page = open_studio(phone, server)
        # An upload refused while the photo zone is in view: the error, far below it, is brought into view.
        wrong = tmp_path / "notes.png"
        wrong.write_text("not a picture")
        page.evaluate("window.scrollTo(0, 0)")
        page.set_input_files("#content-file", str(wrong))
        page.wait_for_selector("#error:not([hidden])")
        poll(lambda: in_view(page, "#error", 844), timeout=5)
        assert "notes.png" in page.inner_text("#error") and "Pillow" not in page.inner_text("#error")

        choose_samples(page)
        settings(page, 48, 3)
        page.click("#start")
        wait_status(page, "done")
        # The finished picture (back below the settings once the run ends) is brought into view, and the focus
        # is on a control that can be used (Cancel, which had it, is off now).
        poll(lambda: in_view(page, "#preview", 844), timeout=5)
        assert focused(page) == "download"


def test_a_forgotten_result_is_marked_and_explained(
    context: Any, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_jobs, "MAX_FINISHED_JOBS", 2)
    page = open_studio(context, server)
    assert page.inner_text("#history-max") == "2"

    def run_one(seed: int) -> str:
        job = page.request.post(server + "/api/jobs", data={
            "content": "sample:chelsea_cat.jpg", "styles": ["sample:starry_night.jpg"],
            "settings": {"size": 32, "steps": 1, "seed": seed, "init": "noise"}}).json()
        poll(lambda: page.request.get(f"{server}/api/jobs/{job['id']}").json()["status"] == "done")
        return str(job["id"])

    first = run_one(11)
    run_one(12)
    # Listed by the pulse, without a reload; the page shows the older one.
    oldest = page.locator(f'#history li[data-id="{first}"]')
    sync_api.expect(oldest).to_be_visible(timeout=10_000)
    oldest.locator("button.thumb").click()
    wait_status(page, "done")
    assert page.get_attribute("#download", "aria-disabled") == "false"
    run_one(13)
    # The studio dropped it to make room: the entry stays, marked, without its PNG, and says why; so does the page.
    sync_api.expect(oldest).to_have_attribute("data-gone", "forgotten", timeout=10_000)
    assert oldest.locator("a[download]").count() == 0
    assert "keeps only the newest 2 results" in oldest.inner_text()
    assert page.get_attribute("#download", "aria-disabled") == "true"
    sync_api.expect(page.locator("#notice")).to_contain_text("gone from the studio")
    kept = page.locator("#history li:not([data-gone])")
    assert kept.count() == 2 and kept.first.locator("a[download]").count() == 1


def test_two_tabs_stay_consistent(context: Any, server: str) -> None:
    first, second = open_studio(context, server), open_studio(context, server)
    choose_samples(first)
    settings(first, 48, 5000)
    first.fill("#seed", "")  # left empty: the run gets a seed of its own
    first.click("#start")
    # The other tab learns of the run by itself: its banner offers to watch or cancel it.
    sync_api.expect(second.locator("#orphan")).to_be_visible(timeout=10_000)
    assert "running" in second.inner_text("#orphan-text")
    poll(lambda: iteration(first) >= 1)
    # A reload comes back to the run without pinning its seed into an empty Seed box.
    first.reload()
    first.wait_for_selector("body[data-ready=true]")
    wait_status(first, "running")
    assert first.input_value("#seed") == ""
    first.click("#cancel")
    wait_status(first, "cancelled", timeout=30_000)
    job = first.evaluate("location.hash").removeprefix("#job=")
    # ...and of its end: the banner goes, the History lists it, with its PNG (the image so far).
    sync_api.expect(second.locator("#orphan")).to_be_hidden(timeout=10_000)
    entry = second.locator(f'#history li[data-id="{job}"]')
    sync_api.expect(entry).to_be_visible(timeout=10_000)
    assert entry.locator("a[download]").count() == 1
    assert first.locator("#history li").count() == second.locator("#history li").count()


def test_drops_go_on_past_bad_files_and_styles_are_not_added_twice(context: Any, server: str) -> None:
    page = open_studio(context, server)
    # The style list offers the sample paintings only; the photo list the photos.
    styles = page.eval_on_selector_all("#style-sample option", "os => os.map(o => o.value).filter(v => v)")
    photos = page.eval_on_selector_all("#content-sample option", "os => os.map(o => o.value).filter(v => v)")
    assert styles == ["sample:great_wave.jpg", "sample:starry_night.jpg"]
    assert photos == ["sample:astronaut.jpg", "sample:chelsea_cat.jpg"]
    page.select_option("#style-sample", "sample:great_wave.jpg")
    page.click("#style-sample-add")
    dropped = page.evaluate("""async (wave) => {
        const canvas = document.createElement('canvas');
        canvas.width = 64; canvas.height = 48;
        const ctx = canvas.getContext('2d');
        ctx.fillStyle = '#3a3'; ctx.fillRect(0, 0, 64, 48);
        const green = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const sample = await (await fetch('/api/samples/sample:great_wave.jpg')).blob();
        const data = new DataTransfer();
        data.items.add(new File(['not a picture'], 'first_bad.png', {type: 'image/png'}));
        data.items.add(new File([green], 'green.png', {type: 'image/png'}));
        data.items.add(new File([sample], 'my_wave.jpg', {type: 'image/jpeg'}));
        data.items.add(new File([new Uint8Array(0)], 'second_bad.jpg', {type: 'image/jpeg'}));
        data.items.add(new File([green], 'green_again.png', {type: 'image/png'}));
        document.getElementById('style-drop').dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
        return true;
    }""", None)
    assert dropped
    sync_api.expect(page.locator("#error")).to_contain_text("green_again.png", timeout=30_000)
    # Every good file is used, every bad one reported, each on its line; the same picture is added once.
    assert page.locator("#style-list li").count() == 2
    sync_api.expect(page.locator("#style-list li").nth(1)).to_contain_text("green.png")
    lines = page.inner_text("#error").splitlines()
    assert len(lines) == 4, lines
    assert "first_bad.png" in lines[0] and "my_wave.jpg" in lines[1] and "great_wave.jpg" in lines[1]
    assert "second_bad.jpg" in lines[2] and "empty" in lines[2] and "already among the styles" in lines[3]
    # The sample itself again, from the list: refused the same way.
    page.click("#style-sample-add")
    sync_api.expect(page.locator("#error")).to_contain_text("'great_wave.jpg' is already among the styles")
    assert page.locator("#style-list li").count() == 2


def test_the_rate_keeps_its_unit_around_one_iteration_a_second(context: Any, server: str) -> None:
    page = open_studio(context, server)
    shown = page.evaluate("() => [1.1, 0.9, 0.7, 0.6, 0.9, 1.4, 1.6, 1.2].map(formatRate)")
    assert [text.split()[1] for text in shown] == ["it/s", "it/s", "it/s", "s/it", "s/it", "s/it", "it/s", "it/s"]
    assert shown[3] == "1.67 s/it" and shown[6] == "1.6 it/s"


def test_a_cancelled_fast_start_offers_its_first_guess(
    context: Any, server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from artistyle.fast import missing_dependencies

    if missing_dependencies():
        pytest.skip("the fast extra is not installed")
    release = hold_studio_runs(monkeypatch)  # no iteration until the page has cancelled
    page = open_studio(context, server)
    choose_samples(page)
    page.fill("#size", "64")
    page.fill("#seed", "8")
    page.click("#start")
    try:
        sync_api.expect(page.locator("#status")).to_contain_text("first guess", timeout=30_000)
        page.click("#cancel")
    finally:
        release.set()
    wait_status(page, "cancelled", timeout=30_000)
    assert "first guess is offered" in page.inner_text("#status")
    assert page.get_attribute("#download", "aria-disabled") == "true"
    assert focused(page) == "first-guess"
    with page.expect_download() as download:
        page.click("#first-guess")
    assert download.value.suggested_filename.endswith("_first_guess.png")
    path = tmp_path / "guess.png"
    download.value.save_as(path)
    record = read_image_metadata(path)
    assert record is not None and record["seed"] == 8


# ---------------------------------------------------------------- issue 24: the missing features

NOTIFICATIONS = """
    window.notified = [];
    window.Notification = class {
        constructor(title, options) { window.notified.push([title, options && options.body]); }
        static get permission() { return 'granted'; }
        static requestPermission() { return Promise.resolve('granted'); }
    };
    Object.defineProperty(document, 'hidden', {get: () => true});
"""


def test_several_seeds_per_start_with_progress_in_the_title_and_a_notification(
    browser: Any, server: str, tmp_path: Path
) -> None:
    with guarded_context(browser) as context:
        context.add_init_script(NOTIFICATIONS)
        # Every title the page sets, recorded as it is set: three tiny runs can end between two polls.
        context.add_init_script("""
            const title = Object.getOwnPropertyDescriptor(Document.prototype, 'title');
            window.titles = [];
            Object.defineProperty(document, 'title', {configurable: true, get() { return title.get.call(this); },
                set(v) { window.titles.push(v); title.set.call(this, v); }});
        """)
        page = open_studio(context, server)
        choose_samples(page)
        settings(page, 32, 3, seed=40)
        page.click("#notify")
        assert page.is_checked("#notify")
        page.fill("#runs", "3")
        titles: list[str] = []
        page.click("#start")

        def all_done() -> bool:
            titles.append(page.title())
            return status(page) == "done" and "seed 42" in page.inner_text("#status")

        poll(all_done)
        # Three runs, seeds 40, 41 and 42, followed in turn; the tab's title told the progress.
        sync_api.expect(page.locator("#history li").first).to_contain_text("seed 42")
        newest = page.locator("#history li strong").all_inner_texts()[:3]
        assert [int(t.split("seed ")[1].split()[0]) for t in newest] == [42, 41, 40]
        titles += page.evaluate("window.titles")
        assert any("%" in t for t in titles) and page.title() == "done \u00b7 ArtiStyle studio"
        assert "seed 42" in page.inner_text("#status")
        # One notification, at the end of the last run (the page was in the background).
        notified = page.evaluate("window.notified")
        assert len(notified) == 1 and "seed 42" in notified[0][1]
        # The download names differ per run: the seed is in each.
        names = set()
        for item in page.locator("#history li").all()[:2]:
            with page.expect_download() as download:
                item.locator("a[download]").click()
            names.add(download.value.suggested_filename)
        assert len(names) == 2 and all("_seed4" in name for name in names), names
        # Random and last run's seed.
        page.click("#seed-last")
        assert page.input_value("#seed") == "42"
        page.click("#seed-random")
        assert page.input_value("#seed").isdigit() and page.input_value("#seed") != "42"


def test_a_painted_png_gives_back_its_settings_and_the_form_its_command(
    context: Any, server: str, tmp_path: Path
) -> None:
    import shlex

    from artistyle.cli.options import build_parser, given_settings

    page = open_studio(context, server)
    choose_samples(page)
    settings(page, 48, 2, seed=23)
    page.select_option("#padding", "zeros")
    page.click("#start")
    wait_status(page, "done")
    job = page.evaluate("location.hash").removeprefix("#job=")
    painted = tmp_path / "painted.png"
    painted.write_bytes(page.request.get(f"{server}/api/jobs/{job}/result.png").body())

    fresh = open_studio(context, server)
    assert fresh.input_value("#seed") == "23"  # the same browser came back to the run (its seed was given)
    fresh.evaluate("location.hash = ''; localStorage.clear()")
    fresh.reload()
    fresh.wait_for_selector("body[data-ready=true]")
    assert fresh.input_value("#seed") == "" and fresh.input_value("#padding") == "reflect"
    # Chosen for its settings: they go back in the form, with the seed.
    fresh.set_input_files("#record-file", str(painted))
    sync_api.expect(fresh.locator("#notice")).to_contain_text("seed (23)")
    assert fresh.input_value("#seed") == "23" and fresh.input_value("#padding") == "zeros"
    assert fresh.input_value("#size") == "48" and fresh.input_value("#steps") == "2"
    # Dropped as a style: added, and its settings offered.
    fresh.fill("#seed", "")
    fresh.evaluate("""async (job) => {
        const blob = await (await fetch(`/api/jobs/${job}/result.png`)).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'painted.png', {type: 'image/png'}));
        document.getElementById('style-drop').dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
    }""", job)
    sync_api.expect(fresh.locator("#record-offer")).to_be_visible()
    assert "with seed 23" in fresh.inner_text("#record-offer-text")
    sync_api.expect(fresh.locator("#style-list li")).to_contain_text("painted.png")
    fresh.click("#record-use")
    assert fresh.input_value("#seed") == "23" and fresh.is_hidden("#record-offer")
    # Dropped elsewhere on the page (the browser would leave the page for it): its settings.
    fresh.fill("#seed", "")
    fresh.evaluate("""async (job) => {
        const blob = await (await fetch(`/api/jobs/${job}/result.png`)).blob();
        const data = new DataTransfer();
        data.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
        document.getElementById('preview-box').dispatchEvent(
            new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", job)
    sync_api.expect(fresh.locator("#notice")).to_contain_text("of 'dropped.png' are in the form")
    assert fresh.input_value("#seed") == "23" and fresh.locator("#style-list li").count() == 1

    # Ctrl+V with an image: the photo where there is none, then a style.
    fresh.click("#style-list li button.remove")
    fresh.evaluate("""async () => {
        const blob = await (await fetch('/api/samples/sample:astronaut.jpg')).blob();
        for (let i = 0; i < 2; i++) {
            const data = new DataTransfer();
            data.items.add(new File([blob], 'image.png', {type: 'image/jpeg'}));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
            await new Promise((resolve) => setTimeout(resolve, 1500));
        }
    }""")
    sync_api.expect(fresh.locator("#content-name")).to_contain_text("pasted image.png")
    sync_api.expect(fresh.locator("#style-list li")).to_have_count(1)
    sync_api.expect(fresh.locator("#notice")).to_contain_text("added to the styles")

    # The form as a command: the settings given, the images by name (a sample by its path here), -o.
    fresh.fill("#size", "64")
    fresh.click("#copy-command")
    sync_api.expect(fresh.locator("#command-row")).to_be_visible()
    words = shlex.split(fresh.input_value("#command"))
    assert words[:3] == ["artistyle", "pasted image.png", "pasted image.png"]
    assert words[-2] == "-o" and words[-1].endswith("_seed23.png")
    given = given_settings(build_parser().parse_args(words[1:-2]))
    assert given["size"] == 64 and given["seed"] == 23 and given["padding"] == "zeros" and given["steps"] == 2
