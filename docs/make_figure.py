"""Make docs/images/example.jpg: content | style | result, side by side, for the README.

Usage (after ``artistyle ... -o out.png`` on the bundled samples)::

    python docs/make_figure.py CONTENT STYLE RESULT [docs/images/example.jpg]
"""

from __future__ import annotations

import sys

from PIL import Image, ImageOps

HEIGHT = 256
GAP = 8


def main(content: str, style: str, result: str, out: str = "docs/images/example.jpg") -> None:
    panels = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in (content, style, result)]
    panels = [p.resize((round(p.width * HEIGHT / p.height), HEIGHT), Image.LANCZOS) for p in panels]
    canvas = Image.new("RGB", (sum(p.width for p in panels) + GAP * (len(panels) - 1), HEIGHT), "white")
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.width + GAP
    canvas.save(out, quality=88)


if __name__ == "__main__":
    main(*sys.argv[1:])
