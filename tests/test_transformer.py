import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skvae import VAETransformer

from .conftest import TINY_CONV, TINY_MLP

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def fitted_digit_transformer(digits):
    images, _ = digits
    return VAETransformer(**TINY_CONV, random_state=0).fit(images[:400])


def test_transform_returns_posterior_means(fitted_digit_transformer, digits):
    images, _ = digits
    vae = fitted_digit_transformer
    Z = vae.transform(images[:10])
    assert Z.shape == (10, TINY_CONV["latent_dim"])
    np.testing.assert_array_equal(Z, vae.transform(images[:10]))
    module = vae.net_.module_.eval()
    import torch

    with torch.no_grad():
        mu, _ = module.encode(torch.as_tensor(images[:10, None]))
    np.testing.assert_allclose(Z, mu.numpy(), rtol=1e-5, atol=1e-6)


def test_fit_transform_equals_fit_then_transform(digits):
    images, _ = digits
    params = {**TINY_CONV, "max_epochs": 3, "random_state": 0}
    Z_fit_transform = VAETransformer(**params).fit_transform(images[:100])
    Z_transform = VAETransformer(**params).fit(images[:100]).transform(images[:100])
    np.testing.assert_array_equal(Z_fit_transform, Z_transform)


def test_inverse_transform_reconstructs_in_input_layout(
    fitted_digit_transformer, digits
):
    images, _ = digits
    vae = fitted_digit_transformer
    recon = vae.inverse_transform(vae.transform(images[:50]))
    assert recon.shape == (50, 8, 8)
    mse = np.mean((recon - images[:50]) ** 2)
    assert mse < np.var(images[:50])  # better than predicting the mean image


def test_inverse_transform_flat_when_fitted_flat(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    vae = VAETransformer(**TINY_MLP, random_state=0).fit(X_train)
    assert vae.inverse_transform(vae.transform(X_train[:4])).shape == (4, 5)


def test_inverse_transform_checks_latent_width(fitted_digit_transformer):
    with pytest.raises(ValueError, match="expects latent codes of 4 features"):
        fitted_digit_transformer.inverse_transform(np.zeros((2, 3)))


def test_sample_draws_from_prior_reproducibly(fitted_digit_transformer):
    vae = fitted_digit_transformer
    first = vae.sample(5, random_state=0)
    assert first.shape == (5, 8, 8)
    np.testing.assert_array_equal(first, vae.sample(5, random_state=0))
    assert not np.array_equal(first, vae.sample(5, random_state=1))


def test_feature_names_out(fitted_digit_transformer):
    names = fitted_digit_transformer.get_feature_names_out()
    assert names.tolist() == [
        "vaetransformer0",
        "vaetransformer1",
        "vaetransformer2",
        "vaetransformer3",
    ]


def test_score_is_mean_elbo(fitted_digit_transformer, digits):
    images, _ = digits
    vae = fitted_digit_transformer
    scores = vae.score_samples(images[:30])
    assert scores.shape == (30,)
    assert vae.score(images[:30]) == pytest.approx(np.mean(scores))


@pytest.mark.slow
def test_latent_codes_beat_pca_for_knn(digits):
    """Two VAE dimensions separate digits better than two PCA components."""
    images, y = digits
    X = images.reshape(len(images), -1)
    train, test = slice(0, 1200), slice(1200, None)
    vae = VAETransformer(
        latent_dim=2, hidden_dims=(16, 32), max_epochs=40, random_state=0
    )
    knn = KNeighborsClassifier(5)
    vae_accuracy = (
        make_pipeline(vae, knn).fit(X[train], y[train]).score(X[test], y[test])
    )
    pca_accuracy = (
        make_pipeline(PCA(2), knn).fit(X[train], y[train]).score(X[test], y[test])
    )
    assert vae_accuracy > pca_accuracy


def test_pipeline_scaler_transformer_classifier(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    y = (X_train[:, 0] > 0).astype(int)
    pipe = make_pipeline(
        StandardScaler(),
        VAETransformer(**TINY_MLP, random_state=0),
        LogisticRegression(),
    ).fit(X_train, y)
    assert pipe.predict(X_train).shape == (len(X_train),)
    assert pipe.score(X_train, y) > 0.6
    names = pipe[:-1].get_feature_names_out()
    assert names.tolist() == ["vaetransformer0", "vaetransformer1"]


def test_grid_search_over_latent_dim_by_mean_elbo(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    search = GridSearchCV(
        VAETransformer(**{**TINY_MLP, "max_epochs": 10}, random_state=0),
        {"latent_dim": [1, 3]},
        cv=2,
    ).fit(X_train)
    means = search.cv_results_["mean_test_score"]
    assert search.best_params_["latent_dim"] == [1, 3][int(np.argmax(means))]


@pytest.mark.parametrize("copy", [clone, lambda est: pickle.loads(pickle.dumps(est))])
def test_clone_and_pickle_keep_outputs(copy, fitted_digit_transformer, digits):
    images, _ = digits
    vae = fitted_digit_transformer
    copied = copy(vae)
    if copy is clone:
        copied.fit(images[:400])
    np.testing.assert_array_equal(
        copied.transform(images[:20]), vae.transform(images[:20])
    )


def test_pandas_output(blobs_with_outliers):
    pd = pytest.importorskip("pandas")
    X_train, _ = blobs_with_outliers
    frame = pd.DataFrame(X_train, columns=[f"f{i}" for i in range(5)])
    vae = VAETransformer(**{**TINY_MLP, "max_epochs": 1}).set_output(transform="pandas")
    out = vae.fit_transform(frame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    assert vae.feature_names_in_.tolist() == list(frame.columns)


def test_fewer_samples_than_latent_dim_still_encodes():
    """A VAE has no rank limit like PCA: 3 samples can get 8 latent codes."""
    X = np.random.RandomState(0).rand(3, 6)
    vae = VAETransformer(latent_dim=8, hidden_dims=(8,), max_epochs=2).fit(X)
    Z = vae.transform(X)
    assert Z.shape == (3, 8)
    assert np.all(np.isfinite(Z))


# -- the paper-style network options (batch_norm, activation, pad_to) -------

PAPER_STYLE = {
    "hidden_dims": (4, 8, 16),
    "kernel_size": 5,
    "batch_norm": True,
    "activation": "relu",
    "max_epochs": 2,
    "latent_dim": 3,
    "random_state": 0,
}


@pytest.mark.parametrize("pad_to", [None, 12, (10, 16)])
def test_batch_norm_model_transforms_each_row_as_alone(digits, pad_to):
    images = digits[0][:65]  # 65 = 64 + 1: the one-image last batch is dropped
    transformer = VAETransformer(**PAPER_STYLE, pad_to=pad_to, batch_size=64)
    codes = transformer.fit(images).transform(images)
    alone = np.concatenate([transformer.transform(images[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(codes[:5], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(transformer.transform(images), codes)
    steps = sum(len(row["batches"]) for row in transformer.history_)
    assert steps == 2  # one full batch per epoch
    assert transformer.inverse_transform(codes[:2]).shape == (2, 8, 8)


def test_pad_to_builds_the_layers_for_the_padded_size(digits):
    transformer = VAETransformer(**PAPER_STYLE, pad_to=16).fit(digits[0][:64])
    encoder = transformer.net_.module_.encoder
    # 16 -> 8 -> 4 -> 2 with 16 channels (8 -> 4 -> 2 -> 1 without padding).
    assert encoder.mu.in_features == 16 * 2 * 2
    assert transformer.get_params()["pad_to"] == 16


@pytest.mark.parametrize(
    "params, message",
    [
        ({"pad_to": (16, 16, 16)}, "one side or an"),
        ({"pad_to": 6}, "smaller than the images"),
        (
            {"batch_norm": True, "architecture": "mlp"},
            r"batch_norm .* \(64,\) builds dense",
        ),
        ({"pad_to": 16, "architecture": "mlp"}, r"pad_to .* \(64,\) builds dense"),
        ({"pad_to": 16, "architecture": "grad2vae"}, "not to architecture='grad2vae'"),
    ],
)
def test_invalid_layer_options_say_what_to_do(digits, params, message):
    with pytest.raises(ValueError, match=message):
        VAETransformer(latent_dim=2, max_epochs=1, **params).fit(digits[0][:20])


def test_dual_vae_rejects_the_layer_options(digits):
    from skvae import DualVAETransformer

    with pytest.raises(ValueError, match="does not take batch_norm"):
        DualVAETransformer(latent_dim=2, max_epochs=1, batch_norm=True).fit(
            digits[0][:20]
        )
