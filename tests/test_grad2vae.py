"""architecture="grad2vae": the torch module, its exact curvature, the estimators."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

import skvae
from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae.explain import (
    _encoder_tail,
    anomaly_map,
    grad2vae_map,
    gradient_attention_map,
    online_attention_map,
    reconstruct,
)
from skvae.nn import Grad2VAE, NegativeELBO, make_vae
from skvae.nn._grad2vae import silu_second_derivative
from skvae.terms._builtin import TERM_NAMES

from .conftest import training_rows

# torch.func's forward mode loads its decompositions with the deprecated
# torch.jit.script; nothing to act on.
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script:DeprecationWarning")

QUICK = {
    "architecture": "grad2vae",
    "hidden_dims": (4, 8),
    "latent_dim": 3,
    "max_epochs": 3,
    "random_state": 0,
}


def _module(input_shape, kernel_size=3, aggregation="conv", latent_dim=3):
    torch.manual_seed(0)
    module = make_vae(
        input_shape,
        latent_dim,
        hidden_dims=(2, 3),
        kernel_size=kernel_size,
        architecture="grad2vae",
        aggregation=aggregation,
    )
    return module.eval()


def _torch_func_diagonal(encoder, a_one, weights):
    """diag of d^2 (weights . mu) / d a^2 for one sample, from the full Hessian."""

    def weighted_code(a):
        h = encoder.features[1](a.unsqueeze(0)).flatten(start_dim=1)
        return encoder.mu(h)[0] @ weights

    hessian = torch.func.hessian(weighted_code)(a_one)
    return hessian.reshape(a_one.numel(), -1).diagonal().view_as(a_one)


def test_silu_second_derivative_matches_autograd():
    v = torch.linspace(-6, 6, 41, dtype=torch.float64)
    second = torch.vmap(torch.func.grad(torch.func.grad(torch.nn.functional.silu)))(v)
    torch.testing.assert_close(silu_second_derivative(v), second)


@pytest.mark.parametrize(
    "input_shape, kernel_size",
    [((1, 7, 6), 3), ((2, 8, 8), 3), ((1, 9, 5), 5), ((1, 1, 11), 3)],
)
def test_exact_curvature_is_the_hessian_diagonal(input_shape, kernel_size):
    """The closed form equals torch.func's Hessian, for any unit weighting."""
    module = _module(input_shape, kernel_size)
    x = torch.rand(2, *input_shape)
    _, _, a, v = module.encoder.forward_with_first_layer(x)
    weights = torch.randn(4, 3)
    diagonals = module.encoder.mean_hessian_diagonal(a, v, weights)
    assert diagonals.shape == (2, 4, *a.shape[1:])
    for n in range(2):
        for m in range(4):
            expected = _torch_func_diagonal(module.encoder, a[n], weights[m])
            torch.testing.assert_close(diagonals[n, m], expected, atol=1e-6, rtol=1e-4)
    assert diagonals.abs().max() > 0


@pytest.mark.parametrize("aggregation, scale", [("sum", 1.0), ("mean", 1 / 3)])
def test_fixed_aggregations_sum_or_average_the_units(aggregation, scale):
    module = _module((1, 8, 8), aggregation=aggregation)
    _, _, a, v = module.encoder.forward_with_first_layer(torch.rand(2, 1, 8, 8))
    per_unit = module.encoder.mean_hessian_diagonal(a, v, torch.eye(3))
    attention, image = module.attention(
        module.encoder.mean_hessian_diagonal(a, v, module.attention.unit_weights)[:, 0]
    )
    torch.testing.assert_close(attention, scale * per_unit.sum(dim=1))
    assert image.shape == (2, 1, 8, 8)
    assert not any(p is module.attention.unit_weights for p in module.parameters())


def test_unknown_aggregation_and_wrong_hidden_dims_are_rejected():
    with pytest.raises(ValueError, match="aggregation='max' must be one of"):
        _module((1, 8, 8), aggregation="max")
    with pytest.raises(ValueError, match="hidden_dims of two channel counts"):
        make_vae((1, 8, 8), 2, hidden_dims=(4, 8, 16), architecture="grad2vae")
    with pytest.raises(ValueError, match="no classifier head"):
        make_vae((1, 8, 8), 2, hidden_dims=(4, 8), architecture="grad2vae", n_classes=3)


def test_the_attention_enters_the_decoder_and_the_second_loss_the_objective():
    module = _module((1, 8, 8))
    x = torch.rand(5, 1, 8, 8)
    output = module(x)
    mu = output.mu
    assert not torch.allclose(
        module.decode(mu, module.decoder_context(x)), module.decode(mu)
    )
    torch.testing.assert_close(output.params, module.reconstruction_params(x))
    image = module.attention_images(x)
    torch.testing.assert_close(
        output.auxiliary_loss, (x - image).pow(2).flatten(1).sum(dim=1)
    )
    log_px, kl = module.elbo_terms(x, output)
    loss = NegativeELBO()(log_px, kl, output=output)
    torch.testing.assert_close(
        loss, -(log_px - kl).mean() + output.auxiliary_loss.mean()
    )
    loss.backward()
    # Training reaches the attention's weights and the curvature's path.
    attention = module.attention
    assert attention.unit_weights.grad.abs().sum() > 0
    assert attention.aggregate.weight.grad.abs().sum() > 0
    assert module.encoder.features[1][0].weight.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def digits_images(digits_one_class):
    X_train, X_test, y_test = digits_one_class
    return X_train.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8), y_test


@pytest.fixture(scope="module")
def fitted_grad2vae(digits_images):
    X_train, _, _ = digits_images
    return VAEOutlierDetector(**QUICK).fit(X_train)


def test_detector_builds_grad2vae_and_detects(fitted_grad2vae, digits_images):
    from sklearn.metrics import roc_auc_score

    _, X_test, is_inlier = digits_images
    assert isinstance(fitted_grad2vae.net_.module_, Grad2VAE)
    assert fitted_grad2vae.input_shape_ == (1, 8, 8)
    auc = roc_auc_score(is_inlier, fitted_grad2vae.score_samples(X_test))
    assert auc > 0.75


def test_every_score_type_is_finite_deterministic_and_row_independent(
    digits_images,
):
    X_train, X_test, _ = digits_images
    every_term = TERM_NAMES
    detector = VAEOutlierDetector(**QUICK, score_type=every_term, n_samples=4)
    parts = detector.fit(X_train).score_parts(X_test[:6])
    assert list(parts) == list(every_term)
    for name, scores in parts.items():
        assert scores.shape == (6,) and np.all(np.isfinite(scores)), name
    np.testing.assert_allclose(
        detector.score_samples(X_test[:6]), sum(parts.values()), rtol=1e-12
    )
    for name, scores in detector.score_parts(X_test[3:4]).items():
        np.testing.assert_allclose(scores, parts[name][3:4], rtol=1e-5, atol=1e-5)


def test_explanations_of_a_grad2vae_model(fitted_grad2vae, digits_images):
    _, X_test, _ = digits_images
    images = X_test[:3]
    for explain in (grad2vae_map, gradient_attention_map, online_attention_map):
        maps = explain(fitted_grad2vae, images)
        assert maps.shape == (3, 8, 8) and np.all(np.isfinite(maps))
    assert anomaly_map(fitted_grad2vae, images).shape == (3, 1, 8, 8)
    # The reconstructions the maps refer to use the attention, as training did.
    module = fitted_grad2vae.net_.module_
    x = torch.as_tensor(images, dtype=torch.float32).view(-1, 1, 8, 8)
    with torch.no_grad():
        expected = module.likelihood.mean(module.reconstruction_params(x))
    np.testing.assert_allclose(
        reconstruct(fitted_grad2vae, images), expected.numpy(), rtol=1e-5, atol=1e-6
    )


def test_grad2vae_map_closed_form_equals_the_generic_hessian(
    fitted_grad2vae, digits_images
):
    """The fast path of grad2vae_map gives what torch.func's Hessian gives."""
    _, X_test, _ = digits_images
    encoder = fitted_grad2vae.net_.module_.encoder
    x = torch.as_tensor(X_test[5], dtype=torch.float32).view(1, 1, 8, 8)
    with torch.no_grad():
        a = encoder.features[0](x)[0]
    hessian = torch.func.hessian(_encoder_tail(encoder, 0))(a)
    n_dims = a.numel()
    diagonal = hessian.reshape(-1, n_dims, n_dims).diagonal(dim1=1, dim2=2)
    expected = diagonal.abs().reshape(-1, *a.shape).sum(dim=1).mean(dim=0)
    np.testing.assert_allclose(
        grad2vae_map(fitted_grad2vae, X_test[[5]])[0],
        expected.detach().numpy(),
        rtol=1e-4,
        atol=1e-7,
    )


def test_online_attention_map_needs_a_grad2vae_model(fitted_conv_detector):
    with pytest.raises(ValueError, match="architecture='grad2vae'"):
        online_attention_map(fitted_conv_detector, np.zeros((1, 8, 8)))


def test_persistence_keeps_the_scores(fitted_grad2vae, digits_images, tmp_path):
    _, X_test, _ = digits_images
    expected = fitted_grad2vae.score_samples(X_test[:5])
    path = tmp_path / "grad2vae.skvae"
    skvae.save(fitted_grad2vae, path)
    np.testing.assert_array_equal(skvae.load(path).score_samples(X_test[:5]), expected)
    restored = pickle.loads(pickle.dumps(fitted_grad2vae))
    np.testing.assert_array_equal(restored.score_samples(X_test[:5]), expected)


def test_fit_predict_matches_the_training_threshold(digits_images):
    X_train, _, _ = digits_images
    detector = VAEOutlierDetector(**QUICK, contamination=0.1, calibration_fraction=None)
    labels = detector.fit_predict(X_train)
    np.testing.assert_array_equal(
        labels, detector.predict(training_rows(detector, X_train))
    )
    assert abs(np.mean(labels == -1) - 0.1) < 0.02


def test_transformer_with_grad2vae_transforms_and_decodes(digits_images):
    X_train, X_test, _ = digits_images
    transformer = VAETransformer(**QUICK).fit(X_train)
    Z = transformer.transform(X_test[:4])
    assert Z.shape == (4, 3)
    # Decoding a code alone has no attention to add: the plain decoder path.
    assert transformer.inverse_transform(Z).shape == (4, 8, 8)
    assert transformer.sample(2, random_state=0).shape == (2, 8, 8)


def test_warm_start_continues_the_grad2vae(digits_images):
    X_train, _, _ = digits_images
    detector = VAEOutlierDetector(**{**QUICK, "max_epochs": 1}, warm_start=True)
    detector.fit(X_train)
    weights = detector.net_.module_.attention.unit_weights.detach().clone()
    detector.fit(X_train)
    assert len(detector.history_) == 2
    assert not torch.equal(weights, detector.net_.module_.attention.unit_weights)


def test_classifier_rejects_grad2vae():
    X = np.random.default_rng(0).random((20, 8, 8))
    with pytest.raises(InvalidParameterError, match="architecture"):
        VAEClassifier(architecture="grad2vae").fit(X, np.arange(20) % 2)
