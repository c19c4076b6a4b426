"""Video method (Ruder, Dosovitskiy & Brox 2016): warping, consistency weights, optical flow, the flow
prefetcher, the temporal loss and its hook into the objective and the painting."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from artistyle import NST, StyleConfig
from artistyle.errors import UsageError
from artistyle.losses import TemporalLoss, temporal_gradient, temporal_loss
from artistyle.objective import StyleObjective
from artistyle.video.flow import (
    FLOW_THREAD_PREFIX,
    FlowPrefetcher,
    colour_consistency,
    consistency_weights,
    estimate_flow,
    flow_pair,
    flow_step,
    long_term_weights,
)
from artistyle.video.warp import warp
from artistyle.weights import default_weights

from .conftest import make_content, make_style


def constant_flow(height: int, width: int, dx: float, dy: float) -> np.ndarray:
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture in [0, 1], (H, W, 3): something optical flow can lock on to."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.rand(1, 3, height // 4, width // 4, generator=generator)
    image = F.interpolate(noise, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)
    return image[0].permute(1, 2, 0).numpy().copy()


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = image[y + dy, x + dx]`` (wrapping): its backward flow into ``image`` is ``(dx, dy)``."""
    return np.roll(image, shift=(-dy, -dx), axis=(0, 1))


# -- warping ---------------------------------------------------------------------------------------
def test_warp_is_exact_on_integer_shifts() -> None:
    image = torch.rand(1, 3, 20, 24)
    image[..., ::3, ::4] = 0  # zeros next to non-zeros: any leak of a neighbour would show
    warped, inside = warp(image, constant_flow(20, 24, 3, -2))
    expected_inside = torch.zeros(20, 24, dtype=torch.bool)
    expected_inside[2:, : 24 - 3] = True
    assert torch.equal(inside, expected_inside)
    assert torch.equal(warped[..., 2:, :21], image[..., :18, 3:])  # out(y, x) = image(y - 2, x + 3), bit for bit
    # A flow that differs per pixel, still whole numbers: each pixel fetched exactly.
    flow = np.random.default_rng(1).integers(-2, 3, size=(20, 24, 2)).astype(np.float32)
    warped, inside = warp(image, torch.from_numpy(flow))
    ys, xs = np.mgrid[0:20, 0:24]
    sy, sx = ys + flow[..., 1].astype(int), xs + flow[..., 0].astype(int)
    ok = (sx >= 0) & (sx < 24) & (sy >= 0) & (sy < 20)
    assert np.array_equal(inside.numpy(), ok)
    assert torch.equal(warped[0][:, torch.from_numpy(ok)], image[0][:, sy[ok], sx[ok]])


def test_warp_is_bilinear_between_pixels_and_clamps_outside() -> None:
    image = torch.arange(12.0).view(1, 1, 3, 4)
    warped, inside = warp(image, constant_flow(3, 4, 0.5, 0.25))
    expected = image[..., :, :3] * 0.5 + image[..., :, 1:] * 0.5  # along x
    expected = expected[..., :2, :] * 0.75 + expected[..., 1:, :] * 0.25  # then along y
    assert torch.allclose(warped[..., :2, :3], expected)
    assert not inside[:, 3].any() and not inside[2].any() and inside[:2, :3].all()
    assert torch.isfinite(warped).all() and warped.min() >= 0 and warped.max() <= 11
    with pytest.raises(ValueError, match="flow"):
        warp(image, constant_flow(4, 4, 0, 0))


# -- consistency weights ------------------------------------------------------------------------
def test_consistency_marks_a_disocclusion_where_the_flows_disagree() -> None:
    # The backward flow says nothing moved; the forward flow says three patches moved to the right.
    backward = constant_flow(8, 12, 0, 0)
    forward = constant_flow(8, 12, 0, 0)
    forward[1:3, 1:3] = (3, 0)  # |w~ + w^|^2 = 9 > 0.01 * 9 + 0.5: disoccluded
    forward[5:7, 1:3] = (0.75, 0)  # 0.5625 > 0.01 * 0.5625 + 0.5 = 0.505625: disoccluded
    forward[1:3, 7:9] = (0.6, 0)  # 0.36 < 0.5036: within the tolerance, kept
    expected = np.ones((8, 12), np.float32)
    expected[1:3, 1:3] = expected[5:7, 1:3] = 0
    weights = consistency_weights(forward, backward)
    assert weights.dtype == np.float32 and weights.shape == (8, 12)
    assert np.array_equal(weights, expected)


def test_consistency_marks_motion_boundaries_and_sources_outside_the_frame() -> None:
    # Columns 4.. of the current frame come from one pixel to the right; columns 0..3 stayed.
    backward = constant_flow(6, 10, 0, 0)
    backward[:, 4:, 0] = 1
    forward = constant_flow(6, 10, 0, 0)  # consistent: previous columns 5.. moved one to the left
    forward[:, 5:, 0] = -1
    expected = np.ones((6, 10), np.float32)
    # Central differences of u^ are 0.5 at columns 3 and 4: 0.25 > 0.01 |w^|^2 + 0.002.
    expected[:, 3:5] = 0
    expected[:, 9] = 0  # its source, column 10, is outside the frame
    assert np.array_equal(consistency_weights(forward, backward), expected)
    # A smooth zoom is no boundary: |grad u|^2 = 0.0004 < 0.002.
    zoom = constant_flow(6, 10, 0, 0)
    zoom[..., 0] = 0.02 * (np.arange(10) - 5)
    assert consistency_weights(-zoom, zoom)[:, 1:-1].all()


def test_consistency_zeroes_sources_outside_the_frame() -> None:
    backward = constant_flow(7, 9, 2, -1)  # from two to the right and one up
    forward = constant_flow(7, 9, -2, 1)
    expected = np.ones((7, 9), np.float32)
    expected[:, 7:] = 0
    expected[0, :] = 0
    assert np.array_equal(consistency_weights(forward, backward), expected)


def test_long_term_weights_take_the_closest_frame_first() -> None:
    c1 = np.array([[1, 0, 0, 1]], np.float32)
    c2 = np.array([[1, 1, 0, 0]], np.float32)
    c3 = np.array([[1, 1, 1, 0]], np.float32)
    out = long_term_weights([c1, c2, c3])
    assert [o.tolist() for o in out] == [[[1, 0, 0, 1]], [[0, 1, 0, 0]], [[0, 0, 1, 0]]]


def test_colour_check_distrusts_pixels_whose_colour_changes_along_the_flow() -> None:
    previous = texture(12, 16)
    current = shifted(previous, 2, 0)  # current(x) = previous(x + 2): the flow (2, 0) is exact
    current[4:7, 3:6] = np.clip(current[4:7, 3:6] + (0.3, -0.2, 0.05), 0, 1)  # a patch changed colour
    current[9, 9] += 0.08  # a small change, within the tolerance
    kept = colour_consistency(previous, current, constant_flow(12, 16, 2, 0), tolerance=0.1)
    expected = np.ones((12, 16), np.float32)
    expected[4:7, 3:6] = 0
    expected[:, 14:] = 0  # sources outside the frame are clamped copies: their colour differs
    assert kept.dtype == np.float32 and np.array_equal(kept[:, :14], expected[:, :14])
    # 8-bit frames give the same answer (the prefetcher keeps its history as 8-bit copies).
    as8 = (previous * 255 + 0.5).astype(np.uint8)
    assert (colour_consistency(as8, current, constant_flow(12, 16, 2, 0), 0.1)[:, :14] == expected[:, :14]).all()


def test_flow_step_adds_the_colour_check_to_the_papers() -> None:
    """A grey patch turns red at the same brightness: the flow (on grey images) sees nothing, the flows
    agree, and only the colour check distrusts the patch."""
    pytest.importorskip("cv2")
    previous = texture(64, 80)
    previous[20:36, 30:50] = 0.5
    current = previous.copy()
    current[20:36, 30:50] = (0.8, 0.35, 0.5)  # grey 0.299 R + 0.587 G + 0.114 B = 0.501
    _, _, paper = flow_step(previous, current, colour_tolerance=None)
    _, _, checked = flow_step(previous, current)
    assert paper[20:36, 30:50].mean() > 0.9  # the paper's check trusts the patch
    assert checked[20:36, 30:50].max() == 0
    assert checked[:, 60:].mean() > 0.9 and np.array_equal(checked, paper * (checked > 0))


def test_prefetcher_gives_long_term_frames_closest_first() -> None:
    pytest.importorskip("cv2")
    base = texture(40, 48)
    frames = [shifted(base, k, 0) for k in range(7)]
    steps = list(FlowPrefetcher(iter(frames), offsets=(1, 2, 4)))
    assert [tuple(e.offset for e in s.earlier) for s in steps] == [(), (1,), (1, 2), (1, 2), (1, 2, 4), (1, 2, 4),
                                                                     (1, 2, 4)]
    step = steps[5]
    assert step.weights is not None and step.backward is not None
    assert np.array_equal(step.earlier[0].weights, step.weights) and step.earlier[0].backward is step.backward
    assert float(np.median(step.earlier[2].backward[8:-8, 8:-8, 0])) == pytest.approx(4, abs=0.5)
    taken = step.weights > 0
    for earlier in step.earlier[1:]:  # an older frame only where no closer one is trusted
        assert not (earlier.weights > 0)[taken].any()
        taken |= earlier.weights > 0
    # A resumed clip needs flows only from its first unfinished frame on.
    resumed = list(FlowPrefetcher(iter(frames[1:]), offsets=(1, 2, 4), first_needed=4))
    assert [s.backward is not None for s in resumed] == [False] * 4 + [True, True]
    assert np.array_equal(resumed[5].earlier[2].weights, steps[6].earlier[2].weights)
    with pytest.raises(ValueError, match="offsets"):
        FlowPrefetcher(iter(frames), offsets=(2, 4))
    assert not flow_threads()


# -- optical flow ------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_a_known_shift(method: str) -> None:
    pytest.importorskip("cv2")
    previous = texture(96, 112)
    current = shifted(previous, 3, -2)  # current(x, y) = previous(x + 3, y - 2)
    forward, backward = flow_pair(previous, current, method=method)  # type: ignore[arg-type]
    assert backward.shape == (96, 112, 2) and backward.dtype == np.float32
    inner = (slice(12, -12), slice(12, -12))  # away from the wrapped border
    error = np.linalg.norm(backward[inner] - (3, -2), axis=2)
    assert float(np.median(error)) < 0.5
    assert float(np.median(np.linalg.norm(forward[inner] - (-3, 2), axis=2))) < 0.5
    assert np.array_equal(backward, estimate_flow(previous, current, method=method))  # type: ignore[arg-type]
    # The flow warps the previous frame onto the current one, and the check trusts most of it.
    warped, _ = warp(torch.from_numpy(previous).permute(2, 0, 1)[None], backward)
    assert float((warped[0].permute(1, 2, 0).numpy() - current)[inner].__abs__().mean()) < 0.02
    assert consistency_weights(forward, backward)[inner].mean() > 0.9


def test_flow_refuses_bad_input() -> None:
    pytest.importorskip("cv2")
    frame = texture(32, 32)
    with pytest.raises(ValueError, match="different sizes"):
        estimate_flow(frame, texture(32, 48))
    with pytest.raises(ValueError, match="preset"):
        estimate_flow(frame, frame, preset="slow")
    with pytest.raises(ValueError, match="method"):
        estimate_flow(frame, frame, method="deepflow")  # type: ignore[arg-type]


def flow_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(FLOW_THREAD_PREFIX)]


def test_prefetcher_yields_in_order_and_stops_cleanly() -> None:
    pytest.importorskip("cv2")
    base = texture(40, 48)
    read: list[int] = []

    def frames(count: int) -> Iterator[np.ndarray]:
        for k in range(count):
            read.append(k)
            yield shifted(base, k, 0)

    steps = list(FlowPrefetcher(frames(5), ahead=2))
    assert [s.index for s in steps] == [0, 1, 2, 3, 4]
    assert steps[0].forward is None and steps[0].backward is None and steps[0].weights is None
    for step in steps[1:]:
        assert step.backward is not None and step.weights is not None and step.weights.shape == (40, 48)
        assert float(np.median(step.backward[8:-8, 8:-8, 0])) == pytest.approx(1, abs=0.5)
    assert not flow_threads()

    read.clear()
    with FlowPrefetcher(frames(50), ahead=2) as prefetcher:
        for step in prefetcher:
            if step.index == 1:
                break
    assert not flow_threads()
    assert len(read) <= 5  # frames are read lazily, a few ahead
    with pytest.raises(RuntimeError, match="once"):
        list(prefetcher)


# -- the temporal loss -------------------------------------------------------------------------
def test_temporal_loss_formula_and_gradient() -> None:
    image = torch.rand(1, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    weights = (torch.rand(1, 1, 6, 7) > 0.3).double()
    assert torch.autograd.gradcheck(lambda x: temporal_loss(x, target, weights), (image,))
    value = temporal_loss(image, target, weights)
    assert value.item() == pytest.approx(float((weights * (image - target).detach() ** 2).sum() / image.numel()))
    (grad,) = torch.autograd.grad(value, image)
    assert torch.allclose(temporal_gradient(image, target, weights), grad)
    # Normalised by C H W, not by sum(c): all-ones weights give the mean squared error.
    ones = torch.ones(6, 7, dtype=torch.float64)
    assert temporal_loss(image, target, ones).item() == pytest.approx(F.mse_loss(image, target).item())
    module = TemporalLoss(target, ones)
    assert module.weights.shape == (1, 1, 6, 7)
    assert torch.equal(module(image), temporal_loss(image, target, module.weights))
    with pytest.raises(ValueError, match="temporal weights"):
        TemporalLoss(target, torch.ones(5, 7))


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    content = torch.from_numpy(np.asarray(make_content((64, 48)), np.float32) / 255).permute(2, 0, 1)[None]
    style = torch.from_numpy(np.asarray(make_style((48, 48)), np.float32) / 255).permute(2, 0, 1)[None]
    return content, style


def test_objective_adds_the_temporal_term_whole_and_tiled(images: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = images
    image, target = torch.rand_like(content), torch.rand_like(content)
    weights = (torch.rand(48, 64) > 0.5).float()
    far = torch.rand_like(content)
    config = StyleConfig(temporal_weight=123.0, tv_weight=0.5)
    results = []
    for tile in (None, 32):
        objective = StyleObjective(default_weights(), config, tile=tile)
        objective.set_content(content)
        objective.set_style(style)
        plain_terms, plain_loss, plain_grad = objective.evaluate(image)
        assert "temporal" not in plain_terms
        objective.set_temporal([(target, weights), (far, 1 - weights)])
        terms, loss, grad = objective.evaluate(image)
        expected = 123.0 * (temporal_loss(image, target, weights) + temporal_loss(image, far, 1 - weights))
        assert terms["temporal"].item() == pytest.approx(expected.item(), rel=1e-6)
        assert loss.item() == pytest.approx(plain_loss.item() + expected.item(), rel=1e-5)
        extra = 123.0 * (temporal_gradient(image, target, weights) + temporal_gradient(image, far, 1 - weights))
        assert torch.allclose(grad - plain_grad, extra, atol=1e-6 * grad.abs().max().item())
        assert objective.terms(image)["temporal"].item() == pytest.approx(expected.item(), rel=1e-6)
        objective.set_temporal([(target, weights)], weight=0)
        assert "temporal" not in objective.terms(image)
        results.append((terms, grad))
    (whole, whole_grad), (tiled, tiled_grad) = results
    assert set(whole) == set(tiled)
    for key in whole:
        assert tiled[key].item() == pytest.approx(whole[key].item(), rel=1e-4), key
    assert ((whole_grad - tiled_grad).norm() / whole_grad.norm()).item() < 1e-3


@pytest.mark.parametrize("tile", [None, 32])
def test_a_painting_with_a_temporal_target_stays_near_it(
    tile: int | None, images: tuple[torch.Tensor, torch.Tensor]
) -> None:
    content, style = images
    target = torch.rand_like(content) * 0.5 + 0.25  # far from anything the style would paint
    weights = torch.ones(48, 64)
    weights[:, :8] = 0  # an untrusted strip is free to change

    def distance(**temporal: object) -> tuple[float, float]:
        # From a start this far from the style, the first steps' style gradient is ~1e7 per pixel: only a
        # weight this large lets the temporal term (2 g c (x - w) / (C H W)) be seen within 6 steps.
        nst = NST(size=64, device="cpu", seed=3, steps=6, scales=1, tile=tile, temporal_weight=1e13)
        painted = nst.paint(content, style, init=target, **temporal).run()  # type: ignore[arg-type]
        held = (painted - target)[..., :, 8:].abs().mean().item()
        free = (painted - target)[..., :, :8].abs().mean().item()
        return held, free

    free_run, _ = distance()
    held, free = distance(temporal=[(target, weights)])
    assert held < 0.7 * free_run
    assert held < 0.7 * free  # the weights decide where the image is held


def test_painting_resizes_temporal_targets_to_each_scale(images: tuple[torch.Tensor, torch.Tensor]) -> None:
    content, style = images
    nst = NST(size=64, device="cpu", seed=3, steps=2, scales=2, preserve_color="luminance")
    target = torch.rand_like(content)
    painting = nst.paint(content, style, temporal=[(target, np.ones((48, 64), np.float32))])
    small_target, small_weights = painting.temporal_at((24, 32))[0]
    assert small_target.shape == (1, 3, 24, 32) and small_weights.shape == (1, 1, 24, 32)
    assert torch.allclose(small_target[:, 0], small_target[:, 1])  # luminance mode: grey targets
    assert torch.equal(small_weights, torch.ones(1, 1, 24, 32))
    with pytest.raises(ValueError, match="temporal weights 1"):
        nst.paint(content, style, temporal=[(target, np.ones((48, 60)))])
    with pytest.raises(ValueError, match="lie in"):
        nst.paint(content, style, temporal=[(target, np.full((48, 64), 2.0))])


def test_temporal_weight_setting() -> None:
    assert StyleConfig().temporal_weight > 0
    with pytest.raises(UsageError, match="temporal-weight"):
        StyleConfig(temporal_weight=-1).validate()
    assert not next(s for s in StyleConfig.settings() if s.name == "temporal_weight").studio
