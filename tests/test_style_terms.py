"""The style-term protocol and the losses beyond Gram: values against plain float64 maths, exact tiling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from artistyle import NST, StyleConfig
from artistyle.errors import UsageError
from artistyle.losses import StyleLoss, gram_matrix
from artistyle.metadata import read_image_metadata
from artistyle.objective import StyleObjective
from artistyle.painting import Painting
from artistyle.sqrtm import psd_sqrt, trace_sqrt
from artistyle.style_terms import (
    GramTerm,
    MeanStdTerm,
    SlicedTerm,
    StyleStatistics,
    W2Term,
    make_style_term,
    position_sums,
    sliced_directions,
    style_statistics,
)
from artistyle.weights import default_weights

from .conftest import FAST, make_content, make_style, run, submit_job, upload_pair, wait_for_job


def _features(seed: int, channels: int = 6, shape: tuple[int, int] = (9, 7), shift: float = 0.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(1, channels, *shape, generator=generator, dtype=torch.float64) + shift).relu()


def _moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = features.flatten(2)[0]
    return flat.mean(1), flat @ flat.T / flat.shape[1]


def _w2_reference(features: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """The Gaussian 2-Wasserstein distance in plain float64 maths, with scipy-free eigen square roots."""
    (mu, s), (mu_s, s_s) = _moments(features), _moments(style)
    cov, cov_s = s - torch.outer(mu, mu), s_s - torch.outer(mu_s, mu_s)

    def sqrt(m: torch.Tensor) -> torch.Tensor:
        values, vectors = torch.linalg.eigh((m + m.T) / 2)
        return vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T

    root = sqrt(cov_s)
    distance = (mu - mu_s).pow(2).sum() + torch.trace(cov + cov_s - 2 * sqrt(root @ cov @ root))
    return 4 * s_s.pow(2).mean() / torch.trace(s_s) * distance


def _term(kind: str, style: torch.Tensor) -> torch.nn.Module:
    return make_style_term(kind, "conv1_1", [style_statistics(kind, style, "conv1_1")], [1.0])  # type: ignore[arg-type]


def test_gram_term_is_the_gram_loss_bit_for_bit() -> None:
    f, p = _features(1).float(), _features(2).float()
    term = _term("gram", p)
    assert isinstance(term, GramTerm) and isinstance(term, StyleLoss)
    assert torch.equal(term(f), StyleLoss(gram_matrix(p)[0])(f))


def test_w2_term_equals_the_closed_form_and_its_gradient_autograd() -> None:
    f, p = _features(1, channels=64), _features(2, channels=64, shape=(11, 5))
    term = _term("w2", p)
    assert isinstance(term, W2Term)
    x = f.clone().requires_grad_(True)
    value = term(x)
    assert value.item() == pytest.approx(_w2_reference(f, p).item(), rel=1e-6)
    # The gradient where the covariances are well conditioned (more positions than channels; with fewer,
    # as above, the backward floors the square root's derivative on purpose):
    f, p = _features(1, channels=16, shape=(11, 9)), _features(2, channels=16, shape=(13, 8))
    term = _term("w2", p)
    x = f.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(term(x), x)
    # A central difference along a random direction (float64 throughout).
    d = 1e-6 * torch.randn(f.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    numeric = (_w2_reference(f + d, p) - _w2_reference(f - d, p)) / 2
    assert (grad * d).sum().item() == pytest.approx(numeric.item(), rel=1e-4)


def test_w2_is_zero_on_the_style_and_a_shift_costs_its_square() -> None:
    p = _features(2, channels=8)
    term = _term("w2", p)
    assert abs(term(p).item()) < 1e-9
    _, second = _moments(p)
    shift = 0.1 * torch.ones(1, 8, 1, 1, dtype=torch.float64)  # the covariance stays: W^2 = |shift|^2
    expected = 4 * second.pow(2).mean() / torch.trace(second) * 8 * 0.01
    assert term(p + shift).item() == pytest.approx(expected.item(), rel=1e-6)


def test_meanstd_is_gram_plus_relative_mean_and_deviation_errors() -> None:
    f, p = _features(1), _features(2)
    term = _term("meanstd", p)
    assert isinstance(term, MeanStdTerm)
    (mu, s), (mu_s, a) = _moments(f), _moments(p)
    sd, sd_s = (s.diagonal() - mu**2 + 1e-5).sqrt(), (a.diagonal() - mu_s**2 + 1e-5).sqrt()
    expected = (s - a).pow(2).mean() + a.pow(2).mean() * (
        (mu - mu_s).pow(2).mean() / mu_s.pow(2).mean() + (sd - sd_s).pow(2).mean() / sd_s.pow(2).mean()
    )
    assert term(f).item() == pytest.approx(expected.item(), rel=1e-6)


def test_the_square_root_backward_is_finite_on_a_singular_matrix_and_newton_schulz_agrees() -> None:
    v = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    singular = (v @ v.T).unsqueeze(0).requires_grad_(True)  # rank 2 of 6
    (grad,) = torch.autograd.grad(trace_sqrt(singular), singular)
    assert bool(torch.isfinite(grad).all())
    well = singular.detach() + torch.eye(6, dtype=torch.float64)
    assert trace_sqrt(well, "newton_schulz", steps=30).item() == pytest.approx(trace_sqrt(well).item(), rel=1e-6)
    root = psd_sqrt(well[0])
    assert torch.allclose(root @ root, well[0], atol=1e-9)


def test_sliced_term_is_zero_on_the_style_fixed_and_matches_sizes_by_quantiles() -> None:
    p = _features(2, channels=8).float()
    term = _term("sw", p)
    assert isinstance(term, SlicedTerm)
    assert term(p).item() == pytest.approx(0.0, abs=1e-9)
    assert torch.equal(sliced_directions("conv1_1", 8, torch.device("cpu")),
                       sliced_directions("conv1_1", 8, torch.device("cpu")))
    # The style seen at twice the positions (each repeated): the same distribution, so (nearly) 0.
    doubled = p.repeat_interleave(2, dim=3)
    assert term(doubled).item() < 0.05 * term(_features(5, channels=8).float()).item()


def test_blends_are_mixtures() -> None:
    p, q = _features(2, channels=8), _features(4, channels=8, shift=1.5)
    stats = [style_statistics("w2", x, "conv1_1") for x in (p, q)]
    blended = make_style_term("w2", "conv1_1", stats, [0.25, 0.75])
    assert isinstance(blended, W2Term)
    mixture = torch.cat([p, q, q, q], dim=3)  # equal sizes: the mixture 1:3 is the concatenation
    mu, second = _moments(mixture)
    assert torch.allclose(blended.target_mean[0].double(), mu, rtol=1e-6)
    assert torch.allclose(blended.target_second[0].double(), second, rtol=1e-6)
    sliced = make_style_term("sw", "conv1_1", [style_statistics("sw", x.float(), "conv1_1") for x in (p, q)],
                             [0.25, 0.75])
    whole = _term("sw", mixture.float())
    assert sliced(mixture.float()).item() < 0.05 * whole(p.float()).item()


def test_one_all_covering_mask_is_the_plain_term() -> None:
    f, p = _features(1), _features(2)
    stats = [style_statistics("w2", p, "conv1_1")]
    masked = make_style_term("w2", "conv1_1", stats, [1.0], masks=torch.ones(1, 1, 9, 7, dtype=torch.float64))
    assert masked(f).item() == pytest.approx(_term("w2", p)(f).item(), rel=1e-9)
    sums = position_sums(f, torch.ones(1, 1, 9, 7, dtype=torch.float64), first=True)
    assert sums.first is not None and torch.allclose(sums.first[0], f.flatten(2)[0].sum(1))


@pytest.mark.parametrize("kind", ["meanstd", "w2"])
def test_tiled_moment_terms_equal_untiled(kind: str) -> None:
    config = StyleConfig(style_loss=kind)  # type: ignore[arg-type]
    content, style, image = torch.rand(1, 3, 131, 150), torch.rand(1, 3, 150, 170), torch.rand(1, 3, 131, 150)
    whole = StyleObjective(default_weights(), config)
    tiled = StyleObjective(default_weights(), config, tile=48)
    for objective in (whole, tiled):
        objective.set_content(content)
        objective.set_style(style)
    terms, loss, grad = whole.evaluate(image)
    tiled_terms, _, tiled_grad = tiled.evaluate(image)
    for key in terms:
        # Relative to the term, or to the whole loss for a term of nearly equal distributions (noise against
        # noise at conv1_1: W^2 = tr + tr - 2 tr cancels numbers 1000 times larger, summed in float32).
        assert abs(terms[key] - tiled_terms[key]).item() <= 1e-4 * abs(terms[key]).item() + 1e-9 * loss.item(), key
    assert ((grad - tiled_grad).norm() / grad.norm()).item() < 1e-4


def test_sw_is_refused_with_tiles_or_masks_before_any_work() -> None:
    with pytest.raises(UsageError, match="sw cannot be used with --tile"):
        StyleConfig(style_loss="sw", tile=64).validate()
    with pytest.raises(UsageError, match="sw cannot be used with --mask"):
        StyleConfig(style_loss="sw", masks=("m.png",)).validate()
    objective = StyleObjective(default_weights(), StyleConfig(style_loss="sw"), tile=64)
    with pytest.raises(UsageError, match="cannot be tiled"):
        objective.set_style(torch.rand(1, 3, 64, 64))


def test_statistics_of_one_image_are_its_moments() -> None:
    f = _features(3, channels=4).float()
    stats = style_statistics("sw", f, "conv2_1")
    assert isinstance(stats, StyleStatistics) and stats.projections is not None
    mu, second = _moments(f.double())
    assert torch.allclose(stats.mean.double(), mu, rtol=1e-5) and torch.allclose(stats.second.double(), second)
    assert bool((stats.projections[:, 1:] >= stats.projections[:, :-1]).all())


@pytest.mark.parametrize("kind", ["meanstd", "w2", "sw"])
def test_each_style_loss_paints_from_the_cli_and_records_it(
    kind: str, capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.png"
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out), *FAST, "--style-loss", kind)
    assert code == 0, err
    code, stdout, _ = run(capsys, "--info", str(out), "--json")
    assert code == 0 and json.loads(stdout)["settings"]["style_loss"] == kind


@pytest.mark.parametrize("kind", ["meanstd", "w2", "sw"])
def test_resume_is_exact_for_every_style_loss(kind: str) -> None:
    settings = dict(size=64, device="cpu", seed=5, scales=2, scale_steps=(4, 3), style_loss=kind)

    def painting() -> Painting:
        return NST(**settings).paint(make_content((64, 48)), make_style())

    whole = painting().run()
    stopped = painting()
    for event in stopped:
        if event.iteration == 5:  # inside the second scale
            stopped.stop()
    again = painting()
    again.load_state_dict(stopped.state_dict())
    list(again)
    assert torch.equal(again.image, whole)


def test_a_jobs_file_and_the_studio_paint_with_each_style_loss(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path, client: Any
) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("content,style,output,style_loss\n" + "".join(
        f"{content_path},{style_path},{kind},{kind}\n" for kind in ("meanstd", "w2", "sw")))
    code, _, err = run(capsys, "batch", "--jobs", str(jobs), "-o", str(tmp_path / "out"), *FAST)
    assert code == 0, err
    for kind in ("meanstd", "w2", "sw"):
        code, stdout, _ = run(capsys, "--info", str(tmp_path / "out" / f"{kind}.png"), "--json")
        assert code == 0 and json.loads(stdout)["settings"]["style_loss"] == kind
    content, style = upload_pair(client)
    job = submit_job(client, content, [style], size=48, steps=2, style_loss="w2")
    state = wait_for_job(client, job["id"], ("done", "failed"))
    assert state["status"] == "done", state
    result = client.get(f"/api/jobs/{job['id']}/result.png")
    assert result.status_code == 200
    (tmp_path / "studio.png").write_bytes(result.content)
    record = read_image_metadata(tmp_path / "studio.png")
    assert record is not None and record["settings"]["style_loss"] == "w2"


def test_sw_that_needs_tiles_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], content_path: Path, style_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "o.png"
    code, _, err = run(capsys, str(content_path), str(style_path), "-o", str(out), "--device", "cpu", "--size", "2000",
                       "--style-loss", "sw", "--max-memory", "2G", "--quiet")
    assert code == 2 and "sw cannot be tiled" in err and "use --style-loss w2 or meanstd" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()

