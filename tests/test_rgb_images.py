"""RGB, non-square images through fit, scoring, explanations, plots and export."""

import matplotlib
import numpy as np
import pytest
import torch

from skvae import VAEOutlierDetector
from skvae.explain import anomaly_map, gradient_attention_map

SHAPE = (3, 12, 16)  # RGB, height 12, width 16


def assert_exported_scores_agree(exported, expected):
    """Agreement to 1e-3 of the largest score, for this barely trained model.

    An export runs the float32 networks through other kernels and batch
    shapes (onnxruntime's, or torch's standard layers where the detector
    scores through its scoring copies), which move its features by about
    1e-7 (1e-5 in onnxruntime); the sum divides each part by its small
    training spread, which makes that up to about 3e-4 here on some CPUs
    (AVX2). A wrong layout would move every score.
    """
    np.testing.assert_allclose(exported, expected, atol=1e-3 * np.abs(expected).max())


@pytest.fixture(scope="module")
def rgb_images():
    """Smooth colour gradients with noise: normal training and test images."""
    rng = np.random.RandomState(0)
    rows, cols = np.mgrid[0 : SHAPE[1], 0 : SHAPE[2]]
    base = np.stack([rows / SHAPE[1], cols / SHAPE[2], 0.5 + 0 * rows])
    noisy = base[None] + 0.05 * rng.randn(90, *SHAPE)
    return np.round(255 * noisy.clip(0, 1)).astype(np.uint8)


@pytest.fixture(scope="module")
def rgb_detector(rgb_images):
    # float32: its exports (float32 graphs) are compared with it to 1e-5.
    return VAEOutlierDetector(
        hidden_dims=(4, 8),
        latent_dim=2,
        max_epochs=3,
        transformation_precision="float32",
        random_state=0,
    ).fit(rgb_images[:70])


def test_fit_and_score_keep_the_shape(rgb_detector, rgb_images):
    assert rgb_detector.input_shape_ == SHAPE
    scores = rgb_detector.score_samples(rgb_images[70:])
    assert scores.shape == (20,) and np.all(np.isfinite(scores))
    # A patch of pure noise is less normal than the gradients it was fit on.
    noise = np.random.RandomState(1).randint(0, 256, (5, *SHAPE), dtype=np.uint8)
    assert rgb_detector.score_samples(noise).max() < np.median(scores)


@pytest.mark.parametrize("explain", [anomaly_map, gradient_attention_map])
def test_explanations_map_every_pixel(explain, rgb_detector, rgb_images):
    maps = explain(rgb_detector, rgb_images[:4])
    assert maps.shape[0] == 4 and maps.shape[-2:] == SHAPE[1:]
    assert np.all(np.isfinite(maps))


def test_reconstruction_plot_shows_colour_images(rgb_detector, rgb_images):
    matplotlib.use("Agg")
    from skvae.plotting import plot_reconstructions

    fig = plot_reconstructions(rgb_detector, rgb_images[:2])
    shown = fig.axes[0].get_images()[0].get_array()
    assert shown.shape == (*SHAPE[1:], 3)  # height, width, RGB
    assert len(fig.axes) % 2 == 0 and len(fig.axes) >= 6


def test_torchscript_export_scores_like_the_detector(
    rgb_detector, rgb_images, tmp_path
):
    from skvae.export import export_torchscript

    path = export_torchscript(rgb_detector, tmp_path / "rgb.pt")
    scorer = torch.jit.load(str(path))
    images = torch.as_tensor(rgb_images[70:] / np.float32(255))
    assert_exported_scores_agree(
        scorer(images).detach().numpy(), rgb_detector.score_samples(rgb_images[70:])
    )


@pytest.mark.slow
def test_onnx_export_scores_like_the_detector(rgb_detector, rgb_images, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from skvae.export import export_onnx

    path = export_onnx(rgb_detector, tmp_path / "rgb.onnx")
    session = onnxruntime.InferenceSession(str(path))
    images = (rgb_images[70:] / np.float32(255)).astype(np.float32)
    (scores,) = session.run(None, {"x": images})
    assert_exported_scores_agree(scores, rgb_detector.score_samples(rgb_images[70:]))
