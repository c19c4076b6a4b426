"""Each loss term against its hand-written formula, and each module against its function."""

from __future__ import annotations

import pytest
import torch

from artistyle.losses import (
    ANCHOR_LAYERS,
    AnchorLoss,
    ContentLoss,
    GuidedStyleLoss,
    Normalization,
    StyleLoss,
    TVLoss,
    content_loss,
    content_squared_error,
    content_term,
    gram_matrix,
    gram_sum,
    guided_gram_matrices,
    style_loss,
    style_surrogate,
    style_term_from_gram_sums,
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


# -- the terms from sums over parts of the image (the tiled evaluation) -------------------------------
def _split(f: torch.Tensor, at: int) -> list[torch.Tensor]:
    """Two disjoint parts of a feature map, as two tiles would own them."""
    return [f[..., :at], f[..., at:]]


def test_gram_sum_adds_up_to_the_gram_matrices() -> None:
    f = torch.randn(1, 4, 5, 7, dtype=torch.float64)
    masks = torch.rand(3, 1, 5, 7, dtype=torch.float64)
    sums, counts = map(sum, zip(*(gram_sum(part) for part in _split(f, 3))))
    assert torch.allclose(sums / counts.view(-1, 1, 1), gram_matrix(f)) and counts.tolist() == [35.0]
    sums, counts = map(sum, zip(*(gram_sum(p, m) for p, m in zip(_split(f, 3), _split(masks, 3)))))
    assert torch.allclose(sums / counts.view(-1, 1, 1), guided_gram_matrices(f, masks))


def test_style_term_and_kernel_match_autograd() -> None:
    f = torch.randn(1, 4, 5, 7, dtype=torch.float64, requires_grad=True)
    a = torch.randn(4, 4, dtype=torch.float64)
    a, scale = a @ a.T / 4, 3.5
    sums, counts = gram_sum(f.detach())
    value, kernel = style_term_from_gram_sums(sums, counts, a, scale)
    reference = scale * style_loss(f, a)
    (expected,) = torch.autograd.grad(reference, f)
    assert value.item() == pytest.approx(reference.item(), rel=1e-12)
    # K = 4 b (G - A) / (C^2 M): the gradient is K F ...
    direct = torch.einsum("ij,bjhw->bihw", kernel[0], f.detach())
    assert torch.allclose(direct, expected, rtol=1e-10, atol=1e-12)
    # ... and, part by part, the gradient of the surrogate 1/2 tr(F^T K F) with K held fixed.
    grads = [torch.autograd.grad(style_surrogate(part, kernel), part)[0] for part in _split(f, 3)]
    assert torch.allclose(torch.cat(grads, dim=-1), expected, rtol=1e-10, atol=1e-12)


def test_guided_style_term_and_kernel_match_autograd() -> None:
    f = torch.randn(1, 4, 6, 5, dtype=torch.float64, requires_grad=True)
    masks = torch.rand(2, 1, 6, 5, dtype=torch.float64)
    targets = torch.randn(2, 4, 4, dtype=torch.float64)
    share, scale = torch.tensor([0.3, 0.7], dtype=torch.float64), 2.0
    sums, counts = gram_sum(f.detach(), masks)
    value, kernel = style_term_from_gram_sums(sums, counts, targets, scale, share)
    # G_r = sum_p m_r(p)^2 f_p f_p^T / sum_p m_r(p)^2 and sum_r s_r mean((G_r - A_r)^2), all in float64
    # (guided_gram_matrices and GuidedStyleLoss keep the mask mass and the shares in float32).
    weighted = (f * masks).flatten(2)
    grams = weighted @ weighted.transpose(1, 2) / masks.pow(2).flatten(1).sum(1).view(-1, 1, 1)
    reference = scale * (share * (grams - targets).pow(2).mean(dim=(1, 2))).sum()
    (expected,) = torch.autograd.grad(reference, f)
    assert value.item() == pytest.approx(reference.item(), rel=1e-12)
    assert value.item() == pytest.approx(scale * GuidedStyleLoss(targets, masks, share)(f).item(), rel=1e-6)
    parts = zip(_split(f, 2), _split(masks, 2))
    grads = [torch.autograd.grad(style_surrogate(part, kernel, m), part)[0] for part, m in parts]
    assert torch.allclose(torch.cat(grads, dim=-1), expected, rtol=1e-10, atol=1e-12)


def test_content_term_matches_autograd_part_by_part() -> None:
    f = torch.randn(1, 3, 4, 6, dtype=torch.float64, requires_grad=True)
    p, scale = torch.randn(1, 3, 4, 6, dtype=torch.float64), 0.25
    reference = scale * content_loss(f, p)
    (expected,) = torch.autograd.grad(reference, f)
    parts = _split(f, 4)
    terms = [content_term(content_squared_error(a, b), p.numel(), scale) for a, b in zip(parts, _split(p, 4))]
    assert sum(terms).item() == pytest.approx(reference.item(), rel=1e-12)
    grads = [torch.autograd.grad(t, part)[0] for t, part in zip(terms, parts)]
    assert torch.allclose(torch.cat(grads, dim=-1), expected, rtol=1e-12, atol=0)


def test_anchor_loss_is_the_content_loss_of_the_shrunk_image() -> None:
    targets = {"conv4_1": torch.randn(1, 3, 4, 5), "conv5_1": torch.randn(1, 3, 2, 2)}
    features = {name: torch.randn_like(t) for name, t in targets.items()}
    anchor = AnchorLoss(targets, (40, 50), weight=3.0)
    terms = anchor(features)
    assert list(terms) == ["anchor:conv4_1", "anchor:conv5_1"] and anchor.shape == (40, 50)
    expected = 3.0 * sum(content_loss(features[n], targets[n]) for n in targets) / 2
    assert sum(terms.values()).item() == pytest.approx(expected.item(), rel=1e-6)
    assert anchor.shrink(torch.rand(1, 3, 80, 100)).shape == (1, 3, 40, 50)
    assert ANCHOR_LAYERS == ("conv4_1", "conv5_1")
