import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

import skvae
from skvae import DualVAETransformer, VAETransformer
from skvae.datasets import make_cells
from skvae.nn import LatentMixing, PooledTarget, ReceptiveFieldEncoder

pytestmark = pytest.mark.compat

FAST = {"hidden_dims": (8, 16), "latent_dim": 3, "batch_size": 32}


@pytest.fixture(scope="module")
def cells():
    """X50 images: the background cell is on in about half of them."""
    return make_cells(600, scenario="X50", random_state=0)


@pytest.fixture(scope="module")
def fitted_dual(cells):
    X, _ = cells
    return DualVAETransformer(
        **FAST,
        likelihood="bernoulli",
        weight_background_kl=True,
        max_epochs=6,
        random_state=0,
    ).fit(X[:400])


def test_the_background_code_separates_the_background_state(fitted_dual, cells):
    X, truth = cells
    Z = fitted_dual.transform(X[400:])
    state = truth["background"][400:, 0]
    auc = roc_auc_score(state, Z[:, -1])
    assert max(auc, 1 - auc) > 0.95


def test_codes_are_the_foreground_then_the_background_posterior_means(
    fitted_dual, cells
):
    X, _ = cells
    Z = fitted_dual.transform(X[:7])
    assert Z.shape == (7, 4)
    encoder = fitted_dual.net_.module_.encoder
    with torch.no_grad():
        x = torch.as_tensor(X[:7, None])
        mu_foreground, _ = encoder.foreground(x)
        mu_background, _ = encoder.background(x)
    np.testing.assert_allclose(Z[:, :3], mu_foreground.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Z[:, 3:], mu_background.numpy(), rtol=1e-5, atol=1e-6)
    names = fitted_dual.get_feature_names_out()
    np.testing.assert_array_equal(names, ["fg0", "fg1", "fg2", "bg0"])


def test_score_samples_is_the_weighted_sum_of_both_elbos(fitted_dual, cells):
    X, _ = cells
    module = fitted_dual.net_.module_
    with torch.no_grad():
        x = torch.as_tensor(X[:5, None])
        mu, logvar = module.encode(x)
        log_px = module.likelihood.log_prob(x, module.decode(mu))
        target = torch.sigmoid(12 * (torch.nn.functional.avg_pool2d(x, 30) - 0.5))
        log_pg = module.background_likelihood.log_prob(
            target, module.decode_background(mu)
        )
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar)
        w = 450.0
        expected = log_px + w * log_pg - kl[:, :3].sum(1) - w * kl[:, 3:].sum(1)
    np.testing.assert_allclose(
        fitted_dual.score_samples(X[:5]), expected.numpy(), rtol=1e-4
    )


def test_reconstructions_and_target_shapes_follow_the_input(fitted_dual, cells):
    X, _ = cells
    foreground = fitted_dual.reconstruct_foreground(X[:3])
    assert foreground.shape == (3, 60, 60)
    assert ((foreground >= 0) & (foreground <= 1)).all()
    background = fitted_dual.reconstruct_background(X[:3])
    target = fitted_dual.background_target(X[:3])
    assert background.shape == target.shape == (3, 2, 2)
    expected = 1 / (
        1 + np.exp(-12 * (X[:3].reshape(3, 2, 30, 2, 30).mean((2, 4)) - 0.5))
    )
    np.testing.assert_allclose(target, expected, rtol=1e-5)
    # The foreground decoder, at the posterior mean: inverse_transform(transform).
    np.testing.assert_allclose(
        foreground,
        fitted_dual.inverse_transform(fitted_dual.transform(X[:3])),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("shape", "kwargs", "pooled"),
    [
        ((20, 1, 12, 12), {}, (20, 1, 2, 2)),
        ((20, 144), {"image_shape": (12, 12)}, (20, 4)),
        ((20, 2, 12, 12), {"pool_size": 4}, (20, 2, 3, 3)),
    ],
)
def test_image_layouts(shape, kwargs, pooled):
    X = np.random.RandomState(0).uniform(size=shape).astype(np.float32)
    dual = DualVAETransformer(**FAST, max_epochs=1, **kwargs).fit(X)
    assert dual.reconstruct_foreground(X).shape == shape
    assert dual.background_target(X).shape == pooled
    assert dual.inverse_transform(dual.transform(X)).shape == shape


@pytest.mark.parametrize(
    ("side", "fields", "pool", "weight"),
    [(60, (6, 30), 30, 450.0), (28, (3, 14), 14, 98.0), (9, (1, 4), 4, 4.5)],
)
def test_auto_sizes_are_the_thesis_proportions(side, fields, pool, weight):
    X = np.zeros((4, side, side), dtype=np.float32)
    dual = DualVAETransformer(**FAST, max_epochs=1).fit(X)
    kwargs = dual._module_kwargs_
    assert (
        kwargs["foreground_receptive_field"],
        kwargs["background_receptive_field"],
    ) == fields
    assert kwargs["pool_size"] == pool
    assert kwargs["background_weight"] == pytest.approx(weight)


def test_flat_rows_that_are_no_square_image_become_one_row_image():
    X = np.random.RandomState(0).normal(size=(30, 7)).astype(np.float32)
    dual = DualVAETransformer(**FAST, max_epochs=1).fit(X)
    assert dual.input_shape_ == (1, 1, 7)
    assert dual.transform(X).shape == (30, 4)
    assert dual.inverse_transform(dual.transform(X)).shape == (30, 7)


def test_into_foreground_mixing_keeps_the_background_decoder_on_its_code(cells):
    X, _ = cells
    dual = DualVAETransformer(
        **FAST, mixing="into_foreground", max_epochs=1, random_state=0
    ).fit(X[:64])
    module = dual.net_.module_
    z = torch.randn(5, 4)
    changed = z.clone()
    changed[:, :3] = torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(
            module.decode_background(z), module.decode_background(changed)
        )
        assert not torch.allclose(module.decode(z), module.decode(changed))


def test_full_mixing_starts_as_the_identity_and_is_learned(fitted_dual):
    mixing = LatentMixing(3, 1)
    torch.testing.assert_close(mixing.linear.weight, torch.eye(4))
    learned = fitted_dual.net_.module_.mixing.linear.weight.detach()
    assert not torch.allclose(learned, torch.eye(4))


def test_receptive_field_encoder_sees_only_its_window():
    encoder = ReceptiveFieldEncoder((1, 20, 20), 2, (4,), receptive_field=6)
    features = encoder.features
    x = torch.zeros(1, 1, 20, 20, requires_grad=True)
    # The top-left feature depends on the top-left 6x6 window alone.
    features(x)[0, :, 0, 0].sum().backward()
    seen = x.grad[0, 0] != 0
    assert seen[:6, :6].all() and seen.sum() == 36
    # Windows (stride 3, bottom and right zero-padded) cover every pixel.
    assert features(torch.zeros(1, 1, 20, 20)).shape[-2:] == (6, 6)


def test_pooled_target_averages_partial_windows():
    target = PooledTarget((1, 5, 5), pool_size=3, slope=1.0, center=0.0)
    x = torch.ones(1, 1, 5, 5)
    assert target.output_shape == (1, 2, 2)
    torch.testing.assert_close(target(x), torch.sigmoid(torch.ones(1, 1, 2, 2)))


def test_persistence_round_trip(fitted_dual, cells, tmp_path):
    X, _ = cells
    path = tmp_path / "dual.pkl"
    skvae.save(fitted_dual, path)
    loaded = skvae.load(path)
    np.testing.assert_array_equal(loaded.transform(X[:5]), fitted_dual.transform(X[:5]))
    np.testing.assert_array_equal(
        loaded.reconstruct_background(X[:5]), fitted_dual.reconstruct_background(X[:5])
    )


def test_refits_are_reproducible(cells):
    X, _ = cells
    dual = DualVAETransformer(**FAST, max_epochs=1, random_state=3)
    a = dual.fit(X[:64]).transform(X[:8])
    b = clone(dual).fit(X[:64]).transform(X[:8])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"architecture": "mlp"}, "architecture"),
        ({"mixing": "none"}, "mixing"),
        ({"background_weight": 0.0}, "background_weight"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_invalid_parameters_are_rejected(params, match):
    X = np.zeros((4, 12, 12), dtype=np.float32)
    with pytest.raises(InvalidParameterError, match=match):
        DualVAETransformer(**FAST, max_epochs=1, **params).fit(X)


def test_inverse_transform_needs_both_codes(fitted_dual):
    with pytest.raises(ValueError, match="expects latent codes of 4 features"):
        fitted_dual.inverse_transform(np.zeros((2, 3)))


def test_plain_transformer_has_no_dual_methods():
    assert not hasattr(VAETransformer(), "reconstruct_background")


@pytest.mark.parametrize("rows_per_call", [1, 5, 16])
def test_codes_do_not_depend_on_the_rows_transformed_with_them(
    fitted_dual, cells, rows_per_call
):
    X, _ = cells
    together = fitted_dual.transform(X[:48])
    apart = np.concatenate(
        [
            fitted_dual.transform(X[start : min(start + rows_per_call, 48)])
            for start in range(0, 48, rows_per_call)
        ]
    )
    np.testing.assert_array_equal(apart, together)


def test_remove_background_decodes_with_the_darkest_background_code(fitted_dual, cells):
    X, _ = cells
    dual = fitted_dual
    assert dual.background_off_code_.shape == (1,)
    # The code belongs to the training image whose g(x) reconstruction is darkest.
    brightness = dual.reconstruct_background(X[:400]).mean(axis=(1, 2))
    darkest = dual.transform(X[:400])[np.argmin(brightness), 3:]
    np.testing.assert_array_equal(dual.background_off_code_, darkest)
    Z = dual.transform(X[400:410])
    Z[:, 3:] = dual.background_off_code_
    removed = dual.reconstruct_foreground(X[400:410], remove_background=True)
    np.testing.assert_allclose(removed, dual.inverse_transform(Z), rtol=1e-5)


@pytest.mark.parametrize("weight_background_kl", [True, False])
def test_background_weight_covers_the_kl_term_only_when_asked(
    weight_background_kl, cells
):
    X, _ = cells
    dual = DualVAETransformer(
        **FAST, weight_background_kl=weight_background_kl, max_epochs=1
    ).fit(X[:64])
    module = dual.net_.module_
    with torch.no_grad():
        x = torch.as_tensor(X[:5, None])
        output = module(x)
        log_px, kl = module.elbo_terms(x, output)
        mu, logvar = output.mu[:, 3:], output.logvar[:, 3:]
        kl_background = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        mu, logvar = output.mu[:, :3], output.logvar[:, :3]
        kl_foreground = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    weight = 450.0 if weight_background_kl else 1.0
    torch.testing.assert_close(kl, kl_foreground + weight * kl_background)
