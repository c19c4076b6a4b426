"""The offline quality panel (artistyle.quality, `artistyle score`): each formula against plain float maths or a
closed form, the panel's sanity (equal images score 0 / SSIM 1, a larger perturbation scores worse), its
determinism, the command line, and the panel without the fast extra."""

from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from artistyle import fast
from artistyle.errors import ImageError, UsageError
from artistyle.quality import METRICS, Panel, score_files, score_images
from artistyle.quality import measures as m

from .conftest import make_content, make_style, run

# --------------------------------------------------------------------------- formulas


@pytest.mark.parametrize(("rgb", "lab"), [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.2408, 80.0925, 67.2032)),  # Lindbloom's calculator, sRGB D65
    ((0.0, 1.0, 0.0), (87.7347, -86.1827, 83.1793)),
    ((0.0, 0.0, 1.0), (32.2970, 79.1875, -107.8602)),
    ((0.5, 0.5, 0.5), (53.3890, 0.0, 0.0)),
])
def test_lab_of_known_colours(rgb: tuple[float, float, float], lab: tuple[float, float, float]) -> None:
    got = m.srgb_to_lab(torch.tensor([[rgb]]))[0, 0]
    np.testing.assert_allclose(got.numpy(), lab, atol=0.01)


def exact_w2_squared(a: list[float], b: list[float]) -> float:
    """Plain maths: integrate (F_a^-1 - F_b^-1)^2 over (0, 1] with exact breakpoints (Fractions)."""
    a, b = sorted(a), sorted(b)
    breaks = sorted({Fraction(i, len(a)) for i in range(1, len(a) + 1)} | {Fraction(j, len(b)) for j in range(1, len(b) + 1)})
    total, previous = 0.0, Fraction(0)
    for end in breaks:
        middle = (previous + end) / 2
        total += float(end - previous) * (a[math.floor(middle * len(a))] - b[math.floor(middle * len(b))]) ** 2
        previous = end
    return total


@pytest.mark.parametrize(("n", "k"), [(7, 7), (7, 3), (5, 12), (1, 4)])
def test_wasserstein_1d_is_exact_for_any_sizes(n: int, k: int) -> None:
    rng = np.random.default_rng(n * 100 + k)
    a, b = rng.normal(size=n), rng.normal(1.0, 2.0, size=k)
    got = float(m.wasserstein_1d(torch.from_numpy(a), torch.from_numpy(b)))
    assert got == pytest.approx(exact_w2_squared(list(a), list(b)), rel=1e-12)
    # A sample repeated is the same distribution.
    assert float(m.wasserstein_1d(torch.from_numpy(a), torch.from_numpy(np.tile(b, 3)))) == pytest.approx(got, rel=1e-12)


def test_sliced_wasserstein_of_one_dimensional_samples_is_the_exact_w2() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 1)), rng.exponential(size=(25, 1))
    directions = m.fixed_directions(1, 6, seed=11)  # +1 or -1: W2 does not see the sign
    got = m.sliced_wasserstein(torch.from_numpy(a), torch.from_numpy(b), directions)
    assert got == pytest.approx(exact_w2_squared(list(a[:, 0]), list(b[:, 0])), rel=1e-12)
    assert m.sliced_wasserstein(torch.from_numpy(a), torch.from_numpy(a), m.fixed_directions(1, 3, seed=1)) == 0.0


def test_frechet_distance_matches_the_closed_forms() -> None:
    # Diagonal covariances: |dm|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
    mean_a, mean_b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    var_a, var_b = torch.tensor([4.0, 1.0, 0.25]), torch.tensor([1.0, 9.0, 0.0])
    expected = 1 + 9 + 0 + (2 - 1) ** 2 + (1 - 3) ** 2 + (0.5 - 0) ** 2
    got = m.frechet_distance(m.gaussian_of(mean_a, torch.diag(var_a)), m.gaussian_of(mean_b, torch.diag(var_b)))
    assert got == pytest.approx(expected, rel=1e-12)
    # 2 x 2 covariances that do not commute: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for a PSD 2 x 2 M, with
    # tr M = tr(S_a S_b) and det M = det S_a det S_b.
    cov_a = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=torch.float64)
    cov_b = torch.tensor([[0.5, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    a, b = cov_a.numpy(), cov_b.numpy()
    cross = math.sqrt(np.trace(a @ b) + 2 * math.sqrt(np.linalg.det(a) * np.linalg.det(b)))
    expected = 0.5**2 + 1.5**2 + np.trace(a) + np.trace(b) - 2 * cross
    got = m.frechet_distance(m.gaussian_of(torch.tensor([0.5, 0.0]), cov_a), m.gaussian_of(torch.tensor([0.0, 1.5]), cov_b))
    assert got == pytest.approx(expected, rel=1e-10)
    same = m.gaussian_of(mean_a, 2 * torch.eye(3))
    assert m.frechet_distance(same, same) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_of_features_takes_the_same_value_by_every_factor() -> None:
    # Fewer positions than channels (the centred positions as the factor), more (Cholesky), and a flat
    # picture's singular covariance (the symmetric square root): all against the eigendecomposition route.
    g = torch.Generator().manual_seed(6)
    few, many = torch.randn(1, 16, 3, 2, generator=g), torch.randn(1, 16, 9, 9, generator=g) * 2 + 1
    flat = torch.ones(1, 16, 5, 5)

    def by_eigen(a: torch.Tensor, b: torch.Tensor) -> float:
        (mean_a, cov_a), (mean_b, cov_b) = m.moments(a), m.moments(b)
        root = m.psd_sqrt(cov_a)
        cross = torch.linalg.eigvalsh(root @ cov_b @ root).clamp(min=0).sqrt().sum()
        return float(((mean_a - mean_b) ** 2).sum() + cov_a.trace() + cov_b.trace() - 2 * cross)

    # rel 1e-6: the eigen route takes square roots of round-off eigenvalues of a singular product (1e-16 -> 1e-8
    # each), which the singular values of R_a R_b^T never do.
    for a, b in [(few, many), (many, few), (many, flat), (flat, few)]:
        assert m.frechet_distance(m.gaussian(a), m.gaussian(b)) == pytest.approx(by_eigen(a, b), rel=1e-6)


def test_moments_and_gram_are_plain_statistics_of_the_positions() -> None:
    features = torch.randn(1, 5, 6, 7, generator=torch.Generator().manual_seed(2))
    rows = features[0].reshape(5, -1).t().double().numpy()
    mean, cov = m.moments(features)
    np.testing.assert_allclose(mean.numpy(), rows.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(rows.T, bias=True), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.gram(features).numpy(), rows.T @ rows / rows.shape[0], rtol=1e-12)
    np.testing.assert_allclose(m.gram_from_moments(mean, cov).numpy(), m.gram(features).numpy(), rtol=1e-10, atol=1e-12)
    assert m.gram_distance(features, features) == 0.0
    assert m.gram_distance(features, features * 1.1) > 0


def test_ssim_on_equal_planes_constants_and_noise() -> None:
    plane = torch.rand(40, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert m.ssim(plane, plane) == pytest.approx(1.0, abs=1e-12)
    # Constant planes: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    c1 = 0.01**2
    got = m.ssim(torch.full((20, 20), 0.3), torch.full((20, 20), 0.6))
    assert got == pytest.approx((2 * 0.3 * 0.6 + c1) / (0.3**2 + 0.6**2 + c1), rel=1e-9)
    noise = torch.randn(40, 50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    scores = [m.ssim(plane, plane + amount * noise) for amount in (0.01, 0.05, 0.2)]
    assert 1 > scores[0] > scores[1] > scores[2]
    assert m.ssim(torch.rand(6, 9), torch.rand(6, 9)) < 1  # a plane smaller than the window still scores


def test_self_similarity_is_zero_for_equal_features_and_grows_with_noise() -> None:
    g = torch.Generator().manual_seed(4)
    layers = [torch.rand(1, 8, 16, 16, generator=g), torch.rand(1, 16, 8, 8, generator=g)]
    assert m.self_similarity_distance(layers, layers, grid=8) == 0.0
    noise = [torch.rand(f.shape, generator=g) for f in layers]
    small, large = ([f + amount * n for f, n in zip(layers, noise)] for amount in (0.1, 1.0))
    assert 0 < m.self_similarity_distance(layers, small, 8) < m.self_similarity_distance(layers, large, 8)


def test_the_panels_directions_ignore_the_global_seed() -> None:
    torch.manual_seed(1)
    first = m.fixed_directions(64, 8, seed=5)
    state = torch.get_rng_state()
    torch.manual_seed(2)
    assert torch.equal(first, m.fixed_directions(64, 8, seed=5))
    torch.set_rng_state(state)
    m.fixed_directions(64, 8, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # nor do they draw from it
    np.testing.assert_allclose(first.norm(dim=0).numpy(), 1.0, rtol=1e-12)


# --------------------------------------------------------------------------- the panel


@pytest.fixture(scope="module")
def pictures() -> dict[str, np.ndarray]:
    content = np.asarray(make_content((56, 48)), dtype=np.float32) / 255
    noise = np.random.default_rng(0).normal(size=content.shape).astype(np.float32)
    return {"content": content, "style": np.asarray(make_style((64, 64)), dtype=np.float32) / 255,
            **{f"noisy{a}": np.clip(content + a * noise, 0, 1) for a in (0.05, 0.2)}}


def worse(panel: Panel, name: str) -> float:
    """The metric as a badness: its value, or 1 - SSIM."""
    metric = panel[name]
    return metric.value if metric.better == "lower" else 1 - metric.value


def test_equal_images_score_perfectly(pictures: dict[str, np.ndarray]) -> None:
    same = pictures["content"]
    panel = score_images(same, same, same, device="cpu")
    expected = set(METRICS) - (set() if not fast.missing_dependencies() else {"style.magenta"})
    expected -= {"edges.alpha_white", "edges.alpha_black"}  # opaque pictures: no semi-transparent band
    assert {metric.name for metric in panel} == expected
    for metric in panel:
        # Zero up to rounding: the Fréchet distance's matrix square root left 6e-9 on one thread (0 on two).
        assert worse(panel, metric.name) == pytest.approx(0.0, abs=1e-6), metric.name
    assert panel.size == (56, 48) and not panel.notes


@pytest.fixture(scope="module")
def perturbed(pictures: dict[str, np.ndarray]) -> tuple[Panel, Panel]:
    """The noisy pictures scored against the clean one as both content and style, with the global seed at 1."""
    content = pictures["content"]
    torch.manual_seed(1)
    mild, strong = (score_images(pictures[f"noisy{a}"], content, content, device="cpu") for a in (0.05, 0.2))
    return mild, strong


def test_a_larger_perturbation_scores_worse_everywhere(perturbed: tuple[Panel, Panel]) -> None:
    mild, strong = perturbed
    for metric in mild:
        if metric.group == "edges":  # a frame, not noise: test_edges.py and the alpha test below
            continue
        assert 0 < worse(mild, metric.name) < worse(strong, metric.name), metric.name


def test_the_panel_is_deterministic_and_leaves_the_global_seed_alone(
    pictures: dict[str, np.ndarray], perturbed: tuple[Panel, Panel]
) -> None:
    torch.manual_seed(2)
    state = torch.get_rng_state()
    again = score_images(pictures["noisy0.05"], pictures["content"], pictures["content"], device="cpu")
    assert again.values() == perturbed[0].values()
    assert torch.equal(torch.get_rng_state(), state)


def test_each_metric_says_what_optimises_it() -> None:
    assert METRICS["content.conv4_2"].optimised_by == ("gram", "meanstd", "w2", "sw")
    assert METRICS["style.gram"].optimised_by == ("gram", "meanstd")
    assert METRICS["style.frechet"].optimised_by == ("w2", "meanstd")
    assert METRICS["style.sliced_wasserstein"].optimised_by == ("sw",)
    for name in ("content.self_similarity", "content.ssim", "style.magenta", "style.colour"):
        assert METRICS[name].optimised_by == (), name
    assert "fast start" in METRICS["style.magenta"].optimised_note


def test_scoring_size_and_a_content_of_another_aspect(pictures: dict[str, np.ndarray]) -> None:
    output = np.asarray(make_content((120, 90)), dtype=np.float32) / 255
    panel = score_images(output, pictures["style"], pictures["style"], device="cpu", size=64)
    assert panel.size == (64, 48)
    assert len(panel.notes) == 1 and "stretched" in panel.notes[0]


def test_without_the_fast_extra_the_magenta_measure_is_skipped_with_a_note(
    pictures: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    panel = score_images(pictures["content"], pictures["content"], pictures["style"], device="cpu")
    assert "style.magenta" not in panel.values() and len(panel.values()) == len(METRICS) - 3  # and no alpha band
    assert len(panel.skipped) == 1
    assert 'pip install "artistyle[fast]"' in panel.skipped[0] and "onnxruntime" in panel.skipped[0]


@pytest.mark.skipif(bool(fast.missing_dependencies()), reason="needs the fast extra")
def test_the_magenta_distance_is_that_of_the_fast_starts_vectors(
    pictures: dict[str, np.ndarray], perturbed: tuple[Panel, Panel]
) -> None:
    styler = fast.fast_style("cpu")
    gap = styler.style_vector(pictures["noisy0.2"]).astype(np.float64) - styler.style_vector(pictures["content"])
    assert perturbed[1]["style.magenta"].value == pytest.approx(float(np.linalg.norm(gap)), rel=1e-6)


def test_bad_files_are_one_image_error(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    with pytest.raises(ImageError, match=r"output image '.*missing\.png'"):
        score_files(tmp_path / "missing.png", not_image, not_image, device="cpu")
    with pytest.raises(ImageError, match="output image"):
        score_files(not_image, not_image, not_image, device="cpu")


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def files(tmp_path: Path, pictures: dict[str, np.ndarray]) -> list[str]:
    paths = []
    for name in ("noisy0.05", "content", "style"):
        path = tmp_path / f"{name}.png"
        Image.fromarray((pictures[name] * 255 + 0.5).astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def test_cli_json(capsys: pytest.CaptureFixture[str], files: list[str]) -> None:
    code, out, err = run(capsys, "score", *files, "--json", "--device", "cpu")
    assert code == 0, err
    data = json.loads(out)
    assert data["size"] == [56, 48] and data["device"] == "cpu"
    names = [metric["name"] for metric in data["metrics"]]
    assert names[:6] == list(METRICS)[:6] and "style.colour" in names
    for metric in data["metrics"]:
        assert set(metric) >= {"value", "better", "about", "optimised_by", "optimised_note"}
        assert metric["optimised_by"] == list(METRICS[metric["name"]].optimised_by)


def test_cli_table_without_the_fast_extra(capsys: pytest.CaptureFixture[str], files: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, out, _ = run(capsys, "score", *files, "--device", "cpu")
    assert code == 0
    assert "optimised by" in out and "every arm" in out
    for name in ("content.conv4_2", "style.frechet", "style.colour"):
        assert METRICS[name].label in out
    assert METRICS["style.magenta"].label not in out
    assert [line for line in out.splitlines() if line.startswith("skipped: Magenta")]


def test_cli_bad_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str], files: list[str],
                                                tmp_path: Path) -> None:
    code, out, err = run(capsys, "score", str(tmp_path / "missing.png"), files[1], files[2], "--json")
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "does not exist" in err
    text = tmp_path / "text.png"
    text.write_text("hello")
    code, out, err = run(capsys, "score", files[0], str(text), files[2])
    assert code == 2 and not out and len(err.strip().splitlines()) == 1 and "content image" in err
    code, _, err = run(capsys, "score", files[0], files[1])
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "score", *files, "--size", "16")
    assert code == 2 and "at least 32 px" in err and len(err.strip().splitlines()) == 1


def test_an_image_too_elongated_for_conv5_1_is_refused(pictures: dict[str, np.ndarray]) -> None:
    strip = np.zeros((32, 600, 3), np.float32)
    with pytest.raises(UsageError, match=r"output image \(600 x 32\) is too elongated"):
        score_images(strip, strip, pictures["style"], device="cpu", size=256)
    with pytest.raises(UsageError, match="style image"):
        score_images(pictures["content"], pictures["content"], strip, device="cpu")


def test_a_semi_transparent_photo_adds_the_alpha_band_measures(pictures: dict[str, np.ndarray]) -> None:
    rgb = pictures["content"]
    alpha = np.linspace(1, 0, rgb.shape[1])[None, :].repeat(rgb.shape[0], 0)

    def rgba(colours: np.ndarray) -> Image.Image:
        planes = np.concatenate([colours, alpha[..., None]], axis=2)
        return Image.fromarray(np.round(planes * 255).astype(np.uint8), "RGBA")

    panel = score_images(rgba(rgb), rgba(rgb), rgb, device="cpu")
    names = {metric.name for metric in panel}
    assert {"edges.alpha_white", "edges.alpha_black", "edges.border"} <= names
    assert panel["edges.alpha_white"].value == pytest.approx(0.0, abs=1e-6)
    dark = score_images(rgba(rgb / 8), rgba(rgb), rgb, device="cpu")  # a dark ring where it fades
    assert dark["edges.alpha_black"].value > 0.5
