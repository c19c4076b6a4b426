"""Each loss term against its hand-written formula, and each module against its function."""

from __future__ import annotations

import pytest
import torch

from artistyle.losses import (
    ContentLoss,
    Normalization,
    StyleLoss,
    TVLoss,
    content_loss,
    gram_matrix,
    style_loss,
    tv_loss,
)


def test_gram_matrix_is_normalised_by_positions() -> None:
    f = torch.arange(12, dtype=torch.float64).reshape(1, 2, 2, 3)
    flat = f.reshape(2, 6)
    expected = torch.zeros(2, 2, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            expected[i, j] = sum(flat[i, k] * flat[j, k] for k in range(6)) / 6
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_gram_matrix_does_not_grow_with_image_size() -> None:
    # A texture tiled 2x2 has the same per-position statistics, so the same Gram.
    f = torch.randn(1, 4, 5, 7, dtype=torch.float64)
    tiled = f.repeat(1, 1, 2, 2)
    assert torch.allclose(gram_matrix(f), gram_matrix(tiled))


def test_gram_matrix_channels_last_equals_contiguous() -> None:
    f = torch.randn(2, 8, 6, 5)
    assert torch.allclose(gram_matrix(f), gram_matrix(f.to(memory_format=torch.channels_last)), atol=1e-6)


def test_content_loss_formula() -> None:
    f, p = torch.randn(1, 3, 4, 5, dtype=torch.float64), torch.randn(1, 3, 4, 5, dtype=torch.float64)
    assert content_loss(f, p).item() == pytest.approx(((f - p) ** 2).sum().item() / 60)


def test_style_loss_formula_and_paper_relation() -> None:
    f = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    a = torch.randn(3, 3, dtype=torch.float64)
    g = f.reshape(3, 20) @ f.reshape(3, 20).T / 20
    expected = ((g - a) ** 2).sum() / 9
    assert style_loss(f, a).item() == pytest.approx(expected.item())
    # Paper: E_l = sum((G_raw - A_raw)^2) / (4 N^2 M^2) with unnormalised Grams; ours is 4 E_l.
    n, m = 3, 20
    e_paper = ((g * m - a * m) ** 2).sum() / (4 * n**2 * m**2)
    assert style_loss(f, a).item() == pytest.approx(4 * e_paper.item())


def test_style_loss_gradient_matches_autograd() -> None:
    f = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    a = torch.randn(4, 4, dtype=torch.float64)
    a = a @ a.T
    assert torch.autograd.gradcheck(lambda x: style_loss(x, a), (f,))
    (ours,) = torch.autograd.grad(style_loss(f, a), f)
    reference = ((gram_matrix(f) - a) ** 2).mean()
    (theirs,) = torch.autograd.grad(reference, f)
    assert torch.allclose(ours, theirs)


def test_style_loss_gradient_channels_last() -> None:
    f = torch.randn(1, 6, 5, 4).to(memory_format=torch.channels_last).requires_grad_(True)
    a = torch.eye(6)
    (grad,) = torch.autograd.grad(style_loss(f, a), f)
    (expected,) = torch.autograd.grad(((gram_matrix(f) - a) ** 2).mean(), f)
    assert torch.allclose(grad, expected, atol=1e-6)


def test_tv_loss_formula() -> None:
    x = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]], dtype=torch.float64)
    dx = [1.0, 2.0, 0.0, 0.0]  # squared: 1, 4, 0, 0 -> mean 1.25
    dy = [2.0, 1.0, -1.0]  # squared: 4, 1, 1 -> mean 2
    assert tv_loss(x).item() == pytest.approx(sum(d * d for d in dx) / 4 + sum(d * d for d in dy) / 3)


def test_modules_forward_to_functions() -> None:
    f, p = torch.randn(1, 3, 6, 6), torch.randn(1, 3, 6, 6)
    assert ContentLoss(p)(f) == content_loss(f, p)
    assert torch.allclose(StyleLoss.from_features(p)(f), style_loss(f, gram_matrix(p)[0]))
    assert TVLoss()(f) == tv_loss(f)
    assert not StyleLoss.from_features(p).target.requires_grad


def test_style_loss_is_zero_at_its_target() -> None:
    f = torch.randn(1, 5, 7, 7)
    assert StyleLoss.from_features(f)(f).item() == pytest.approx(0.0, abs=1e-10)


def test_caffe_normalization() -> None:
    rgb = torch.tensor([0.1, 0.5, 0.9]).view(1, 3, 1, 1)
    out = Normalization.caffe()(rgb).flatten()
    expected = torch.tensor([0.9 * 255 - 103.939, 0.5 * 255 - 116.779, 0.1 * 255 - 123.68])
    assert torch.allclose(out, expected, atol=1e-3)


def test_imagenet_normalization() -> None:
    rgb = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    assert torch.allclose(Normalization.imagenet()(rgb), torch.zeros(1, 3, 1, 1), atol=1e-6)
