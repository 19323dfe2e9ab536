import numpy as np
import pytest
import torch
from torch.nn import functional as F

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae.explain import (
    _encoder_tail,
    anomaly_map,
    grad2vae_map,
    gradient_attention_map,
    reconstruct,
)
from skvae.scoring import reconstruction_scores

from .conftest import TINY_MLP

GRADIENT_MAPS = [gradient_attention_map, grad2vae_map]
QUICK = {"hidden_dims": (4, 8), "latent_dim": 2, "max_epochs": 2, "random_state": 0}


@pytest.fixture(scope="module")
def test_images(digits_one_class):
    """Ten held-out zeros and six other digits."""
    _, X_test, _ = digits_one_class
    return np.concatenate([X_test[:10], X_test[-6:]])


@pytest.fixture(scope="module")
def fitted_mlp_detector(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    return VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 5}, random_state=0).fit(
        X_train
    )


def test_anomaly_map_sums_to_minus_reconstruction_score(
    fitted_conv_detector, test_images
):
    """The map's sum over pixels is -log p(x|z=mu), the "reconstruction" score."""
    maps = anomaly_map(fitted_conv_detector, test_images)
    assert maps.shape == (len(test_images), 1, 8, 8)
    assert np.isfinite(maps).all()
    expected = -_reconstruction(fitted_conv_detector, test_images)
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)), expected, rtol=1e-5)


def test_anomaly_map_bernoulli_and_mlp(
    digits, fitted_mlp_detector, blobs_with_outliers
):
    """The identity holds for the Bernoulli likelihood and the dense architecture."""
    images = digits[0][:64]
    bernoulli = VAEOutlierDetector(likelihood="bernoulli", **QUICK).fit(images)
    maps = anomaly_map(bernoulli, images[:5])
    assert maps.shape == (5, 1, 8, 8)
    assert (maps >= 0).all()  # a binary cross-entropy
    np.testing.assert_allclose(
        maps.sum(axis=(1, 2, 3)), -_reconstruction(bernoulli, images[:5]), rtol=1e-5
    )

    _, X_test = blobs_with_outliers
    mlp_maps = anomaly_map(fitted_mlp_detector, X_test)
    assert mlp_maps.shape == X_test.shape
    np.testing.assert_allclose(
        mlp_maps.sum(axis=1),
        -_reconstruction(fitted_mlp_detector, X_test),
        rtol=1e-5,
    )


def _reconstruction(detector, X):
    """log p(x|z=mu) of rows ``X`` under a fitted detector's VAE."""
    rows = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
    module = detector.net_.module_
    return reconstruction_scores(module, rows, input_shape=detector.input_shape_)


def test_anomaly_map_concentrates_in_inserted_square(fitted_conv_detector, test_images):
    """A bright 3x3 square in the hole of a zero holds most of the map's mass."""
    zeros = test_images[:10].copy()
    zeros[:, 3:6, 3:6] = 1.0
    # Drop the Gaussian's constant 0.5 * log(2 pi var) per pixel, leaving the
    # non-negative squared-error part whose shares are meaningful.
    constant = 0.5 * np.log(2 * np.pi * fitted_conv_detector.decoder_var_)
    maps = anomaly_map(fitted_conv_detector, zeros)[:, 0] - constant
    share = maps[:, 3:6, 3:6].sum(axis=(1, 2)) / maps.sum(axis=(1, 2))
    area_share = 9 / 64
    assert share.min() > 3 * area_share


def test_reconstruct_shape_and_range(fitted_conv_detector, test_images):
    rec = reconstruct(fitted_conv_detector, test_images)
    assert rec.shape == (len(test_images), 1, 8, 8)
    # Zeros are reconstructed better than the other digits.
    errors = ((rec[:, 0] - test_images) ** 2).mean(axis=(1, 2))
    assert errors[:10].mean() < errors[10:].mean()


@pytest.mark.parametrize("explain", GRADIENT_MAPS)
def test_gradient_maps_shape_finite_nonnegative(
    explain, fitted_conv_detector, test_images
):
    maps = explain(fitted_conv_detector, test_images)
    assert maps.shape == (len(test_images), 8, 8)
    assert np.isfinite(maps).all()
    assert (maps >= 0).all()
    assert maps.max() > 0


@pytest.mark.parametrize("explain", GRADIENT_MAPS)
def test_gradient_maps_are_deterministic_and_batch_independent(
    explain, fitted_conv_detector, test_images
):
    """An image's map is the same across calls, batch sizes and companions."""
    maps = explain(fitted_conv_detector, test_images, batch_size=16)
    again = explain(fitted_conv_detector, test_images, batch_size=16)
    np.testing.assert_array_equal(maps, again)
    in_threes = explain(fitted_conv_detector, test_images, batch_size=3)
    alone = explain(fitted_conv_detector, test_images[[7]])
    np.testing.assert_allclose(in_threes, maps, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(alone[0], maps[7], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("explain", GRADIENT_MAPS)
def test_gradient_maps_reject_mlp(explain, fitted_mlp_detector, blobs_with_outliers):
    with pytest.raises(ValueError, match="attention maps need the convolutional"):
        explain(fitted_mlp_detector, blobs_with_outliers[1])


def test_gradient_attention_is_mean_of_unit_maps(fitted_conv_detector, test_images):
    """The default map averages the per-unit maps (Liu et al., eq. for M)."""
    units = [
        gradient_attention_map(fitted_conv_detector, test_images, latent_unit=i)
        for i in range(fitted_conv_detector.latent_dim)
    ]
    average = gradient_attention_map(fitted_conv_detector, test_images)
    np.testing.assert_allclose(np.mean(units, axis=0), average, rtol=1e-5, atol=1e-8)


def test_gradient_attention_layers(fitted_conv_detector, test_images):
    first = gradient_attention_map(fitted_conv_detector, test_images, layer=0)
    last = gradient_attention_map(fitted_conv_detector, test_images, layer=1)
    np.testing.assert_array_equal(
        last, gradient_attention_map(fitted_conv_detector, test_images)
    )
    assert not np.allclose(first, last)
    with pytest.raises(ValueError, match="layer=2 must be an int"):
        gradient_attention_map(fitted_conv_detector, test_images, layer=2)
    with pytest.raises(ValueError, match="latent_unit=4 must be None"):
        gradient_attention_map(fitted_conv_detector, test_images, latent_unit=4)


def _first_layer(detector, image):
    encoder = detector.net_.module_.encoder
    x = torch.as_tensor(image, dtype=torch.float32).reshape(1, 1, 8, 8)
    with torch.no_grad():
        return encoder, encoder.features[0](x)[0]


def test_grad2vae_is_the_hessian_diagonal(fitted_conv_detector, test_images):
    """The map equals |diag of the full Hessian| from torch.func.hessian."""
    encoder, a = _first_layer(fitted_conv_detector, test_images[12])
    tail = _encoder_tail(encoder, 0, smoothing=10.0)
    hessian = torch.func.hessian(tail)(a)  # (L, K, h, w, K, h, w)
    n_dims = a.numel()
    diagonal = hessian.reshape(-1, n_dims, n_dims).diagonal(dim1=1, dim2=2)
    expected = diagonal.abs().reshape(-1, *a.shape).sum(dim=1).mean(dim=0)
    expected = F.interpolate(expected[None, None], size=(8, 8), mode="bilinear")
    maps = grad2vae_map(fitted_conv_detector, test_images[[12]])
    np.testing.assert_allclose(
        maps[0], expected[0, 0].detach().numpy(), rtol=1e-4, atol=1e-7
    )


def test_grad2vae_hutchinson_estimates_the_exact_map(fitted_conv_detector, test_images):
    exact = grad2vae_map(fitted_conv_detector, test_images)
    estimate = grad2vae_map(fitted_conv_detector, test_images, n_probes=512)
    assert np.corrcoef(exact.ravel(), estimate.ravel())[0, 1] > 0.9
    np.testing.assert_array_equal(
        estimate, grad2vae_map(fitted_conv_detector, test_images, n_probes=512)
    )


def test_grad2vae_smoothed_encoder_tends_to_the_encoder(fitted_conv_detector):
    """With a sharp softplus the smoothed tail gives the encoder's own mu."""
    image = np.zeros((8, 8), dtype=np.float32)
    image[2:6, 3] = 1.0
    encoder, a = _first_layer(fitted_conv_detector, image)
    mu = fitted_conv_detector.net_.module_.encode(torch.as_tensor(image)[None, None])
    with torch.no_grad():
        sharp = _encoder_tail(encoder, 0, smoothing=1e4)(a)
    np.testing.assert_allclose(sharp.numpy(), mu[0][0].detach().numpy(), atol=1e-3)


def test_grad2vae_blank_differs_from_digit(fitted_conv_detector, test_images):
    blank = np.zeros((1, 8, 8), dtype=np.float32)
    maps = grad2vae_map(fitted_conv_detector, np.concatenate([blank, test_images[:1]]))
    assert not np.allclose(maps[0], maps[1], rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"smoothing": 0.0}, "smoothing=0.0 must be a positive float"),
        ({"n_probes": 0}, "n_probes=0 must be None or a positive int"),
    ],
)
def test_grad2vae_rejects_bad_parameters(fitted_conv_detector, kwargs, match):
    with pytest.raises(ValueError, match=match):
        grad2vae_map(fitted_conv_detector, np.zeros((1, 8, 8)), **kwargs)


@pytest.mark.parametrize("estimator_class", [VAETransformer, VAEClassifier])
def test_explanations_work_for_every_estimator(estimator_class, digits):
    images, y = digits
    X, y = images[:48], y[:48]
    fit_args = (X, y) if estimator_class is VAEClassifier else (X,)
    est = estimator_class(**QUICK).fit(*fit_args)
    assert anomaly_map(est, X[:3]).shape == (3, 1, 8, 8)
    assert reconstruct(est, X[:3]).shape == (3, 1, 8, 8)
    for explain in GRADIENT_MAPS:
        assert explain(est, X[:3]).shape == (3, 8, 8)


def test_unfitted_estimator_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        anomaly_map(VAEOutlierDetector(), np.zeros((1, 8, 8)))
