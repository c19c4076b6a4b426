"""benchmarks/bench_gpu.py, smoke-tested on the CPU at tiny sizes (the real run needs a CUDA GPU)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = pytest.mark.slow  # runs the benchmark script in subprocesses

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_gpu.py"
BASELINE = REPO.parent / "shared" / "bench" / "baseline_tutorial.py"


def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(REPO), check=False)


def table(report: str, heading: str) -> list[list[str]]:
    """The body rows (cells stripped) of the Markdown table after the heading that starts with ``heading``."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## " + heading))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header row


def positive(cell: str) -> bool:
    return float(cell) > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench_gpu") / "bench.json"
    args = ["--device", "cpu", "--size", "32", "--evals", "3", "--warmup", "1", "--precisions", "fp32", "bf16",
            "--baseline-steps", "2", "--sizes", "32", "48", "64", "--simulate-oom-from", "48", "--ladder-evals", "2",
            "--tile", "32", "--compile", "--compile-backend", "eager", "--video-frames", "3", "--video-first-steps",
            "2", "--video-steps", "2", "--json", str(out)]
    if not BASELINE.is_file():
        args.append("--skip-baseline")
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_header(smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = smoke
    report = proc.stdout
    assert report.startswith("# ArtiStyle GPU benchmark")
    assert re.search(r"^- Date: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", report, re.M)
    assert re.search(r"^- Command: `python .*bench_gpu\.py --device cpu --size 32 ", report, re.M)
    assert f"torch {torch.__version__}" in report
    assert "- Device: cpu (" in report and "CUDA " in report
    assert data["report"] == report.rstrip("\n")
    assert data["info"]["torch"] == torch.__version__


def test_target_rows(smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = smoke
    assert [r["precision"] for r in data["target"]] == ["fp32", "bf16"]  # no cudnn.benchmark-off row on a CPU
    for r in data["target"]:
        assert r["status"] == "ok" and r["evals"] == 3 and r["size"] == 32
        for key in ("wall_s", "s_per_eval", "fwd_bwd_median_s", "setup_s", "process_peak_rss"):
            assert r[key] > 0, key
        assert r["other_s_per_iter"] >= 0
        assert math.isfinite(r["final_loss"]) and r["finite"]
        assert r["max_allocated"] is None  # CUDA counters only
        assert r["s_per_eval"] == pytest.approx(r["wall_s"] / 3)
    rows = table(proc.stdout, "32x32, 3 evaluations")
    ours = [row for row in rows if row[0] == "ArtiStyle"]
    assert [row[1] for row in ours] == ["fp32", "bf16"]
    for row in ours:
        assert row[2:4] == ["32", "3"]
        assert all(positive(cell) for cell in row[4:7] + [row[8], row[11]])
        assert row[9:11] == ["n/a", "n/a"] and row[-1] == "ok"
    assert "Target check not applicable" in proc.stdout


@pytest.mark.skipif(not BASELINE.is_file(), reason="shared/bench/baseline_tutorial.py is not there")
def test_baseline_rows(smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = smoke
    assert list(data["baseline"]) == ["tutorial", "tutorial --freeze-weights"]
    for name, b in data["baseline"].items():
        assert b["status"] == "ok", b
        assert b["evals"] == 2 and b["size"] == 32 and b["freeze_weights"] == name.endswith("weights")
        assert b["s_per_eval"] > 0 and b["fwd_bwd_median_s"] > 0
    rows = table(proc.stdout, "32x32, 3 evaluations")
    named = {row[0]: row for row in rows}
    assert named["tutorial"][3] == "2" and positive(named["tutorial"][5])
    assert named["tutorial --freeze-weights"][-2] == "1.00x (reference)"
    speed_up = next(row for row in rows if row[:2] == ["ArtiStyle", "fp32"])[-2]
    assert re.fullmatch(r"\d+\.\d\dx / \d+\.\d\dx", speed_up), speed_up
    expected = data["baseline"]["tutorial"]["s_per_eval"] / data["target"][0]["s_per_eval"]
    assert float(speed_up.split("x")[0]) == pytest.approx(expected, abs=0.006)


def test_size_ladder_stops_at_the_first_oom_then_tiles(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    proc, data = smoke
    ladder, tiled = data["ladder"], data["tiled"]
    assert [(r["size"], r["status"]) for r in ladder] == [(32, "ok"), (48, "OOM")]  # 64 is not tried
    assert "simulated" in ladder[1]["error"]
    assert [(r["size"], r["tile"], r["status"]) for r in tiled] == [(48, 32, "ok"), (64, 32, "ok")]
    for r in ladder[:1] + tiled:
        assert r["evals"] == 2 and r["s_per_eval"] > 0 and r["setup_s"] > 0 and r["planner_estimate"] > 0
        assert r["precision"] == "fp32" and r["lbfgs_history"] >= 5
    rows = table(proc.stdout, "Largest size, untiled")
    assert [row[0] for row in rows] == ["32", "48"]
    assert rows[0][2] == "untiled" and positive(rows[0][5]) and rows[0][-1] == "ok"
    assert rows[1][-1].startswith("OOM: OutOfMemoryError")
    assert "Untiled: largest that ran: 32 px; first failure at 48 px (OOM)" in proc.stdout
    rows = table(proc.stdout, "Larger sizes, tiled")
    assert [(row[0], row[2], row[-1]) for row in rows] == [("48", "32", "ok"), ("64", "32", "ok")]
    assert "Tiled: largest that ran: 64 px" in proc.stdout


def test_compile_rows_never_crash(smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = smoke
    assert [r["memory_saving"] for r in data["compile"]] == [True, False]
    for r in data["compile"]:
        assert r["status"] == "ok", r
        assert r["evals"] == 3 and r["s_per_eval"] > 0 and r["compile_and_warmup_s"] > 0
    rows = [row for row in table(proc.stdout, "32x32, 3 evaluations") if "torch.compile" in row[0]]
    assert len(rows) == 2 and all(row[-1].startswith("ok") for row in rows)


def test_video_row(smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
    proc, data = smoke
    if importlib.util.find_spec("av") is None or importlib.util.find_spec("cv2") is None:
        assert data["video"]["status"].startswith("skipped (no video extra")
        return
    video = data["video"]
    assert video["status"] == "ok" and video["frames"] == 3 and video["later_s_per_frame"] > 0
    rows = table(proc.stdout, "Video at 32 px")
    assert len(rows) == 1 and all(positive(cell) for cell in rows[0])


def test_report_of_cuda_rows() -> None:
    """The CUDA-only parts of the report (memory columns, target verdicts, a failed baseline), from made-up rows."""
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    info = {"date_utc": "2026-01-01 00:00:00 UTC", "command": "python benchmarks/bench_gpu.py", "torch": "2.x",
            "artistyle": "0", "python": "3", "host": "h", "device": "cuda", "cuda": "12.8", "cudnn": 91000,
            "cudnn_benchmark": True, "tf32_conv": True, "tf32_matmul": False, "device_name": "NVIDIA H200",
            "device_memory": 150 * 2**30, "auto_precision": "bf16"}
    run_row = dict(status="ok", evals=300, wall_s=1.5, s_per_eval=0.005, fwd_bwd_median_s=0.004, size=512,
                   other_s_per_iter=0.001, setup_s=0.2, max_allocated=1.2e9, max_reserved=2e9, final_loss=1e5,
                   finite=True, label="ArtiStyle", cudnn_benchmark=True)
    results = {
        "target": [dict(run_row, precision="fp32"), dict(run_row, precision="bf16", wall_s=6.0),
                   dict(run_row, precision="auto", cudnn_benchmark=False, label="ArtiStyle, cudnn.benchmark off")],
        "compile": [],
        "baseline": {"tutorial": dict(status="ok", size=512, evals=50, wall_s=1.0, s_per_eval=0.02,
                                      fwd_bwd_median_s=0.015, other_s_per_iter=0.005, setup_s=3.0,
                                      max_allocated=3e9, max_reserved=4e9),
                     "tutorial --freeze-weights": {"status": "failed", "error": "RuntimeError: wrong device"}},
        "ladder": [dict(size=1024, tile=None, status="ok", lbfgs_history=20, evals=4, s_per_eval=0.02,
                        first_iter_s=1.0, setup_s=0.5, max_allocated=5e9, max_reserved=6e9, planner_estimate=4e9,
                        with_full_history=6e9),
                   dict(size=2048, tile=None, status="OOM", error="OutOfMemoryError: CUDA out of memory.")],
        "tiled": [], "skipped": [],
    }
    report = bench.format_report(info, bench.parse_args([]), results, bench.Clock(420))
    assert "- Device: cuda (NVIDIA H200, 150.0 GiB); CUDA 12.8, cuDNN 91000" in report
    assert "Target met (wall s <= 5): fp32 1.50 s yes; bf16 6.00 s NO; auto (cudnn.benchmark off) 1.50 s yes" in report
    rows = table(report, "512x512, 300 evaluations")
    assert rows[0][9:13] == ["1200", "2000", "1e+05", "4.00x / n/a"]
    assert rows[-1][0] == "tutorial --freeze-weights" and rows[-1][-1] == "failed: RuntimeError: wrong device"
    assert "Baseline 'tutorial --freeze-weights' did not run on cuda: RuntimeError: wrong device" in report
    rows = table(report, "Largest size, untiled")
    assert rows[0][8:14] == ["5.00", "6.00", "4.00", "6.00", "yes", "ok"]
    assert "Untiled: largest that ran: 1024 px; first failure at 2048 px (OOM)" in report


def test_budget_guard_skips_but_still_prints_the_tables(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = run("--device", "cpu", "--size", "32", "--evals", "2", "--sizes", "32", "--budget-s", "0",
               "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert {r["status"] for r in data["target"] + data["ladder"]} == {"skipped (budget)"}
    assert "## 32x32, 2 evaluations" in proc.stdout and "## Largest size, untiled" in proc.stdout
    assert "Not run (budget or device): target run fp32" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_one_line_error() -> None:
    proc = run(timeout=300)  # --device cuda is the default
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: CUDA is not available"), proc.stderr
