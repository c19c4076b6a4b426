"""Regenerate docs/gallery.md: one picture per artistic control, made by the tool from the bundled samples.

Run from the repository root (about 15 minutes on a 2-core CPU)::

    python docs/make_gallery.py

Each entry runs the exact command printed under its picture (``artistyle`` on the
PATH, as installed by the README's first command) and keeps the result as a
small JPEG in docs/images/gallery/.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SAMPLES = "src/artistyle/samples"
OUT = Path("docs/images/gallery")
CAT, STARRY, WAVE = f"{SAMPLES}/chelsea_cat.jpg", f"{SAMPLES}/starry_night.jpg", f"{SAMPLES}/great_wave.jpg"
COMMON = ["--size", "256", "--seed", "1", "-q"]

# (file stem, title, what it shows, arguments after "artistyle")
ENTRIES = [
    ("default", "Default", "The paper's method, nothing else: one style, white-noise start, 300 L-BFGS iterations.",
     [CAT, STARRY]),
    ("blend", "Two styles blended", "`--style-blend 0.5 0.5`: the Gram targets are the mean of both paintings'.",
     [CAT, STARRY, WAVE, "--style-blend", "0.5", "0.5"]),
    ("luminance", "Colour kept: luminance only",
     "`--preserve-color luminance`: only luminance is stylised; the photo's chroma is put back.",
     [CAT, STARRY, "--preserve-color", "luminance"]),
    ("histogram", "Colour kept: histogram matching",
     "`--preserve-color histogram`: the painting is first recoloured to the photo's colour mean and covariance.",
     [CAT, STARRY, "--preserve-color", "histogram"]),
    ("original_colors", "Original colours after the run",
     "`--original-colors`: the default result's luminance with the photo's chroma.",
     [CAT, STARRY, "--original-colors"]),
    ("mask", "Two styles by region",
     "`--mask`: a label image (`mask.png`, 1 = top left, 2 = bottom right) sends each painting to its region.",
     [CAT, STARRY, WAVE, "--mask", str(OUT / "mask.png")]),
    ("fine_style", "Scale control",
     "`--fine-style`: the Great Wave's coarse structure with the Starry Night's fine brush texture.",
     [CAT, WAVE, "--fine-style", STARRY]),
    ("style_scale", "Style at half size",
     "`--style-scale 0.5`: the painting is matched at half the output's size, so its motifs come out smaller "
     "and more of them fit in the picture.",
     [CAT, STARRY, "--style-scale", "0.5"]),
    ("adam", "Adam with iterate averaging", "`--optimizer adam`: the average of Adam's iterates instead of L-BFGS.",
     [CAT, STARRY, "--optimizer", "adam"]),
    ("padding", "Zero padding", "`--padding zeros`: VGG as it was trained, and the default up to 0.5; it leaves a "
     "frame along the borders, which the default, reflect padding, does not.",
     [CAT, STARRY, "--padding", "zeros"]),
]


FAST_SECTION = "".join((REPO / "docs" / "gallery.md").read_text().partition("## Fast start, side by side")[1:])


def make_mask(path: Path) -> None:
    """A diagonal label image the size of the content photo: 1 above the diagonal, 2 below."""
    width, height = Image.open(CAT).size
    yy, xx = np.mgrid[0:height, 0:width]
    labels = np.where(xx / width + yy / height < 1.0, 1, 2).astype(np.uint8)
    Image.fromarray(labels, "L").save(path)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    make_mask(OUT / "mask.png")
    lines = [
        "# Gallery",
        "",
        "One picture per control, each made by ArtiStyle from the bundled samples (*Chelsea the cat*, CC0;",
        "Van Gogh's *The Starry Night* and Hokusai's *The Great Wave*, public domain) with the exact command",
        "under it, run from the repository root. `python docs/make_gallery.py` makes them all again.",
        "",
    ]
    for stem, title, note, args in ENTRIES:
        output = OUT / f"{stem}.jpg"
        command = ["artistyle", *args, "-o", str(output), *COMMON]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO)
        seconds = time.perf_counter() - started
        print(f"{stem}: {seconds:.0f} s, {(REPO / output).stat().st_size // 1024} KB", flush=True)
        lines += [f"## {title}", "", note, "", f"![{title}](images/gallery/{stem}.jpg)", "", "```",
                  shlex.join(command), "```", ""]
    lines += FAST_SECTION.splitlines()  # its picture comes from the fast-start benchmark (docs/make_fast_gallery.py)
    (REPO / "docs" / "gallery.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
