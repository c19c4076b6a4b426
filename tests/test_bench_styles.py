"""benchmarks/bench_styles.py, smoke-tested on one pair, two arms, at 64 px with a few steps."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_styles.py"
IMAGES = REPO.parent / "shared" / "images"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_styles", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_pairs_are_fixed_distinct_and_cover_every_painting_and_photo() -> None:
    bench = load_script()
    pairs = bench.choose_pairs(18)
    assert pairs == bench.choose_pairs(18) and len(set(pairs)) == 18
    assert pairs[:2] == [("astronaut.jpg", "starry_night.jpg"), ("tubingen.jpg", "great_wave.jpg")]
    for names in (bench.CONTENTS, bench.STYLES):
        assert all(sum(name in pair for pair in pairs) == 3 for name in names)
    assert {style for _, style in bench.choose_pairs(6)} == set(bench.STYLES)
    assert len(set(bench.choose_pairs(36))) == 36


@pytest.mark.slow  # paints twice and scores in a subprocess
@pytest.mark.skipif(not IMAGES.is_dir(), reason="shared/images is not there")
def test_one_pair_two_arms_table_json_gallery_and_resume(tmp_path: Path) -> None:
    out, gallery = tmp_path / "run", tmp_path / "docs" / "gallery_styles.md"
    command = [sys.executable, str(SCRIPT), "--pairs", "1", "--size", "64", "--steps", "3", "--arms", "gram",
               "meanstd", "--out", str(out), "--gallery", str(gallery), "--threads", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=str(REPO), check=False,
                           env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    report = first.stdout
    assert report.startswith("# Style losses compared (issue 25)")
    assert "| metric | better | optimised by | gram (default) | meanstd |" in report
    assert "## At equal wall time" in report
    gram_row = next(line for line in report.splitlines() if line.startswith("| Gram distance |"))
    assert gram_row.count("(1)*") == 1 and gram_row.count("*") == 2  # both optimise it; one of them wins
    data = json.loads((out / "results.json").read_text())
    entry = data["pairs"]["astronaut__starry_night"]
    assert set(entry["arms"]) == {"gram", "meanstd"}
    for arm in entry["arms"].values():
        assert arm["seconds"] > 0 and arm["iterations"] == 3
        assert (out / "astronaut__starry_night" / arm["picture"]).is_file()
        assert {"content.conv4_2", "style.gram", "style.sliced_wasserstein"} <= set(arm["panel"])
    assert entry["budget_s"] == entry["arms"]["gram"]["seconds"]
    assert (out / "report.md").read_text().strip() == report.strip()
    page = gallery.read_text()
    assert "(images/gallery_styles/astronaut__starry_night__meanstd.jpg)" in page
    pictures = list((gallery.parent / "images" / "gallery_styles").iterdir())
    assert len(pictures) == 4 and all(p.stat().st_size < 20_000 for p in pictures)

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=str(REPO), check=False,
                           env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "astronaut__starry_night: gram" not in again.stderr  # resumed: nothing painted again
    assert json.loads((out / "results.json").read_text())["pairs"] == data["pairs"]


def test_shards_split_the_pairs_and_a_plain_run_merges_their_arms(tmp_path: Path) -> None:
    bench = load_script()
    assert bench.parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "x", "1/2/3"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_shard(bad)
    settings = {"size": 64, "steps": 3, "fast_steps": None, "baseline_steps": 300, "seed": 0, "command": "x"}
    first = {"settings": settings, "pairs": {"a": {"content": "a", "style": "s", "arms": {"gram": {"n": 1}}}}}
    second = {"settings": settings, "pairs": {"b": {"content": "b", "style": "s", "arms": {"gram": {"n": 2}}}}}
    bench.save_results(tmp_path, first, (1, 2))
    bench.save_results(tmp_path, second, (2, 2))
    assert (tmp_path / "results.shard-1-of-2.json").is_file() and not (tmp_path / "results.json").exists()
    assert bench.load_results(tmp_path, settings, (1, 2))["pairs"].keys() == {"a"}  # a shard reads its own
    merged = {"settings": settings, "pairs": {"a": {"content": "a", "style": "s", "arms": {"gram": {"n": 9}}}}}
    bench.save_results(tmp_path, merged)  # the plain file's own arms win over a shard's
    pairs = bench.load_results(tmp_path, settings)["pairs"]
    assert pairs["a"]["arms"]["gram"] == {"n": 9} and pairs["b"]["arms"]["gram"] == {"n": 2}
    with pytest.raises(SystemExit, match="use another --out"):
        bench.load_results(tmp_path, {**settings, "size": 96})
