"""Quality measures that no loss optimises.

:func:`score_images` (and :func:`score_files`) give the offline panel of ``artistyle score``: a
:class:`Panel` of :class:`Metric` values, each with the ``--style-loss`` arms that optimise it, so a
comparison between arms can lean on the numbers no arm was trained on. Everything runs from what ships:
the packaged VGG-19, the Magenta style-prediction network of the ``fast`` extra (skipped with a note
without it) and the pixels; nothing is downloaded. The formulas are in :mod:`.measures`.
"""

from __future__ import annotations

from .panel import (
    ARMS,
    MAX_SCORE_SIZE,
    METRICS,
    Description,
    Metric,
    Panel,
    ScoringImages,
    border_and_alpha_measures,
    score_files,
    score_images,
    scoring_images,
)

__all__ = [
    "ARMS", "MAX_SCORE_SIZE", "METRICS", "Description", "Metric", "Panel", "ScoringImages",
    "border_and_alpha_measures", "score_files", "score_images", "scoring_images",
]
