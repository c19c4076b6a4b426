"""``artistyle batch`` and :mod:`artistyle.batch`: job lists, names, the journal, skipping, failures, the contact
sheet, bad input, and stopping (Ctrl-C, kill -9) then finishing. Tiny images, 2 steps, CPU. Video jobs:
tests/test_batch_video.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from artistyle import StyleConfig
from artistyle.batch import (
    JOURNAL_NAME,
    SHEET_NAME,
    Batch,
    JobSpec,
    make_jobs,
    product_jobs,
    read_jobs_file,
    settings_hash,
)
from artistyle.errors import UsageError

from .conftest import REPO, make_content, make_style, other_style, run

FAST = ["--device", "cpu", "--size", "32", "--steps", "2", "--quiet"]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of three photos, named so that natural order differs from plain sorting."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, size in (("p1.png", (40, 32)), ("p10.png", (32, 40)), ("p2.jpg", (36, 36))):
        make_content(size).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def paintings(tmp_path: Path) -> Path:
    folder = tmp_path / "paintings"
    folder.mkdir()
    make_style((40, 40)).save(folder / "wave.png")
    other_style((40, 40)).save(folder / "blob.png")
    return folder


def journal(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / JOURNAL_NAME).read_text().splitlines() if line.strip()]


def statuses(outdir: Path, last: int) -> dict[str, str]:
    return {Path(r["output"]).name: r["status"] for r in journal(outdir)[-last:]}


# -- job lists and names -------------------------------------------------------------------------------------------


def test_cartesian_and_zip_lists_in_natural_order(photos: Path, paintings: Path) -> None:
    specs = product_jobs(str(photos), str(paintings))
    assert [(s.content.name, s.styles[0].name) for s in specs] == [
        ("p1.png", "blob.png"), ("p1.png", "wave.png"), ("p2.jpg", "blob.png"), ("p2.jpg", "wave.png"),
        ("p10.png", "blob.png"), ("p10.png", "wave.png")]
    globbed = product_jobs(str(photos / "p1*.png"), str(paintings / "wave.png"))
    assert [s.content.name for s in globbed] == ["p1.png", "p10.png"]
    (photos / "p2.jpg").unlink()
    zipped = product_jobs(str(photos), str(paintings), pairs=True)
    assert [(s.content.name, s.styles[0].name) for s in zipped] == [("p1.png", "blob.png"), ("p10.png", "wave.png")]
    make_content().save(photos / "p3.png")
    with pytest.raises(UsageError, match="3 contents and 2 styles"):
        product_jobs(str(photos), str(paintings), pairs=True)


def test_output_names_collisions_and_inputs(tmp_path: Path, paintings: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        make_content().save(tmp_path / folder / "cat.png")
    make_content().save(out / "cat__wave.png")  # an input that sits where an output would go
    wave, blob = paintings / "wave.png", paintings / "blob.png"
    specs = [JobSpec(tmp_path / "a" / "cat.png", (wave,)), JobSpec(tmp_path / "b" / "cat.png", (wave,)),
             JobSpec(out / "cat__wave.png", (wave,)), JobSpec(tmp_path / "a" / "cat.png", (wave, blob)),
             JobSpec(tmp_path / "b" / "cat.png", (wave,), output="mine.png")]
    names = [job.name for job in make_jobs(specs, out, StyleConfig())]
    assert names == ["cat__wave__2.png", "cat__wave__3.png", "cat__wave__wave.png", "cat__wave+blob.png",
                     "mine.png"]
    assert names == [job.name for job in make_jobs(specs, out, StyleConfig())]  # deterministic
    with pytest.raises(UsageError, match="given to two jobs"):
        make_jobs([JobSpec(wave, (blob,), "x.png", source="j line 2"), JobSpec(blob, (wave,), "x.png")], out,
                  StyleConfig())
    with pytest.raises(UsageError, match="is an input file"):
        make_jobs([JobSpec(out / "cat__wave.png", (blob,)), JobSpec(wave, (blob,), "cat__wave.png", source="j line 2")], out, StyleConfig())


def test_jobs_files_csv_and_json_lines(tmp_path: Path, photos: Path, paintings: Path) -> None:
    csv = tmp_path / "jobs.csv"
    csv.write_text("content,styles,output,size,style-weight,style_blend,original_colors\n"
                   "# a comment row\n"
                   "photos/p1.png,paintings/wave.png;paintings/blob.png,first,48,0.01,0.7 0.3,true\n"
                   "\n"
                   f"{photos / 'p2.jpg'},paintings/wave.png,,,,,\n")
    first, second = read_jobs_file(csv)
    assert first.content == tmp_path / "photos" / "p1.png" and len(first.styles) == 2 and first.output == "first.png"
    assert first.settings == {"size": 48, "style_weight": 0.01, "style_blend": (0.7, 0.3), "original_colors": True}
    assert first.source == "jobs.csv line 3" and second.settings == {} and second.output is None
    jobs = make_jobs([first, second], tmp_path / "out", StyleConfig(steps=2))
    assert jobs[0].config.size == 48 and jobs[0].config.steps == 2 and jobs[1].config.size is None
    assert jobs[1].name == "p2__wave.png"

    lines = tmp_path / "jobs.jsonl"
    lines.write_text(json.dumps({"content": "photos/p1.png", "style": "paintings/wave.png", "settings": {"size": 40}})
                     + "\n\n" + json.dumps({"content": "photos/p2.jpg", "styles": ["paintings/blob.png"],
                                            "style_weight": 0.1, "init": "content"}) + "\n")
    a, b = read_jobs_file(lines)
    assert a.settings == {"size": 40} and b.settings == {"style_weight": 0.1, "init": "content"}
    assert b.source == "jobs.jsonl line 3"


@pytest.mark.parametrize(("text", "message"), [
    ("content,style,colour\np.png,s.png,red\n", "jobs.csv line 1: unknown column 'colour'"),
    ("content,style,size\np.png,s.png,48\np.png,s.png,big\n", "jobs.csv line 3: size must be a number, not 'big'"),
    ("content,style,size\np.png,s.png,8\n", "jobs.csv line 2: size must be at least 32 px, not 8"),
    ("content,style\np.png,\n", "jobs.csv line 2: no style image"),
    ("content,style,output\np.png,s.png,sub/x.png\n", "jobs.csv line 2: output 'sub/x.png' must be a plain file name"),
    ("content,style,style_blend\np.png,s.png,0.5 0.5\n", "jobs.csv line 2: 2 style-blend weights given for 1 style"),
    ("content,style\n", "has no jobs"),
])
def test_a_bad_jobs_file_row_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "jobs.csv").write_text(text)
    code, _, err = run(capsys, "batch", "--jobs", str(tmp_path / "jobs.csv"), "-o", str(tmp_path / "out"), *FAST)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_bad_json_lines_row(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "jobs.jsonl").write_text('{"content": "p.png", "style": "s.png"}\n{"content": "p.png", "style": \n')
    code, _, err = run(capsys, "batch", "--jobs", str(tmp_path / "jobs.jsonl"), "-o", str(tmp_path / "out"), *FAST)
    assert code == 2 and "jobs.jsonl line 2: not valid JSON" in err and err.count("\n") == 1


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("contents", "message"), [
    ("missing", "content 'missing' does not exist"),
    ("empty", "content folder 'empty' is empty"),
    ("texts", "content folder 'texts' has no images or videos"),
    ("texts/*.png", "content pattern 'texts/*.png' matches no file"),
    ("texts/*", "content pattern 'texts/*' matches no images"),
])
def test_bad_contents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, paintings: Path, monkeypatch: pytest.MonkeyPatch,
    contents: str, message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    code, _, err = run(capsys, "batch", contents, str(paintings), "-o", "out", *FAST)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_bad_usage(capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path) -> None:
    file = tmp_path / "file.png"
    make_content().save(file)
    for argv, message in (
        ([str(photos), str(paintings), "-o", str(file)], "is a file; give a folder"),
        ([str(photos), str(photos / "p1.png"), str(paintings), "-o", "x"], "quote a glob"),
        ([str(photos), "-o", "x"], "CONTENTS and STYLES are needed"),
        (["--jobs", "j.csv", str(photos), str(paintings), "-o", "x"], "not both"),
        ([str(photos), str(paintings), "-o", "x", "--style-weight", "-1"], "style-weight must be a finite number"),
        ([str(photos), str(paintings), "-o", "x", "--style-blend", "1", "2"], "2 style-blend weights given for 1"),
    ):
        code, _, err = run(capsys, "batch", *argv, *FAST)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)


# -- running: journal, skip on rerun, failures, the contact sheet --------------------------------------------------


def test_journal_skip_on_rerun_force_and_changed_settings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path
) -> None:
    out = tmp_path / "out"
    argv = ["batch", str(photos / "p1.png"), str(paintings), "-o", str(out), *FAST]
    assert run(capsys, *argv)[0] == 0
    first = journal(out)
    assert [r["status"] for r in first] == ["ok", "ok"]
    record = first[0]
    assert set(record) == {"time", "name", "content", "styles", "output", "status", "error", "seconds", "seed", "device",
                           "settings", "settings_hash", "worker"}
    assert record["worker"] == f"local:{os.getpid()}" and record["device"] == "cpu" and record["error"] is None
    assert record["output"] == str(out / "p1__blob.png") and record["settings"]["steps"] == 2
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    assert run(capsys, *argv)[0] == 0  # nothing to do: both skipped, nothing rewritten
    assert statuses(out, 2) == {"p1__blob.png": "skipped", "p1__wave.png": "skipped"}
    assert journal(out)[-1]["settings_hash"] == first[1]["settings_hash"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}

    (out / "p1__wave.png").unlink()  # a missing output is painted again
    assert run(capsys, *argv)[0] == 0
    assert statuses(out, 2) == {"p1__blob.png": "skipped", "p1__wave.png": "ok"}

    assert run(capsys, *argv, "--force")[0] == 0
    assert statuses(out, 2) == {"p1__blob.png": "ok", "p1__wave.png": "ok"}

    assert run(capsys, *argv, "--style-weight", "0.01")[0] == 0  # other settings: another picture
    assert statuses(out, 2) == {"p1__blob.png": "ok", "p1__wave.png": "ok"}
    assert journal(out)[-1]["settings_hash"] != first[1]["settings_hash"]
    assert run(capsys, *argv, "--style-weight", "0.01", "--device", "cpu")[0] == 0  # the device is not the picture
    assert statuses(out, 2) == {"p1__blob.png": "skipped", "p1__wave.png": "skipped"}


def test_settings_hash_follows_inputs_not_paths(tmp_path: Path, photos: Path, paintings: Path) -> None:
    out = tmp_path / "out"
    [job] = make_jobs([JobSpec(photos / "p1.png", (paintings / "wave.png",))], out, StyleConfig(size=32))
    same = settings_hash(job)
    assert settings_hash(job) == same and len(same) == 64
    make_style((44, 44)).save(paintings / "wave.png")  # the style file changed: another picture
    assert settings_hash(job) != same


def test_a_bad_file_fails_only_its_jobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path
) -> None:
    (photos / "p2.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    code, _, err = run(capsys, "batch", str(photos), str(paintings / "wave.png"), "-o", str(out),
                       *FAST[:-1])  # not quiet: the summary
    assert code == 1
    records = {Path(r["output"]).name: r for r in journal(out)}
    assert {n: r["status"] for n, r in records.items()} == {
        "p1__wave.png": "ok", "p2__wave.png": "failed", "p10__wave.png": "ok"}
    reason = records["p2__wave.png"]["error"]
    assert "p2.jpg" in reason and "\n" not in reason
    assert "failed jobs" in err and "p2__wave.png" in err
    assert not (out / "p2__wave.png").exists() and not list(out.glob(".*"))  # no partial file, no temporary


def test_memory_and_nan_failures_stay_local(tmp_path: Path, photos: Path, paintings: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from artistyle import nst as nst_module

    paint = nst_module.NST.paint

    def failing(self: nst_module.NST, content: str, styles: list[str]) -> object:
        if content.endswith("p2.jpg"):
            raise MemoryError()
        if content.endswith("p10.png"):
            monkeypatch.setattr(nst_module.Transfer, "_step", lambda self: (float("nan"), {}))
        return paint(self, content, styles)

    monkeypatch.setattr(nst_module.NST, "paint", failing)
    out = tmp_path / "out"
    jobs = make_jobs(product_jobs(str(photos), str(paintings / "wave.png")), out, StyleConfig(size=32, steps=5))
    outcome = Batch(jobs, out).run()
    assert [r.status for r in outcome.results if r] == ["ok", "failed", "failed"]
    assert outcome.results[1] is not None and outcome.results[1].error == "out of memory; try a smaller --size"
    assert outcome.results[2] is not None and "nan" in (outcome.results[2].error or "")


class Sheet(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "tr" and values.get("class") == "job":
            self.rows.append(values["id"] or "")
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]


def test_contact_sheet_has_every_job_and_nothing_external(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path
) -> None:
    odd = photos / "<b>&'odd\".png"  # every user string is escaped
    make_content((32, 32)).save(odd)
    (photos / "p2.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    code, _, _ = run(capsys, "batch", str(photos), str(paintings / "blob.png"), "-o", str(out), *FAST)
    assert code == 1
    page = (out / SHEET_NAME).read_text()
    sheet = Sheet()
    sheet.feed(page)
    assert sorted(sheet.rows) == sorted(f"{stem}__blob.png" for stem in ("<b>&'odd\"", "p1", "p2", "p10"))
    assert sheet.links and all(link.startswith("data:image/jpeg;base64,") for link in sheet.links)
    assert sheet.tags.count("b") == len(sheet.rows)  # the job names' own <b>, not the file name's
    assert "script" not in sheet.tags and "link" not in sheet.tags and "url(http" not in page
    assert "not a jpeg" not in page and "p2.jpg" in page and "failed" in page


def test_damaged_journal_line_is_tolerated(capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path,
                                           paintings: Path) -> None:
    out = tmp_path / "out"
    argv = ["batch", str(photos / "p1.png"), str(paintings / "wave.png"), "-o", str(out), *FAST]
    assert run(capsys, *argv)[0] == 0
    with open(out / JOURNAL_NAME, "a") as fh:
        fh.write('{"content": "/x", "styles": ["/y"], "outp')  # a kill in the middle of a write
    assert run(capsys, *argv)[0] == 0
    lines = (out / JOURNAL_NAME).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["status"] == "skipped"


# -- stopping: a real Ctrl-C, and kill -9, then finishing ----------------------------------------------------------


def stop_mid_batch(tmp_path: Path, photos: Path, paintings: Path, signum: int) -> tuple[Path, Path, int]:
    """Start a batch whose third job is long, send ``signum`` once two jobs are done; returns jobs file, OUTDIR, status."""
    jobs = tmp_path / "jobs.csv"
    wave = paintings / "wave.png"
    jobs.write_text(f"content,style,steps\n{photos / 'p1.png'},{wave},2\n{photos / 'p2.jpg'},{wave},2\n"
                    f"{photos / 'p10.png'},{wave},100000\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "artistyle", "batch", "--jobs", str(jobs), "-o", str(out),
                                "--device", "cpu", "--size", "32", "-q"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if (out / JOURNAL_NAME).exists() and len(journal(out)) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # the long job is under way
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    if signum == signal.SIGINT:
        assert "interrupted" in err and "Traceback" not in err, err
    jobs.write_text(jobs.read_text().replace("100000", "2"))  # the next run finishes the long job quickly
    return jobs, out, process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_stopped_batch_keeps_its_outputs_and_a_rerun_finishes_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path, signum: int
) -> None:
    jobs, out, code = stop_mid_batch(tmp_path, photos, paintings, signum)
    assert code == (130 if signum == signal.SIGINT else -signal.SIGKILL)
    before = journal(out)
    assert [r["status"] for r in before[:2]] == ["ok", "ok"]
    if signum == signal.SIGINT:  # the running job is recorded, its partial picture is not written
        assert [(r["status"], r["error"]) for r in before[2:]] == [("failed", "interrupted")]
        assert (out / SHEET_NAME).exists()
    assert not (out / "p10__wave.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    stamps = {r["output"]: Path(r["output"]).stat().st_mtime_ns for r in before[:2]}

    code, _, _ = run(capsys, "batch", "--jobs", str(jobs), "-o", str(out), "--device", "cpu", "--size", "32", "-q")
    assert code == 0
    assert statuses(out, 3) == {"p1__wave.png": "skipped", "p2__wave.png": "skipped", "p10__wave.png": "ok"}
    assert stamps == {name: Path(name).stat().st_mtime_ns for name in stamps}  # nothing redone


# -- --workers N: a pool of worker processes -----------------------------------------------------------------------


@pytest.mark.slow
def test_workers_paint_what_one_process_paints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: Path, paintings: Path
) -> None:
    from PIL import Image

    argv = [str(photos), str(paintings / "wave.png"), *FAST, "--seed", "1"]
    assert run(capsys, "batch", *argv, "-o", str(tmp_path / "one"))[0] == 0
    assert run(capsys, "batch", *argv, "-o", str(tmp_path / "two"), "--workers", "2")[0] == 0
    records = journal(tmp_path / "two")
    assert [r["status"] for r in records] == ["ok"] * 3
    workers = {r["worker"] for r in records}
    assert all(w.startswith("local:") and w != f"local:{os.getpid()}" for w in workers), workers
    for record in records:  # the same pixels (the files' sRGB profiles carry their process's creation time)
        name = Path(record["output"]).name
        assert (Image.open(tmp_path / "one" / name).tobytes() == Image.open(tmp_path / "two" / name).tobytes()), name
    assert not [p for p in (tmp_path / "two").iterdir() if p.name.startswith(".")]


def session_processes(session: int) -> list[int]:
    """The processes still alive in a session (those a run started with start_new_session=True left)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_ctrl_c_with_workers_ends_running_jobs_unwritten_and_leaves_no_process(
    tmp_path: Path, photos: Path, paintings: Path
) -> None:
    jobs = tmp_path / "jobs.csv"
    wave = paintings / "wave.png"
    jobs.write_text(f"content,style,steps\n{photos / 'p1.png'},{wave},2\n{photos / 'p2.jpg'},{wave},100000\n"
                    f"{photos / 'p10.png'},{wave},100000\n{photos / 'p1.png'},{paintings / 'blob.png'},2\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "artistyle", "batch", "--jobs", str(jobs), "-o", str(out),
                                "--device", "cpu", "--size", "32", "-q", "--workers", "2"], env=env,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ((out / JOURNAL_NAME).exists() and journal(out)):
        time.sleep(0.05)
    time.sleep(1.5)  # both long jobs under way
    os.killpg(process.pid, signal.SIGINT)  # as the terminal sends Ctrl-C: to every process of the group
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    records = {Path(r["output"]).name: (r["status"], r["error"]) for r in journal(out)}
    assert records == {"p1__wave.png": ("ok", None), "p2__wave.png": ("failed", "interrupted"),
                       "p10__wave.png": ("failed", "interrupted")}
    assert not (out / "p2__wave.png").exists() and not (out / "p10__wave.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    time.sleep(0.5)
    assert session_processes(process.pid) == []  # no worker outlived the driver


@pytest.mark.slow
def test_a_dead_worker_fails_its_job_and_is_replaced(tmp_path: Path, photos: Path, paintings: Path) -> None:
    import multiprocessing

    from artistyle.batch import BatchProgress
    from artistyle.batch.pool import PoolExecutor

    out = tmp_path / "out"
    wave = paintings / "wave.png"
    specs = [JobSpec(photos / "p1.png", (wave,), settings={"steps": 100000}), JobSpec(photos / "p2.jpg", (wave,))]
    jobs = make_jobs(specs, out, StyleConfig(size=32, steps=2, seed=1, device="cpu"))
    killed: list[int] = []

    def kill_the_worker(event: BatchProgress) -> None:
        if event.running and event.done > 0 and not killed:  # the long job is painting
            [worker] = multiprocessing.active_children()
            killed.append(worker.pid or 0)
            os.kill(worker.pid or 0, signal.SIGKILL)

    outcome = Batch(jobs, out, executor=PoolExecutor(1)).run(kill_the_worker)
    first, second = outcome.results
    assert first is not None and first.status == "failed" and "worker process died (signal 9)" in (first.error or "")
    assert second is not None and second.status == "ok" and second.worker != f"local:{killed[0]}"
    assert not (out / "p1__wave.png").exists() and (out / "p2__wave.png").exists()
    assert not multiprocessing.active_children()


def test_a_job_painted_from_its_input_bytes_alone(tmp_path: Path, photos: Path, paintings: Path) -> None:
    """What a Ray worker does: the inputs (with an --init image and masks) travel as bytes; the originals may be gone."""
    import io

    from PIL import Image

    from artistyle.batch.paint import paint_job, read_inputs, write_output

    masks = tmp_path / "masks"
    masks.mkdir()
    Image.new("L", (40, 32), 255).save(masks / "all.png")
    settings = {"init": str(photos / "p2.jpg"), "masks": (str(masks / "all.png"),)}
    [job] = make_jobs([JobSpec(photos / "p1.png", (paintings / "wave.png",), settings=settings)], tmp_path / "out",
                      StyleConfig(size=32, steps=2, seed=1, device="cpu"))
    (tmp_path / "out").mkdir()
    here = paint_job(job, worker="local:1")
    assert here.result.status == "ok" and here.data is not None
    inputs = read_inputs(job)
    assert set(inputs) == {str(photos / "p1.png"), str(paintings / "wave.png"), str(photos / "p2.jpg"),
                           str(masks / "all.png")}
    for name in inputs:
        Path(name).rename(name + ".away")
    there = paint_job(job, worker="ray:x:1", inputs=inputs)
    assert there.result.status == "ok" and there.result.worker == "ray:x:1"
    assert write_output(there).status == "ok"
    assert Image.open(job.output).tobytes() == Image.open(io.BytesIO(here.data)).tobytes()
    missing = paint_job(job, worker="ray:x:1", inputs={k: v for k, v in inputs.items() if "p2.jpg" not in k})
    assert missing.result.status == "failed" and str(photos / "p2.jpg") in (missing.result.error or "")
    assert "artistyle-job-" not in (missing.result.error or "")  # messages name the driver's paths
