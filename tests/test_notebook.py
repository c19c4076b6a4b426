"""examples/demo.ipynb runs top to bottom (at a tiny size) and writes the images it promises."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from artistyle.images import resized_shape

from .conftest import REPO, SAMPLES

pytestmark = pytest.mark.notebook

NOTEBOOK = REPO / "examples" / "demo.ipynb"
SIZE, STEPS = 48, 5
SAVED = ("cat_starry", "cat_luminance", "cat_histogram", "cat_original_colors", "cat_wave", "cat_blend")
KERNEL = "artistyle-test-python"


def test_notebook_is_committed_clean() -> None:
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    assert NOTEBOOK.stat().st_size < 50_000


def test_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    # A kernel spec of our own, first on JUPYTER_PATH, so the kernel is this interpreter
    # (this venv, this artistyle) whatever other "python3" kernels the machine has.
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "artistyle test", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("ARTISTYLE_DEMO_SIZE", str(SIZE))
    monkeypatch.setenv("ARTISTYLE_DEMO_STEPS", str(STEPS))
    # One thread: at 48 px threads gain nothing, and on a busy CI machine they wait on each other.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    work = tmp_path / "work"
    work.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=120, resources={"metadata": {"path": str(work)}}
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    with Image.open(SAMPLES / "chelsea_cat.jpg") as cat:
        expected = resized_shape(cat.width, cat.height, SIZE)
    for name in SAVED:
        path = work / "artistyle_demo" / f"{name}.png"
        assert path.is_file(), path
        with Image.open(path) as image:
            assert image.size == expected, (name, image.size)
            assert image.mode == "RGB"
    # The progress readout and the previews reached the notebook.
    text = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert f"iteration    {STEPS}/{STEPS}" in text
    images = [
        out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
        if "image/png" in out.get("data", {})
    ]
    assert len(images) >= 4
