"""Colour control: YIQ, luminance matching, chroma recombination and colour histogram matching."""

from __future__ import annotations

import pytest
import torch

from artistyle.color import (
    COLOR_MATCHES,
    as_luminance_image,
    color_transform,
    keep_content_chroma,
    luminance,
    match_color,
    match_color_stats,
    match_luminance,
    mixture_stats,
    rgb_to_yiq,
    yiq_to_rgb,
)


def _image(seed: int, h: int = 24, w: int = 32, tint: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h, w, generator=g) * 0.5 + 0.25
    # Correlated channels, as in real pictures, plus a tint so the means differ.
    mixed = torch.einsum("ij,bjhw->bihw", torch.tensor([[1.0, 0.2, 0.1], [0.3, 0.8, 0.1], [0.1, 0.4, 0.6]]), base)
    return (mixed / mixed.amax() * 0.8 + torch.tensor(tint).view(1, 3, 1, 1)).clamp(0, 1)


def _moments(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = image.double().permute(1, 0, 2, 3).reshape(3, -1)
    mean = x.mean(1)
    c = x - mean[:, None]
    return mean, c @ c.T / x.shape[1]


def test_yiq_round_trip_and_luminance_of_grey() -> None:
    image = _image(0)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-6)
    grey = torch.full((1, 3, 4, 4), 0.3)
    yiq = rgb_to_yiq(grey)
    assert torch.allclose(yiq[:, 0], torch.full((1, 4, 4), 0.3), atol=1e-6)
    assert yiq[:, 1:].abs().max() < 1e-6  # grey has no chroma


def test_as_luminance_image_is_grey_with_the_luminance() -> None:
    image = _image(1)
    grey = as_luminance_image(image)
    assert grey.shape == image.shape
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])
    assert torch.allclose(grey[:, :1], luminance(image), atol=1e-6)


def test_match_luminance_takes_the_contents_mean_and_spread() -> None:
    style, content = _image(2, tint=(0.2, 0.0, 0.0)) * 0.5, _image(3)
    matched = match_luminance(style, content)
    y, yc = luminance(matched), luminance(content)
    assert torch.allclose(y.mean(), yc.mean(), atol=1e-5)
    assert torch.allclose(y.std(unbiased=False), yc.std(unbiased=False), atol=1e-5)
    # Shape kept; the style's pattern kept (a positive affine map of its luminance).
    corr = torch.corrcoef(torch.stack([y.flatten(), luminance(style).flatten()]))[0, 1]
    assert corr > 0.999


def test_keep_content_chroma_keeps_result_luminance_and_content_chroma() -> None:
    result, content = _image(4) * 0.6 + 0.2, _image(5, tint=(0.0, 0.1, -0.1))
    out = keep_content_chroma(result, content)
    out_yiq, content_yiq = rgb_to_yiq(out), rgb_to_yiq(content)
    inside = (out > 0.001).all(1) & (out < 0.999).all(1)  # pixels not clipped
    assert inside.float().mean() > 0.9
    assert torch.allclose(out_yiq[:, 0][inside], luminance(result)[:, 0][inside], atol=1e-5)
    assert torch.allclose(out_yiq[:, 1:].permute(1, 0, 2, 3)[:, inside], content_yiq[:, 1:].permute(1, 0, 2, 3)[:, inside], atol=1e-5)


def test_keep_content_chroma_resizes_the_content() -> None:
    out = keep_content_chroma(_image(6, 24, 32), _image(7, 48, 64))
    assert out.shape == (1, 3, 24, 32)


@pytest.mark.parametrize("mode", COLOR_MATCHES)
def test_match_color_gives_the_contents_mean_and_covariance(mode: str) -> None:
    style, content = _image(8, tint=(0.1, -0.2, 0.15)), _image(9, 30, 20)
    matched = match_color(style, content, mode, clip=False)
    mean, cov = _moments(matched)
    mean_c, cov_c = _moments(content)
    assert torch.allclose(mean, mean_c, atol=1e-6)
    assert torch.allclose(cov, cov_c, atol=1e-4 * float(cov_c.abs().max()) + 1e-8)


def test_match_color_modes_differ_but_all_satisfy_a_sigma_at() -> None:
    style, content = _image(10, tint=(0.1, -0.2, 0.15)), _image(11)
    transforms = {mode: color_transform(style, content, mode)[0] for mode in COLOR_MATCHES}
    assert not torch.allclose(transforms["chol"], transforms["pca"], atol=1e-3)
    assert torch.allclose(transforms["sym"], transforms["sym"].T, atol=1e-8)  # the symmetric choice


def test_match_color_of_the_same_image_is_identity() -> None:
    image = _image(12)
    for mode in COLOR_MATCHES:
        assert torch.allclose(match_color(image, image, mode), image, atol=1e-4)


def test_match_color_survives_a_flat_style_and_rejects_unknown_mode() -> None:
    flat = torch.full((1, 3, 8, 8), 0.4)
    out = match_color(flat, _image(13))
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="unknown colour match"):
        match_color(_image(14), _image(15), "lab")


def test_mixture_stats_pool_the_pixels_at_the_weights() -> None:
    a, b = _image(16, 10, 12, tint=(0.1, 0.0, -0.1)), _image(17, 6, 5)
    # Weights proportional to the pixel counts: the moments of all pixels together.
    mean, cov = mixture_stats([a, b], [120, 30])
    pooled = torch.cat([a.reshape(1, 3, 1, -1), b.reshape(1, 3, 1, -1)], dim=3)
    mean_p, cov_p = _moments(pooled)
    assert torch.allclose(mean.view(3), mean_p, atol=1e-9) and torch.allclose(cov, cov_p, atol=1e-9)
    # One image alone (any weight) is that image's moments; the weights must be usable.
    mean_a, cov_a = mixture_stats([a], [5.0])
    assert torch.allclose(mean_a.view(3), _moments(a)[0]) and torch.allclose(cov_a, _moments(a)[1])
    with pytest.raises(ValueError):
        mixture_stats([a, b], [0.0, 0.0])
    with pytest.raises(ValueError):
        mixture_stats([a, b], [1.0])


def test_match_color_stats_is_match_color_with_given_moments() -> None:
    style, content = _image(18, tint=(0.1, -0.2, 0.15)), _image(19, 30, 20)
    moments = mixture_stats([content], [1.0])
    assert torch.allclose(match_color_stats(style, *moments), match_color(style, content), atol=1e-6)
