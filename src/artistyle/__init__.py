"""ArtiStyle: neural style transfer after Gatys, Ecker and Bethge (2016).

Quick start::

    from artistyle import NST
    NST(size=256).run_nst("photo.jpg", "painting.jpg").save("out.png")
"""

from __future__ import annotations

from .config import StyleConfig
from .errors import ArtiStyleError, FileError, ImageError, RunError, UsageError, WeightsError
from .losses import ContentLoss, Normalization, StyleLoss, TVLoss, content_loss, gram_matrix, style_loss, tv_loss
from .nst import NST, Inputs
from .objective import StyleObjective
from .painting import Painting
from .transfer import Progress, Transfer
from .vgg import LAYER_NAMES, VGGFeatures, VGGWeights
from .weights import load_weights

__version__ = "0.5.0"

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
