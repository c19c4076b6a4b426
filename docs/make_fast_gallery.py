"""Compose docs/images/gallery/fast_start.jpg: per pair, the default run, the fast start and the feed-forward
picture it started from, side by side, from the pictures ``benchmarks/bench_fast.py --keep DIR`` kept.

Run from the repository root after the benchmark (it takes about 20 minutes on a 2-core CPU)::

    PYTHONPATH=src python benchmarks/bench_fast.py --keep /tmp/fast6
    python docs/make_fast_gallery.py /tmp/fast6
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path("docs/images/gallery/fast_start.jpg")
COLUMNS = (("default", "default (525 it, 3 scales)"), ("fast_default", "--init fast (40 + 32 it, 2 scales)"),
           ("feedforward", "its start: feed-forward, colours matched"))
HEIGHT = 170  # px per row in the composite
LABEL = 18


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python docs/make_fast_gallery.py BENCH_FAST_KEEP_DIR", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    stems = sorted({p.name.rsplit("_feedforward", 1)[0] for p in folder.glob("*_feedforward.png")})
    rows = []
    for stem in stems:
        tiles = []
        for suffix, _ in COLUMNS:
            with Image.open(folder / f"{stem}_{suffix}.png") as image:
                image = image.convert("RGB")
                tiles.append(image.resize((round(image.width * HEIGHT / image.height), HEIGHT),
                                          Image.Resampling.LANCZOS))
        rows.append(tiles)
    widths = [max(row[k].width for row in rows) for k in range(len(COLUMNS))]
    sheet = Image.new("RGB", (sum(widths) + 4 * (len(widths) - 1), LABEL + len(rows) * (HEIGHT + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for (_, title), width in zip(COLUMNS, widths):
        draw.text((x + 4, 3), title, fill="black")
        x += width + 4
    for r, row in enumerate(rows):
        x = 0
        for tile, width in zip(row, widths):
            sheet.paste(tile, (x, LABEL + r * (HEIGHT + 4)))
            x += width + 4
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(OUT, quality=80, optimize=True)
    print(f"{OUT}: {len(rows)} pairs ({', '.join(stems)}), {OUT.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
