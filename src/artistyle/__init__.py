"""ArtiStyle: neural style transfer after Gatys, Ecker and Bethge (2016).

Quick start::

    from artistyle import NST
    NST(size=256).run_nst("photo.jpg", "painting.jpg").save("out.png")

The names below are imported on first use (PEP 562), so ``import artistyle`` and the
command line start without importing PyTorch: ``artistyle --help`` answers at once,
and Ctrl-C while torch loads is handled by the command line like any other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "StyleConfig": "config",
    **dict.fromkeys(["ArtiStyleError", "FileError", "ImageError", "RunError", "UsageError", "WeightsError"], "errors"),
    **dict.fromkeys(
        ["ContentLoss", "Normalization", "StyleLoss", "TVLoss", "content_loss", "gram_matrix", "style_loss", "tv_loss"],
        "losses",
    ),
    "NST": "nst",
    "Inputs": "engine",
    "StyleObjective": "objective",
    "Painting": "painting",
    "Progress": "transfer",
    "Transfer": "transfer",
    **dict.fromkeys(["LAYER_NAMES", "VGGFeatures", "VGGWeights"], "vgg"),
    "load_weights": "weights",
}

if TYPE_CHECKING:
    from .config import StyleConfig
    from .engine import Inputs
    from .errors import ArtiStyleError, FileError, ImageError, RunError, UsageError, WeightsError
    from .losses import ContentLoss, Normalization, StyleLoss, TVLoss, content_loss, gram_matrix, style_loss, tv_loss
    from .nst import NST
    from .objective import StyleObjective
    from .painting import Painting
    from .transfer import Progress, Transfer
    from .vgg import LAYER_NAMES, VGGFeatures, VGGWeights
    from .weights import load_weights


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'artistyle' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "LAYER_NAMES",
    "NST",
    "ArtiStyleError",
    "ContentLoss",
    "FileError",
    "ImageError",
    "Inputs",
    "Normalization",
    "Painting",
    "Progress",
    "RunError",
    "StyleConfig",
    "StyleLoss",
    "StyleObjective",
    "TVLoss",
    "Transfer",
    "UsageError",
    "VGGFeatures",
    "VGGWeights",
    "WeightsError",
    "__version__",
    "content_loss",
    "gram_matrix",
    "load_weights",
    "style_loss",
    "tv_loss",
]
