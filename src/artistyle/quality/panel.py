"""The offline quality panel: :func:`score_images` (output, content, style) -> :class:`Panel`.

Every measure runs from what ships: the packaged VGG-19 (:func:`artistyle.weights.load_weights`), the
Magenta style-prediction network of the ``fast`` extra (skipped, with a note, without it) and the pixels.
Each :class:`Metric` says which ``--style-loss`` arms optimise it, so that a number a run was trained
to lower is never read as independent evidence (the content distance at conv4_2 is every arm's content
loss; the self-similarity, SSIM, Magenta and colour numbers are no loss's).

Scoring size: the output's own size, shrunk so that its long edge is at most :data:`MAX_SCORE_SIZE`
(512 px) or ``size``. The whole panel took 8.4 s of one CPU core at 512 px and 2.8 s at 256 px
(the three VGG-19 passes are most of it; issue 25's 2-core machine, one torch thread). The content is resized to exactly
the output's scoring shape (a content of another aspect is stretched, with a note), so that positions
correspond; the style is resized so that its long edge is the output's (aspect kept), the engine's own
default style size (``--style-size`` / ``--style-scale`` of the run are not known to the panel). Shrinking
is Lanczos, enlarging bicubic, as the engine loads images. The statistics are float64 on the CPU (the
network runs on ``device``; only the self-similarity's cosines are float32 products, see
:mod:`.measures`), so the numbers do not depend on the device's float64 support.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..devices import resolve_device
from ..errors import ArtiStyleError, UsageError
from ..images.alpha import straight_colors
from ..images.decode import MIN_SIDE, LoadedImage
from ..images.sources import ImageSource, as_loaded
from ..vgg import VGGFeatures, VGGWeights, layer_index, layer_stride
from ..weights import load_weights
from . import measures
from .edges import alpha_fidelity, border_steps

__all__ = [
    "ARMS", "COLOUR_DIRECTIONS", "CONTENT_LAYER", "MAX_SCORE_SIZE", "METRICS", "PANEL_SEED", "SELF_SIMILARITY_LAYERS",
    "SLICED_DIRECTIONS", "SMALLEST_SIDE", "STYLE_LAYERS", "Description", "Metric", "Panel", "ScoringImages",
    "border_and_alpha_measures", "score_files", "score_images", "scoring_images",
]

#: The style losses a run can optimise (``--style-loss``); every one of them adds the conv4_2 content loss.
ARMS = ("gram", "meanstd", "w2", "sw")
MAX_SCORE_SIZE = 512
CONTENT_LAYER = "conv4_2"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
#: The shortest side a scored image may have: conv5_1's stride, so that conv5_1 has at least one position.
SMALLEST_SIDE = layer_stride(STYLE_LAYERS[-1])
#: STROTSS compares hypercolumns from the whole depth of the network; post-ReLU, as its VGG features are.
SELF_SIMILARITY_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SELF_SIMILARITY_GRID = 32  # 1024 positions: a 1024 x 1024 matrix per image
#: The panel's own seed for its projection directions (never a run's: a run's sw loss draws its own).
PANEL_SEED = 25_2019
SLICED_DIRECTIONS = 64  # per VGG layer
SLICED_POSITIONS = 8_192  # at most, per layer and image (a fixed lattice): the sorts are the panel's main cost
COLOUR_DIRECTIONS = 64
COLOUR_POSITIONS = 65_536

Better = Literal["lower", "higher"]


@dataclass(frozen=True)
class Metric:
    """One number of the panel.

    ``name``: a stable key (``style.frechet``); ``label``: what a table shows; ``better``: which way is
    better; ``about``: what was measured, in a line; ``optimised_by``: the ``--style-loss`` arms whose loss
    lowers this very quantity (empty: none), ``optimised_note`` the same in words.
    """

    name: str
    group: Literal["content", "style", "edges"]
    label: str
    value: float
    better: Better
    about: str
    optimised_by: tuple[str, ...]
    optimised_note: str


@dataclass(frozen=True)
class Panel:
    """The panel's numbers (``metrics``), the measures it could not take (``skipped``, one line each) and other
    remarks (``notes``); ``size`` is the (width, height) scored, ``device`` where the network ran."""

    metrics: tuple[Metric, ...]
    size: tuple[int, int]
    device: str
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> Metric:
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.metrics)

    def values(self) -> dict[str, float]:
        """``{name: value}``."""
        return {m.name: m.value for m in self.metrics}

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: size, device, metrics (every field), skipped, notes."""
        return {"size": list(self.size), "device": self.device,
                "metrics": [{**asdict(m), "optimised_by": list(m.optimised_by)} for m in self.metrics],
                "skipped": list(self.skipped), "notes": list(self.notes)}


@dataclass(frozen=True)
class ScoringImages:
    """The three images at the scoring size, ``(1, 3, H, W)`` float32 in [0, 1] on the CPU, the alphas
    ``H x W`` (None: opaque), and the full-size pixels as loaded (for the Magenta network, which sizes them
    itself)."""

    output: Tensor
    content: Tensor
    style: Tensor
    output_alpha: Tensor | None
    content_alpha: Tensor | None
    loaded: tuple[LoadedImage, LoadedImage, LoadedImage]
    notes: tuple[str, ...]


def _resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An ``H x W [x C]`` float array at ``shape`` = (height, width): Lanczos to shrink, bicubic to enlarge,
    one float plane at a time, clipped to [0, 1]."""
    if array.shape[:2] == shape:
        return np.asarray(array, dtype=np.float32)
    shrink = shape[0] * shape[1] < array.shape[0] * array.shape[1]
    resample = Image.Resampling.LANCZOS if shrink else Image.Resampling.BICUBIC
    planes = array[..., None] if array.ndim == 2 else array
    out = np.empty((*shape, planes.shape[2]), dtype=np.float32)
    for c in range(planes.shape[2]):
        plane = Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32))  # mode 'F'
        out[..., c] = np.asarray(plane.resize((shape[1], shape[0]), resample), dtype=np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out[..., 0] if array.ndim == 2 else out


def _long_edge_shape(height: int, width: int, long_edge: int) -> tuple[int, int]:
    scale = long_edge / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)[None].contiguous()


def scoring_images(output: ImageSource, content: ImageSource, style: ImageSource, size: int | None = None
                   ) -> ScoringImages:
    """Load the three images (any form the library takes: path, PIL image, array, tensor) and bring them to
    the scoring size (the module's docstring); bad input is one :class:`~artistyle.errors.ImageError`."""
    loaded = (as_loaded(output, "output image"), as_loaded(content, "content image"), as_loaded(style, "style image"))
    out, con, sty = loaded
    cap = MAX_SCORE_SIZE if size is None else int(size)
    if cap < MIN_SIDE:
        raise UsageError(f"the scoring size must be at least {MIN_SIDE} px, not {cap}")
    h, w = out.rgb.shape[:2]
    shape = (h, w) if max(h, w) <= cap else _long_edge_shape(h, w, cap)
    notes = []
    ch, cw = con.rgb.shape[:2]
    if abs(np.log((cw / ch) / (w / h))) > 0.02:
        notes.append(f"the content ({cw} x {ch}) has another aspect than the output ({w} x {h}): it was stretched "
                     "to the output's shape")
    style_shape = _long_edge_shape(sty.rgb.shape[0], sty.rgb.shape[1], max(shape))
    for role, image, scored in (("output", out, shape), ("style", sty, style_shape)):
        if min(scored) < SMALLEST_SIDE:
            raise UsageError(f"the {role} image ({image.size[0]} x {image.size[1]}) is too elongated to score at "
                             f"{max(shape)} px: its short side would be {min(scored)} px, under the {SMALLEST_SIDE} "
                             "px conv5_1 needs; score at a larger size")

    def alpha(image: LoadedImage) -> Tensor | None:
        return None if image.alpha is None else torch.from_numpy(_resize(image.alpha, shape))

    return ScoringImages(_tensor(_resize(out.rgb, shape)), _tensor(_resize(con.rgb, shape)),
                         _tensor(_resize(sty.rgb, style_shape)), alpha(out), alpha(con), loaded, tuple(notes))


def border_and_alpha_measures(images: ScoringImages) -> list[Metric]:
    """The frame and transparency checks of :mod:`.edges` on ``images`` at the scoring size: the border
    step's excess over the photo's own, and, where the photo is semi-transparent somewhere, how far the
    painting's brightness there departs from the photo's, composited over white and over black."""
    metrics = [_metric("edges.border", border_steps(images.output, images.content)["excess"])]
    if images.content_alpha is not None and images.output_alpha is not None:
        def straight(composite: Tensor, alpha: Tensor) -> np.ndarray:  # loaded images are shown on white
            a = alpha.double().numpy()
            colours = straight_colors(composite[0].permute(1, 2, 0).double().numpy(), a)
            return np.concatenate([colours, a[..., None]], axis=2)

        fidelity = alpha_fidelity(straight(images.output, images.output_alpha),
                                  straight(images.content, images.content_alpha))
        if fidelity["pixels"] > 0:
            metrics += [_metric(f"edges.alpha_{bg}", abs(1 - fidelity[bg])) for bg in ("white", "black")]
    return metrics


def _features(net: VGGFeatures, image: Tensor, device: torch.device) -> dict[str, Tensor]:
    """The layers of ``image`` on ``device``, brought back to the CPU (the statistics run there in float64)."""
    with torch.no_grad():
        return {name: f.float().cpu() for name, f in net(image.to(device)).items()}


@dataclass(frozen=True)
class Description:
    """What a metric is, apart from its value: :class:`Metric`'s fields but ``name`` and ``value``."""

    group: Literal["content", "style", "edges"]
    label: str
    better: Better
    about: str
    optimised_by: tuple[str, ...]
    optimised_note: str


_LAYERS = "conv1_1..conv5_1"
#: Every metric of the panel, in the order a table shows them.
METRICS: dict[str, Description] = {
    "content.conv4_2": Description(
        "content", "conv4_2 distance", "lower",
        "mean squared difference of VGG-19 conv4_2 features, output vs content (the content loss's formula)",
        ARMS, f"every arm ({', '.join(ARMS)}): it is the content loss"),
    "content.self_similarity": Description(
        "content", "self-similarity (STROTSS)", "lower",
        "mean |difference| of the column-normalised cosine self-similarity matrices of VGG-19 relu1_1..relu5_1 "
        f"features on a {SELF_SIMILARITY_GRID} x {SELF_SIMILARITY_GRID} grid, output vs content (Kolkin et al. "
        "2019)", (), "none"),
    "content.ssim": Description(
        "content", "SSIM of luma", "higher",
        "structural similarity (11-tap Gaussian window, sigma 1.5) of the Rec. 601 luma, output vs content; 1 = "
        "the same", (), "none"),
    "style.gram": Description(
        "style", "Gram distance", "lower",
        f"mean squared difference of the Gram matrices F F^T / N, averaged over {_LAYERS}, output vs style",
        ("gram", "meanstd"), "gram, meanstd (the Gram loss)"),
    "style.frechet": Description(
        "style", "Frechet (Gaussian W2)", "lower",
        "squared 2-Wasserstein distance between Gaussians with the features' mean and covariance, averaged over "
        f"{_LAYERS}, output vs style", ("w2", "meanstd"),
        "w2; meanstd partly (its means and variances, not the covariances)"),
    "style.sliced_wasserstein": Description(
        "style", "sliced Wasserstein (VGG)", "lower",
        f"squared sliced 2-Wasserstein distance over {SLICED_DIRECTIONS} fixed directions per layer (the panel's "
        f"own), averaged over {_LAYERS}, output vs style", ("sw",),
        "sw (with its own random directions, never the panel's)"),
    "style.magenta": Description(
        "style", "Magenta style vector", "lower",
        "Euclidean distance between the 100-number style vectors of Ghiasi et al.'s style-prediction network "
        "(each image's centre square at 256 px), output vs style", (),
        "none (the fast start's network is conditioned on this vector: --init fast paints from it)"),
    "style.colour": Description(
        "style", "colour (Lab sliced W)", "lower",
        f"sliced 2-Wasserstein distance of the pixels in CIE Lab over {COLOUR_DIRECTIONS} fixed directions, in "
        "Lab units (about 2.3 is a just-noticeable difference), output vs style", (), "none"),
    "edges.border": Description(
        "edges", "border step excess", "lower",
        "largest step in grey levels between a border row or column's mean and the next one's, minus the photo's "
        "own (a frame from the convolutions' padding)", (), "none"),
    **{f"edges.alpha_{bg}": Description(
        "edges", f"alpha band over {bg}", "lower",
        f"|1 - Y(painting) / Y(photo)| where the photo is semi-transparent (alpha 1..127), composited over {bg}: "
        "a dark ring is near 1", (), "none") for bg in ("white", "black")},
}


def _metric(name: str, value: float) -> Metric:
    d = METRICS[name]
    return Metric(name, d.group, d.label, float(value), d.better, d.about, d.optimised_by, d.optimised_note)


def _magenta(images: ScoringImages, device: torch.device) -> tuple[list[Metric], list[str]]:
    """The Magenta style-vector distance, or a one-line note why it was skipped."""
    from .. import fast  # imports no onnxruntime until a session is made

    what = "Magenta style-vector distance skipped"
    missing = fast.missing_dependencies()
    if missing:
        return [], [f"{what}: it needs the fast extra: pip install \"artistyle[fast]\" (missing: {', '.join(missing)})"]
    try:
        styler = fast.fast_style(device)
    except ArtiStyleError as exc:  # a damaged or altered model file: the rest of the panel still stands
        return [], [f"{what}: {str(exc).removesuffix('; ' + fast.PAPER_START)}"]
    output, _, style = images.loaded
    gap = styler.style_vector(output.rgb).astype(np.float64) - styler.style_vector(style.rgb).astype(np.float64)
    return [_metric("style.magenta", float(np.linalg.norm(gap)))], []


def _content_metrics(out: dict[str, Tensor], con: dict[str, Tensor], images: ScoringImages) -> list[Metric]:
    content = float(((out[CONTENT_LAYER].double() - con[CONTENT_LAYER].double()) ** 2).mean())
    similarity = measures.self_similarity_distance(
        [out[n] for n in SELF_SIMILARITY_LAYERS], [con[n] for n in SELF_SIMILARITY_LAYERS], SELF_SIMILARITY_GRID)
    structure = measures.ssim(measures.luma(images.output), measures.luma(images.content))
    return [_metric("content.conv4_2", content), _metric("content.self_similarity", similarity),
            _metric("content.ssim", structure)]


def _vgg_style_metrics(out: dict[str, Tensor], sty: dict[str, Tensor]) -> list[Metric]:
    grams, frechets, sliced = [], [], []
    for name in STYLE_LAYERS:
        # One float64 pass per layer and image gives the mean and covariance; the Gram matrix follows from them.
        out_gaussian, sty_gaussian = measures.gaussian(out[name]), measures.gaussian(sty[name])
        grams.append(measures.gram_distance(measures.gram_from_moments(out_gaussian.mean, out_gaussian.covariance),
                                            measures.gram_from_moments(sty_gaussian.mean, sty_gaussian.covariance)))
        frechets.append(measures.frechet_distance(out_gaussian, sty_gaussian))
        directions = measures.fixed_directions(out[name].shape[1], SLICED_DIRECTIONS, PANEL_SEED + layer_index(name))
        sliced.append(measures.sliced_wasserstein(measures.positions(out[name], SLICED_POSITIONS),
                                                  measures.positions(sty[name], SLICED_POSITIONS), directions))
    return [_metric("style.gram", float(np.mean(grams))), _metric("style.frechet", float(np.mean(frechets))),
            _metric("style.sliced_wasserstein", float(np.mean(sliced)))]


def _colour_metric(images: ScoringImages) -> Metric:
    lab_out, lab_sty = (measures.srgb_to_lab(image[0].permute(1, 2, 0)).reshape(-1, 3)
                        for image in (images.output, images.style))
    squared = measures.sliced_wasserstein(
        measures.evenly_spaced(lab_out, COLOUR_POSITIONS), measures.evenly_spaced(lab_sty, COLOUR_POSITIONS),
        measures.fixed_directions(3, COLOUR_DIRECTIONS, PANEL_SEED))
    return _metric("style.colour", squared**0.5)


def score_images(
    output: ImageSource, content: ImageSource, style: ImageSource, *, device: str | torch.device | None = None,
    size: int | None = None, weights: VGGWeights | None = None,
) -> Panel:
    """Score ``output`` against its ``content`` and ``style``: content by conv4_2 distance, self-similarity and
    SSIM of luma; style by Gram, Fréchet and sliced Wasserstein distances over VGG-19 features, the Magenta
    style-vector distance and a colour distance (sliced Wasserstein on Lab pixels): :data:`METRICS`.

    ``device``: where VGG-19 (and the Magenta network) run (default: auto); ``size``: the scoring size's
    cap on the long edge (default :data:`MAX_SCORE_SIZE`); ``weights``: the VGG-19 (default: the packaged
    one, never downloaded). Deterministic: the panel's directions come from its own seed.
    """
    target = resolve_device("auto" if device is None else device)
    images = scoring_images(output, content, style, size)
    vgg = weights if weights is not None else load_weights()
    net = VGGFeatures(vgg, (CONTENT_LAYER, *STYLE_LAYERS, *SELF_SIMILARITY_LAYERS)).to(target)
    out, con, sty = (_features(net, image, target) for image in (images.output, images.content, images.style))
    metrics = _content_metrics(out, con, images) + _vgg_style_metrics(out, sty)
    vector, skipped = _magenta(images, target)
    metrics += [*vector, _colour_metric(images)]
    metrics += border_and_alpha_measures(images)
    h, w = images.output.shape[-2:]
    return Panel(tuple(metrics), (int(w), int(h)), str(target), tuple(skipped), images.notes)


def score_files(
    output: str | os.PathLike[str], content: str | os.PathLike[str], style: str | os.PathLike[str], *,
    device: str | torch.device | None = None, size: int | None = None,
) -> Panel:
    """:func:`score_images` on three image files (one-line :class:`~artistyle.errors.ImageError` for a missing
    file or one that is not an image)."""
    return score_images(os.fspath(output), os.fspath(content), os.fspath(style), device=device, size=size)
