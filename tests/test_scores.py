import math
import pickle
from copy import deepcopy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.utils._param_validation import InvalidParameterError

from skvae import VAEOutlierDetector
from skvae.nn import kl_standard_normal, make_vae
from skvae.scoring import (
    bits_per_dim,
    elbo_scores,
    iwae_scores,
    latent_gaussian,
    latent_mahalanobis_scores,
    latent_means,
    latent_noise,
    map_batches,
    per_sample_outputs,
    reconstruction_probability_scores,
    reconstruction_scores,
)
from skvae.terms._builtin import AUTO_IMAGE_TERMS, SCORE_NAMES

from .conftest import TINY_CONV, TINY_MLP

MONTE_CARLO = ["iwae", "reconstruction_probability"]
# The classifier's scores need images; tests/test_transformations.py has them.
CLASSIFIER_SCORES = ("transformation", "orientation", "transformation_knn")
FLAT_SCORE_TYPES = [s for s in SCORE_NAMES if s not in CLASSIFIER_SCORES]


# -- the scoring functions on an untrained module ---------------------------


@pytest.fixture(scope="module", params=["mlp", "conv"])
def module_and_data(request):
    """An untrained VAE and 40 random inputs; tests must not train it."""
    torch.manual_seed(0)
    if request.param == "mlp":
        # MKL's sgemm rounds odd rows of a batch differently from even ones
        # for some shapes and CPUs; skvae.nn's Dense layers multiply rows one
        # by one in eval mode so that a row's position does not matter.
        input_shape = (5,)
        module = make_vae(input_shape, 3, hidden_dims=(16,), decoder_var=0.5)
    else:
        input_shape = (1, 8, 8)
        module = make_vae(input_shape, 3, hidden_dims=(4, 8), likelihood="bernoulli")
    X = np.random.RandomState(0).rand(40, math.prod(input_shape)).astype(np.float32)
    return module, X, {"input_shape": input_shape}


def _all_scores(module, X, kwargs, noise):
    mean, covariance = latent_gaussian(latent_means(module, X, **kwargs))
    return {
        "elbo": elbo_scores(module, X, **kwargs),
        "iwae": iwae_scores(module, X, noise=noise, **kwargs),
        "reconstruction": reconstruction_scores(module, X, **kwargs),
        "reconstruction_probability": reconstruction_probability_scores(
            module, X, noise=noise, **kwargs
        ),
        "latent_mahalanobis": latent_mahalanobis_scores(
            module, X, mean=mean, covariance=covariance, **kwargs
        ),
    }


def _posterior(module, X, kwargs):
    """Posterior mean and log-variance of ``X`` as float64 tensors."""
    mu = torch.as_tensor(latent_means(module, X, **kwargs))
    logvar = map_batches(lambda module, x: module.encode(x)[1], module, X, **kwargs)
    return mu, torch.as_tensor(logvar)


def test_scores_have_one_finite_float64_per_sample(module_and_data):
    module, X, kwargs = module_and_data
    for name, scores in _all_scores(module, X, kwargs, latent_noise(4, 3, 0)).items():
        assert scores.shape == (len(X),), name
        assert scores.dtype == np.float64, name
        assert np.all(np.isfinite(scores)), name


def test_scores_are_deterministic_and_batch_independent(module_and_data):
    """Scoring a subset, in any order or batch size, gives the same bits."""
    module, X, kwargs = module_and_data
    noise = latent_noise(5, 3, seed=1)
    full = _all_scores(module, X, kwargs, noise)
    again = _all_scores(module, X, kwargs, noise)
    rows = [17, 3, 39, 4]
    subset = _all_scores(module, X[rows], kwargs, noise)
    small_batches = _all_scores(module, X, {**kwargs, "batch_size": 7}, noise)
    for name in full:
        np.testing.assert_array_equal(again[name], full[name], err_msg=name)
        if name != "latent_mahalanobis":  # its statistics come from X itself
            np.testing.assert_array_equal(subset[name], full[name][rows], name)
        np.testing.assert_allclose(small_batches[name], full[name], rtol=1e-5)


@pytest.mark.parametrize("with_noise", [False, True])
def test_one_pass_outputs_match_separate_passes(module_and_data, with_noise):
    module, X, kwargs = module_and_data
    noise = latent_noise(4, 3, seed=2) if with_noise else None
    outputs = per_sample_outputs(module, X, noise=noise, **kwargs)
    separate = {
        "elbo": elbo_scores(module, X, **kwargs),
        "reconstruction": reconstruction_scores(module, X, **kwargs),
        "latent_means": latent_means(module, X, **kwargs),
    }
    if with_noise:
        separate["iwae"] = iwae_scores(module, X, noise=noise, **kwargs)
        separate["reconstruction_probability"] = reconstruction_probability_scores(
            module, X, noise=noise, **kwargs
        )
    assert outputs.keys() == separate.keys()
    for name, values in separate.items():
        np.testing.assert_allclose(outputs[name], values, rtol=1e-6, err_msg=name)


def test_an_encoder_only_pass_gives_the_same_latent_means(module_and_data):
    module, X, kwargs = module_and_data
    decoder_calls = []
    hook = module.decoder.register_forward_hook(lambda *_: decoder_calls.append(1))
    try:
        encoded = per_sample_outputs(module, X, decoded=False, **kwargs)
        assert not decoder_calls
        full = per_sample_outputs(module, X, **kwargs)
        assert decoder_calls
    finally:
        hook.remove()
    assert list(encoded) == ["latent_means"]
    np.testing.assert_array_equal(encoded["latent_means"], full["latent_means"])


def test_the_detector_decodes_only_for_a_score_that_reads_decoded_outputs(
    fitted_models, digits_one_class
):
    detector = fitted_models(
        VAEOutlierDetector,
        "zeros",
        **TINY_CONV,
        score_type=AUTO_IMAGE_TERMS,  # what "auto" sums on images of 14+ pixels
        random_state=0,
    )
    X = digits_one_class[1][:20]
    decoder_calls = []
    decoder = detector.net_.module_.decoder
    hook = decoder.register_forward_hook(lambda *_: decoder_calls.append(1))
    try:
        detector.score_samples(X)
        assert not decoder_calls
        detector.score_parts(X)
        assert not decoder_calls
    finally:
        hook.remove()


def test_latent_mahalanobis_is_batch_independent(module_and_data):
    module, X, kwargs = module_and_data
    mean, cov = np.full(3, 0.1), np.diag([1.0, 2.0, 0.5])
    full = latent_mahalanobis_scores(module, X, mean=mean, covariance=cov, **kwargs)
    subset = latent_mahalanobis_scores(
        module, X[[5, 0]], mean=mean, covariance=cov, **kwargs
    )
    np.testing.assert_array_equal(subset, full[[5, 0]])


def test_iwae_with_one_draw_is_single_sample_elbo(module_and_data):
    """K=1: log p(x|z) + log p(z) - log q(z|x) at z = mu + sigma * eps."""
    module, X, kwargs = module_and_data
    noise = latent_noise(1, 3, seed=3)
    mu, logvar = _posterior(module, X, kwargs)
    z = mu + torch.exp(0.5 * logvar) * noise[0].double()
    normal = torch.distributions.Normal
    log_pz = normal(0.0, 1.0).log_prob(z).sum(dim=1)
    log_qz = normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(dim=1)
    log_px = reconstruction_probability_scores(module, X, noise=noise, **kwargs)
    expected = log_px + (log_pz - log_qz).numpy()
    iwae = iwae_scores(module, X, noise=noise, **kwargs)
    np.testing.assert_allclose(iwae, expected, rtol=1e-5, atol=1e-3)


def test_iwae_is_log_mean_of_importance_weights(module_and_data):
    """Hand-computed log (1/K) sum_k w_k with K = 3, and Jensen: >= mean log w_k."""
    module, X, kwargs = module_and_data
    noise = latent_noise(3, 3, seed=4)
    log_w = np.stack(
        [iwae_scores(module, X, noise=eps[None], **kwargs) for eps in noise], axis=1
    )
    iwae = iwae_scores(module, X, noise=noise, **kwargs)
    expected = np.log(np.mean(np.exp(log_w - log_w.max(1, keepdims=True)), 1))
    np.testing.assert_allclose(iwae, expected + log_w.max(1), rtol=1e-5)
    assert np.all(iwae >= log_w.mean(axis=1) - 1e-4)


def test_reconstruction_is_elbo_plus_kl(module_and_data):
    module, X, kwargs = module_and_data
    mu, logvar = _posterior(module, X, kwargs)
    kl = kl_standard_normal(mu, logvar).numpy()
    np.testing.assert_allclose(
        reconstruction_scores(module, X, **kwargs),
        elbo_scores(module, X, **kwargs) + kl,
        rtol=1e-5,
        atol=1e-4,
    )


def test_zero_noise_reconstruction_probability_is_reconstruction(module_and_data):
    """With eps = 0 every draw is the posterior mean."""
    module, X, kwargs = module_and_data
    np.testing.assert_allclose(
        reconstruction_probability_scores(module, X, noise=torch.zeros(2, 3), **kwargs),
        reconstruction_scores(module, X, **kwargs),
        rtol=1e-6,
    )


def test_gaussian_reconstruction_is_affine_in_squared_error():
    torch.manual_seed(0)
    module = make_vae((6,), 2, hidden_dims=(8,), decoder_var=0.25)
    X = np.random.RandomState(0).normal(size=(30, 6)).astype(np.float32)
    with torch.no_grad():
        module.eval()
        recon = module.decode(module.encode(torch.from_numpy(X))[0]).numpy()
    squared_error = ((X - recon) ** 2).sum(axis=1)
    expected = -0.5 * (squared_error / 0.25 + 6 * math.log(2 * math.pi * 0.25))
    scores = reconstruction_scores(module, X, input_shape=(6,))
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_noise_of_wrong_latent_size_raises(module_and_data):
    module, X, kwargs = module_and_data
    with pytest.raises(ValueError, match=r"latent_dim=3\); got \(4, 1\)"):
        iwae_scores(module, X, noise=torch.zeros(4, 1), **kwargs)


def test_latent_noise_is_seeded():
    np.testing.assert_array_equal(latent_noise(4, 2, 7), latent_noise(4, 2, 7))
    assert not torch.equal(latent_noise(4, 2, 7), latent_noise(4, 2, 8))
    assert latent_noise(4, 2, 7).shape == (4, 2)


def test_mahalanobis_matches_closed_form(module_and_data):
    module, X, kwargs = module_and_data
    mean = np.array([0.2, -0.1, 0.0])
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 0.5]])
    diff = latent_means(module, X, **kwargs) - mean
    expected = -np.sqrt(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff))
    scores = latent_mahalanobis_scores(module, X, mean=mean, covariance=cov, **kwargs)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "Z",
    [
        np.zeros((10, 3)),
        np.ones((1, 3)),
        np.c_[np.random.RandomState(0).rand(50, 2), np.zeros(50)],
    ],
    ids=["all_collapsed", "one_code", "one_dim_collapsed"],
)
def test_latent_gaussian_is_invertible_for_degenerate_codes(Z):
    mean, cov = latent_gaussian(Z)
    np.testing.assert_allclose(mean, Z.mean(axis=0))
    assert np.all(np.linalg.eigvalsh(cov) >= 1e-6 * (1 - 1e-9))
    assert np.all(np.isfinite(np.linalg.inv(cov)))


def test_latent_gaussian_approaches_empirical_covariance():
    rng = np.random.RandomState(0)
    true_cov = np.array([[1.0, 0.5], [0.5, 2.0]])
    Z = rng.multivariate_normal([1.0, -1.0], true_cov, size=20000)
    mean, cov = latent_gaussian(Z)
    np.testing.assert_allclose(mean, [1.0, -1.0], atol=0.05)
    np.testing.assert_allclose(cov, true_cov, atol=0.05)


# -- bits per dimension ------------------------------------------------------


def test_bits_per_dim_of_uniform_density_is_eight_bits():
    """Uniform on [0, 1]^D: log p = 0, each of 256 cells has mass 1/256."""
    assert bits_per_dim(0.0, 784, discretization=256) == 8.0
    assert bits_per_dim(0.0, 784) == 0.0


@pytest.mark.parametrize("n_dims", [1, 64, 3072])
def test_bits_per_dim_closed_forms(n_dims):
    # A density of 2 per dimension (uniform on [0, 1/2]^D): -1 bit, or 7 bits
    # once the 256 levels are counted.
    log_p = n_dims * math.log(2)
    assert bits_per_dim(log_p, n_dims) == pytest.approx(-1.0)
    assert bits_per_dim(log_p, n_dims, discretization=256) == pytest.approx(7.0)
    # Standard normal at its mode: 0.5 * log2(2 pi) bits per dimension.
    log_p = -0.5 * n_dims * math.log(2 * math.pi)
    assert bits_per_dim(log_p, n_dims) == pytest.approx(0.5 * math.log2(2 * math.pi))
    # Binary data (2 levels), uniform density: 1 bit per dimension.
    assert bits_per_dim(0.0, n_dims, discretization=2) == pytest.approx(1.0)


def test_bits_per_dim_matches_discrete_probability_of_binned_density():
    """BPD of a piecewise-constant density equals -log2 P(cell) / D exactly."""
    rng = np.random.RandomState(0)
    cell_probs = rng.dirichlet(np.ones(256), size=3)  # per dimension, D = 3
    pixels = np.array([10, 200, 255])
    log_prob_discrete = np.log(cell_probs[np.arange(3), pixels]).sum()
    # The density on [0, 1] that is constant on each cell of width 1/256.
    log_density = np.log(256 * cell_probs[np.arange(3), pixels]).sum()
    assert bits_per_dim(log_density, 3, discretization=256) == pytest.approx(
        -log_prob_discrete / (3 * math.log(2))
    )


def test_bits_per_dim_keeps_array_shape():
    bpd = bits_per_dim(np.array([[0.0, -10.0]]), 5, discretization=256)
    assert bpd.shape == (1, 2)
    assert bpd[0, 1] == pytest.approx(8 + 10 / (5 * math.log(2)))


# -- the detector's score_type -----------------------------------------------


class _DetectorsByScoreType(dict):
    """The catalogue's blob detectors of each score type, same training.

    They train on every row (``calibration_fraction=None``): these tests are
    about the scores; held-out calibration is tested in test_outlier.py.
    """

    def __init__(self, fitted_models):
        super().__init__()
        self.fitted_models = fitted_models

    def __missing__(self, score_type):
        return self.fitted_models(
            VAEOutlierDetector,
            "blobs",
            **TINY_MLP,
            score_type=score_type,
            n_samples=8,
            calibration_fraction=None,
            random_state=0,
        )


@pytest.fixture(scope="module")
def blob_detectors(fitted_models):
    """Detectors by score type, same training (random_state=0); read-only."""
    return _DetectorsByScoreType(fitted_models)


@pytest.mark.parametrize("score_type", FLAT_SCORE_TYPES)
def test_planted_outliers_score_lowest(score_type, blob_detectors, blobs_with_outliers):
    _, X_test = blobs_with_outliers
    det = blob_detectors[score_type]
    scores = det.score_samples(X_test)
    assert scores.shape == (len(X_test),)
    assert np.all(np.isfinite(scores))
    assert np.max(scores[-4:]) < np.min(scores[:-4])
    assert np.all(det.predict(X_test[-4:]) == -1)
    assert np.mean(det.predict(X_test[:-4]) == 1) >= 0.9


@pytest.mark.parametrize("score_type", FLAT_SCORE_TYPES)
def test_detector_scores_are_deterministic_and_batch_independent(
    score_type, blob_detectors, blobs_with_outliers
):
    X_train, X_test = blobs_with_outliers
    det = blob_detectors[score_type]
    X = np.concatenate([X_train, X_test])
    full = det.score_samples(X)
    np.testing.assert_array_equal(det.score_samples(X), full)
    rows = np.r_[len(X) - 1, 5, 211]
    np.testing.assert_array_equal(det.score_samples(X[rows]), full[rows])
    for i in rows:
        np.testing.assert_array_equal(det.score_samples(X[i : i + 1]), full[[i]])


@pytest.mark.parametrize("score_type", FLAT_SCORE_TYPES)
def test_offset_comes_from_training_scores(score_type, blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(
        **{**TINY_MLP, "max_epochs": 3},
        score_type=score_type,
        n_samples=4,
        contamination=0.1,
        calibration_fraction=None,
        random_state=0,
    ).fit(X_train)
    train_scores = det.score_samples(X_train)
    assert det.offset_ == np.percentile(train_scores, 10.0)
    np.testing.assert_array_equal(det.calibration_scores_, np.sort(train_scores))
    np.testing.assert_array_equal(det.predict(X_train), det.fit_predict(X_train))


@pytest.mark.parametrize("score_type", FLAT_SCORE_TYPES)
def test_offset_comes_from_held_out_scores(score_type, blobs_with_outliers):
    """The threshold is the conformal one of the held-out rows' scores.

    Their scores are computed as score_samples computes new samples' scores
    (bit for bit), from statistics of the training rows alone.
    """
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(
        **{**TINY_MLP, "max_epochs": 3},
        score_type=score_type,
        n_samples=4,
        contamination=0.1,
        random_state=0,
    ).fit(X_train)
    held_out = det.score_samples(X_train[det.calibration_indices_])
    assert len(held_out) == 40  # ceil(0.2 * 200)
    np.testing.assert_array_equal(det.calibration_scores_, np.sort(held_out))
    # k = floor(0.1 * 41) = 4: below the 4th smallest, 3 of the 40 rows.
    assert det.offset_ == np.sort(held_out)[3]
    assert np.sum(det.predict(X_train[det.calibration_indices_]) == -1) == 3
    np.testing.assert_array_equal(det.predict(X_train), det.fit_predict(X_train))


def test_score_is_mean_elbo_for_every_score_type(blob_detectors, blobs_with_outliers):
    _, X_test = blobs_with_outliers
    elbo = blob_detectors["elbo"].score_samples(X_test)
    for score_type in FLAT_SCORE_TYPES:
        det = blob_detectors[score_type]
        assert det.score(X_test) == pytest.approx(np.mean(elbo), rel=1e-12), score_type


def test_score_types_share_the_trained_model(blob_detectors, blobs_with_outliers):
    """score_type changes the score, never the training."""
    _, X_test = blobs_with_outliers
    module = blob_detectors["elbo"].net_.module_
    for det in [blob_detectors[score_type] for score_type in FLAT_SCORE_TYPES]:
        for a, b in zip(
            module.parameters(), det.net_.module_.parameters(), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_elbo_mahalanobis_is_sum_of_standardised_components(
    blob_detectors, blobs_with_outliers
):
    """Each component is standardised by its own training mean and std."""
    X_train, X_test = blobs_with_outliers
    det = blob_detectors["elbo_mahalanobis"]
    expected = np.zeros(len(X_test))
    for name in ("elbo", "latent_mahalanobis"):
        other = blob_detectors[name]
        train, test = other.score_samples(X_train), other.score_samples(X_test)
        expected += (test - train.mean()) / train.std()
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-10)


def test_latent_statistics_describe_training_codes(blob_detectors, blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = blob_detectors["latent_mahalanobis"]
    codes = latent_means(det.net_.module_, X_train, input_shape=det.input_shape_)
    term = det.score_term_
    np.testing.assert_allclose(term.mean_, codes.mean(axis=0))
    assert term.covariance_.shape == (TINY_MLP["latent_dim"],) * 2
    np.testing.assert_allclose(
        term.covariance_, np.cov(codes.T, bias=True), rtol=0.3, atol=1e-3
    )


@pytest.mark.parametrize("score_type", MONTE_CARLO)
def test_monte_carlo_scores_follow_random_state_and_n_samples(
    score_type, blobs_with_outliers
):
    X_train, X_test = blobs_with_outliers
    params = {**TINY_MLP, "max_epochs": 2, "score_type": score_type, "n_samples": 4}
    first = VAEOutlierDetector(**params, random_state=5).fit(X_train)
    second = VAEOutlierDetector(**params, random_state=5).fit(X_train)
    np.testing.assert_array_equal(
        first.score_samples(X_test), second.score_samples(X_test)
    )
    restored = pickle.loads(pickle.dumps(first))
    np.testing.assert_array_equal(
        restored.score_samples(X_test), first.score_samples(X_test)
    )
    more_draws = VAEOutlierDetector(**{**params, "n_samples": 9}, random_state=5)
    more_draws.fit(X_train)
    assert not np.array_equal(
        more_draws.score_samples(X_test), first.score_samples(X_test)
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "score_type, floor",
    [
        ("elbo", 0.95),
        ("iwae", 0.95),
        ("reconstruction", 0.95),
        ("reconstruction_probability", 0.95),
        ("latent_mahalanobis", 0.8),
    ],
)
def test_conv_detector_separates_digits_with_each_score(
    score_type, floor, digits_one_class
):
    X_train, X_test, is_inlier = digits_one_class
    det = VAEOutlierDetector(
        **TINY_CONV, score_type=score_type, n_samples=4, random_state=0
    ).fit(X_train)
    scores = det.score_samples(X_test)
    assert np.all(np.isfinite(scores))
    assert roc_auc_score(is_inlier, scores) > floor


@pytest.mark.parametrize(
    "params", [{"score_type": "likelihood"}, {"n_samples": 0}, {"n_samples": 1.5}]
)
def test_invalid_score_parameters_raise(params):
    with pytest.raises(
        InvalidParameterError, match=f"The '{next(iter(params))}' parameter"
    ):
        VAEOutlierDetector(**params).fit(np.zeros((4, 3)))


@pytest.mark.parametrize(
    "input_shape", [(5,), (6,), (7,), (13,), (1, 8, 8), (2, 7, 13)]
)
def test_outputs_are_bit_identical_whatever_the_batch(input_shape):
    """Row position and batch size must not change any bit of a score.

    Non-regression: with 6 or 7 features the first dense layer rounded rows
    differently depending on their memory alignment inside the batch.
    """
    from skvae.nn import make_vae
    from skvae.scoring import elbo_scores, latent_means

    torch.manual_seed(0)
    module = make_vae(input_shape, 2, hidden_dims=(8,))
    X = np.random.RandomState(0).rand(300, int(np.prod(input_shape))).astype(np.float32)
    for fn in (elbo_scores, latent_means):
        full = fn(module, X, input_shape=input_shape)
        np.testing.assert_array_equal(
            full[5:200], fn(module, X[5:200], input_shape=input_shape)
        )
        rows = np.arange(0, 300, 37)
        one_by_one = [fn(module, X[i : i + 1], input_shape=input_shape) for i in rows]
        np.testing.assert_array_equal(full[rows], np.concatenate(one_by_one))


@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("input_shape", [(13,), (1, 8, 8)])
def test_passes_on_several_threads_give_the_one_thread_bits(input_shape, n_threads):
    """Passes run side by side, one torch thread each, stored in row order.

    The thread count torch had is restored, also when a pass raises.
    """
    from skvae.scoring import elbo_scores, map_batches, per_sample_outputs

    torch.manual_seed(0)
    module = make_vae(input_shape, 2, hidden_dims=(8,))
    X = np.random.RandomState(0).rand(203, int(np.prod(input_shape))).astype(np.float32)
    kwargs = {"input_shape": input_shape, "batch_size": 8}
    expected = elbo_scores(module, X, **kwargs)
    expected_outputs = per_sample_outputs(module, X, **kwargs)
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        np.testing.assert_array_equal(elbo_scores(module, X, **kwargs), expected)
        outputs = per_sample_outputs(module, X, **kwargs)
        assert torch.get_num_threads() == n_threads

        def fail_on_a_later_pass(module, x):
            if x.flatten(1)[0, 0].item() == float(X[96, 0]):
                raise ValueError("pass failed")
            return module.encode(x)[0]

        with pytest.raises(ValueError, match="pass failed"):
            map_batches(fail_on_a_later_pass, module, X, **kwargs)
        assert torch.get_num_threads() == n_threads
    finally:
        torch.set_num_threads(threads)
    assert outputs.keys() == expected_outputs.keys()
    for key, value in expected_outputs.items():
        np.testing.assert_array_equal(outputs[key], value)


def test_overlapping_callers_restore_the_thread_count_once():
    """The first caller's count comes back when the last one leaves."""
    from skvae.utils._torch import one_torch_thread

    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with one_torch_thread() as outer:
            assert (outer, torch.get_num_threads()) == (3, 1)
            with one_torch_thread() as inner:
                assert inner == 3
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("input_shape", [(6,), (1, 8, 8)])
def test_read_only_input_scores_silently_and_equally(input_shape):
    """A read-only array (e.g. ``np.load(..., mmap_mode="r")``) is only read."""
    import warnings

    torch.manual_seed(0)
    module = make_vae(input_shape, 2, hidden_dims=(8,))
    X = np.random.RandomState(0).rand(20, int(np.prod(input_shape))).astype(np.float32)
    X_read_only = X.copy()
    X_read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = elbo_scores(module, X_read_only, input_shape=input_shape)
    np.testing.assert_array_equal(
        scores, elbo_scores(module, X, input_shape=input_shape)
    )


# -- the scoring copy ---------------------------------------------------------


def test_conv_vae_scores_through_inference_convolutions(fitted_conv_detector, digits):
    from skvae.nn._inference import InferenceConvolution
    from skvae.scoring._copies import pass_granularity, scoring_copy

    images, _ = digits
    module = fitted_conv_detector.net_.module_
    copy = scoring_copy(module)
    assert copy is not module and scoring_copy(module) is copy
    wrapped = [m for m in copy.modules() if isinstance(m, InferenceConvolution)]
    conv_types = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    plain = [m for m in module.modules() if isinstance(m, conv_types)]
    assert len(wrapped) == len(plain) > 0
    assert pass_granularity(copy) == 1 and pass_granularity(module) == 4
    # The fitted module keeps its layout and layers: it trains, pickles and
    # exports as fitted.
    assert all(p.is_contiguous() for p in module.parameters())
    assert not any(isinstance(m, InferenceConvolution) for m in module.modules())
    X = images[:40].astype(np.float32)
    in_copy = elbo_scores(copy, X, input_shape=(1, 8, 8), granularity=1)
    in_module = elbo_scores(module, X, input_shape=(1, 8, 8))
    np.testing.assert_allclose(in_copy, in_module, rtol=1e-6)


def test_scoring_copy_is_renewed_when_the_module_changes(fitted_conv_detector):
    from skvae.scoring._copies import scoring_copy

    module = deepcopy(fitted_conv_detector.net_.module_)
    first = scoring_copy(module)
    module.load_state_dict(module.state_dict())  # copies into the same tensors
    second = scoring_copy(module)
    assert second is not first


@pytest.mark.parametrize(
    "module",
    [
        make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4, 8)),
        make_vae((10,), latent_dim=2, hidden_dims=(8,)),
    ],
    ids=["conv", "mlp"],
)
def test_copy_check_sees_every_parameter_and_buffer(module):
    from skvae.scoring._copies import _state, scoring_copy

    expected = {id(t) for t in (*module.parameters(), *module.buffers())}
    assert {id(t) for t in _state(module)} == expected
    # A buffer changed in place (a learned decoder variance, a loaded
    # state) renews the copy, as a parameter does.
    buffers = list(module.buffers())
    tensor = buffers[0] if buffers else next(module.parameters())
    first = scoring_copy(module)
    with torch.no_grad():
        tensor.add_(0)
    assert (scoring_copy(module) is not first) == (first is not module)


def test_modules_without_convolutions_score_as_they_are():
    from skvae.scoring._copies import pass_granularity, scoring_copy

    module = make_vae((10,), latent_dim=2, hidden_dims=(8,))
    assert scoring_copy(module) is module
    assert pass_granularity(module) == 1  # dense layers multiply row by row


@pytest.mark.parametrize(
    "module",
    [
        make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4, 8), architecture="grad2vae"),
        make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4, 8), batch_norm=True),
    ],
    ids=["grad2vae", "batch-norm"],
)
def test_modules_with_other_kernels_keep_padded_passes(module):
    """Grad2VAE convolves on its own; other layers are not known to keep bits."""
    from skvae.scoring._copies import pass_granularity, scoring_copy

    assert pass_granularity(scoring_copy(module)) == 4


def test_passes_with_gradients_stay_padded(fitted_conv_detector, digits):
    """With gradients the convolutions run PyTorch's kernels: lone rows pad."""
    from skvae.scoring._copies import pass_granularity, scoring_copy

    images, _ = digits
    copy = scoring_copy(fitted_conv_detector.net_.module_)
    assert pass_granularity(copy) == 1

    def input_gradient(module, x):
        x = x.clone().requires_grad_(True)
        module.elbo_terms(x, module(x))[0].sum().backward()
        return x.grad.flatten(start_dim=1)

    X = images[:9].reshape(9, -1).astype(np.float32)
    kwargs = {"input_shape": (1, 8, 8), "gradients": True, "granularity": 1}
    together = map_batches(input_gradient, copy, X, **kwargs)
    for i in (0, 4, 8):
        alone = map_batches(input_gradient, copy, X[i : i + 1], **kwargs)
        np.testing.assert_array_equal(alone[0], together[i])
