import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.stats import betabinom
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError

from skvae import TrainingInterruptedWarning, VAEOutlierDetector
from skvae.conformal import benjamini_hochberg, conformal_pvalues, conformal_threshold
from skvae.scoring import elbo_scores

from .conftest import TINY_CONV, TINY_MLP, training_rows

pytestmark = pytest.mark.compat


def test_planted_outliers_score_lowest(blobs_with_outliers, fitted_blob_detector):
    X_train, X_test = blobs_with_outliers
    det = fitted_blob_detector
    scores = det.score_samples(X_test)
    assert np.max(scores[-4:]) < np.min(scores[:-4])
    assert np.all(det.predict(X_test[-4:]) == -1)
    assert np.mean(det.predict(X_test[:-4]) == 1) >= 0.9


def test_conv_detector_separates_digits(fitted_conv_detector, digits_one_class):
    _, X_test, is_inlier = digits_one_class
    assert fitted_conv_detector.input_shape_ == (1, 8, 8)
    auc = roc_auc_score(is_inlier, fitted_conv_detector.score_samples(X_test))
    assert auc > 0.9


def test_decision_function_is_shifted_score(fitted_conv_detector, digits_one_class):
    _, X_test, _ = digits_one_class
    det = fitted_conv_detector
    scores = det.score_samples(X_test)
    np.testing.assert_allclose(det.decision_function(X_test), scores - det.offset_)
    np.testing.assert_array_equal(
        det.predict(X_test), np.where(scores < det.offset_, -1, 1)
    )
    # score() is the mean ELBO whatever score_type (the default combines the
    # ELBO with the latent Mahalanobis distance).
    rows = np.asarray(X_test, dtype=np.float32).reshape(len(X_test), -1)
    elbo = elbo_scores(det.net_.module_, rows, input_shape=det.input_shape_)
    assert det.score(X_test) == pytest.approx(np.mean(elbo))


@pytest.mark.parametrize("contamination", [0.05, 0.2])
def test_without_calibration_contamination_is_training_share(
    contamination, blobs_with_outliers
):
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(
        **TINY_MLP,
        contamination=contamination,
        calibration_fraction=None,
        random_state=0,
    )
    labels = det.fit_predict(X_train)
    assert np.mean(labels == -1) == pytest.approx(contamination, abs=0.01)
    np.testing.assert_array_equal(labels, det.predict(X_train))
    assert len(det.calibration_indices_) == 0
    with pytest.raises(NotFittedError, match="calibration_fraction=0.2"):
        det.score_pvalues(X_train)


@pytest.mark.parametrize("contamination", [0.05, 0.2])
def test_contamination_is_share_of_held_out_rows_flagged(
    contamination, blobs_with_outliers
):
    """Held-out rows stand in for new normal data: k - 1 of them are flagged."""
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(**TINY_MLP, contamination=contamination, random_state=0)
    det.fit(X_train)
    held_out = X_train[det.calibration_indices_]
    n = len(held_out)
    k = int(np.floor(contamination * (n + 1) + 1e-9))
    assert np.sum(det.predict(held_out) == -1) == k - 1
    assert np.mean(det.score_pvalues(held_out) <= contamination) == (k - 1) / n
    # The training rows are flagged about as often: the neighbour part leaves
    # each row out of its own neighbours, and the ELBO fits them more tightly.
    flagged = np.mean(det.predict(training_rows(det, X_train)) == -1)
    assert flagged <= contamination + 0.05


def test_auto_contamination_is_lower_tukey_fence_of_held_out_scores(
    blobs_with_outliers, fitted_blob_detector
):
    X_train, _ = blobs_with_outliers
    det = fitted_blob_detector
    held_out = det.score_samples(X_train[det.calibration_indices_])
    q1, q3 = np.percentile(held_out, [25, 75])
    assert det.offset_ == pytest.approx(q1 - 1.5 * (q3 - q1))


def test_calibration_rows_are_a_seeded_random_fifth(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    params = {**TINY_MLP, "max_epochs": 1}
    first = VAEOutlierDetector(**params, random_state=0).fit(X_train)
    again = VAEOutlierDetector(**params, random_state=0).fit(X_train)
    other = VAEOutlierDetector(**params, random_state=1).fit(X_train)
    indices = first.calibration_indices_
    assert len(indices) == 40 and np.all(np.diff(indices) > 0)
    np.testing.assert_array_equal(indices, again.calibration_indices_)
    assert not np.array_equal(indices, other.calibration_indices_)
    # Spread over the data, not its tail.
    assert indices.min() < 40 and indices.max() >= 160
    half = VAEOutlierDetector(**params, calibration_fraction=0.5, random_state=0)
    assert len(half.fit(X_train).calibration_indices_) == 100


def test_tiny_data_is_not_split_and_says_so():
    X = np.random.RandomState(0).normal(size=(2, 3))
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 1})
    with pytest.warns(UserWarning, match="too few to hold out"):
        det.fit(X)
    assert len(det.calibration_indices_) == 0
    assert det.predict(X).shape == (2,)


def test_pvalues_and_fdr_labels_follow_the_held_out_scores(
    blobs_with_outliers, fitted_blob_detector
):
    X_train, X_test = blobs_with_outliers
    det = fitted_blob_detector
    pvalues = det.score_pvalues(X_test)
    np.testing.assert_array_equal(
        pvalues,
        conformal_pvalues(det.calibration_scores_, det.score_samples(X_test)),
    )
    # The planted outliers score below every held-out row: p = 1 / 41.
    np.testing.assert_array_equal(pvalues[-4:], 1 / 41)
    assert np.all(pvalues > 0) and np.all(pvalues <= 1)
    labels = det.predict_with_fdr(X_test, alpha=0.2)
    expected = np.where(benjamini_hochberg(pvalues, 0.2), -1, 1)
    np.testing.assert_array_equal(labels, expected)
    assert np.all(labels[-4:] == -1)


@pytest.mark.parametrize(
    "reshape, params",
    [
        (lambda X: X, {}),
        (lambda X: X[:, None], {}),
        (lambda X: X.reshape(len(X), -1), {}),
        (lambda X: X.reshape(len(X), -1), {"image_shape": (8, 8)}),
        (lambda X: X.reshape(len(X), -1), {"image_shape": (1, 8, 8)}),
    ],
    ids=["n_h_w", "n_c_h_w", "flat_square", "flat_hw", "flat_chw"],
)
def test_image_inputs_select_conv(reshape, params, digits):
    images, _ = digits
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, **params).fit(
        reshape(images[:64])
    )
    assert det.input_shape_ == (1, 8, 8)
    assert det.n_features_in_ == 64
    assert det.score_samples(reshape(images[64:70])).shape == (6,)


def test_flat_and_image_inputs_score_alike(fitted_conv_detector, digits):
    images, _ = digits
    flat = fitted_conv_detector.score_samples(images[:10].reshape(10, -1))
    np.testing.assert_array_equal(flat, fitted_conv_detector.score_samples(images[:10]))


@pytest.mark.parametrize(
    "n_features, params, input_shape",
    [
        (10, {}, (10,)),
        (36, {}, (36,)),  # square, but a side below 8: tabular
        (64, {"architecture": "mlp"}, (64,)),
        (12, {"image_shape": (3, 2, 2)}, (3, 2, 2)),
        (20, {"image_shape": (4, 5)}, (1, 4, 5)),
    ],
)
def test_input_shape_resolution(n_features, params, input_shape):
    X = np.random.RandomState(0).rand(20, n_features)
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 1}, **params).fit(X)
    assert det.input_shape_ == input_shape


def _shuffled_pixels(images):
    """Flat digits whose columns are shuffled: 64 features, no image left."""
    flat = images.reshape(len(images), -1)
    return flat[:, np.random.RandomState(0).permutation(flat.shape[1])]


@pytest.mark.parametrize(
    "make_X, params, input_shape",
    [
        (lambda images: images.reshape(len(images), -1), {}, (1, 8, 8)),
        (_shuffled_pixels, {}, (64,)),
        # Asked for, a square number of features is an image whatever it holds.
        (_shuffled_pixels, {"architecture": "conv"}, (1, 8, 8)),
        (_shuffled_pixels, {"image_shape": (8, 8)}, (1, 8, 8)),
        (lambda images: _shuffled_pixels(images)[:5], {}, (1, 8, 8)),  # too few to tell
    ],
    ids=["flat images", "shuffled", "conv asked", "image_shape", "five rows"],
)
def test_square_feature_counts_are_images_only_when_they_look_like_images(
    make_X, params, input_shape, digits
):
    images, _ = digits
    params = {**TINY_CONV, "max_epochs": 1, "score_type": "elbo", **params}
    det = VAEOutlierDetector(**params).fit(make_X(images[:200]))
    assert det.input_shape_ == input_shape


@pytest.mark.parametrize("shuffle", [False, True], ids=["images", "shuffled"])
def test_a_large_memmap_is_judged_by_its_rows_not_its_first_one(
    shuffle, digits, tmp_path
):
    images, _ = digits
    flat = images.reshape(len(images), -1)
    rows = np.tile(_shuffled_pixels(images) if shuffle else flat, (3, 1))  # 5,391
    mapped = np.lib.format.open_memmap(
        tmp_path / "rows.npy", mode="w+", dtype=np.float32, shape=rows.shape
    )
    mapped[:] = rows
    params = {**TINY_CONV, "max_epochs": 1, "score_type": "elbo"}
    det = VAEOutlierDetector(**params).fit(mapped)
    assert det.input_shape_ == ((64,) if shuffle else (1, 8, 8))


@pytest.mark.parametrize("image_shape", [(1, 28, 28), (3, 32, 32), (1, 32, 32)])
def test_conv_detector_handles_common_image_sizes(image_shape):
    X = np.random.RandomState(0).rand(8, *image_shape).astype(np.float32)
    det = VAEOutlierDetector(hidden_dims=(4, 8), latent_dim=2, max_epochs=1).fit(X)
    assert det.input_shape_ == image_shape
    assert np.all(np.isfinite(det.score_samples(X)))


def test_uint8_input_is_scaled_by_255(digits):
    images, _ = digits
    as_uint8 = np.round(images[:64] * 255).astype(np.uint8)
    params = {**TINY_CONV, "max_epochs": 2, "random_state": 0}
    det_uint8 = VAEOutlierDetector(**params).fit(as_uint8)
    det_float = VAEOutlierDetector(**params).fit(as_uint8 / np.float32(255))
    np.testing.assert_allclose(
        det_uint8.score_samples(as_uint8),
        det_float.score_samples(as_uint8 / 255.0),
        rtol=1e-5,
    )


def test_same_random_state_gives_identical_model(blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    params = {**TINY_MLP, "max_epochs": 5, "random_state": 7}
    first = VAEOutlierDetector(**params).fit(X_train).score_samples(X_test)
    second = VAEOutlierDetector(**params).fit(X_train).score_samples(X_test)
    np.testing.assert_array_equal(first, second)
    other = VAEOutlierDetector(**{**params, "random_state": 8}).fit(X_train)
    assert not np.array_equal(first, other.score_samples(X_test))


def test_fit_leaves_global_torch_rng_untouched(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 1}, random_state=0).fit(X_train)
    torch.testing.assert_close(torch.rand(3), expected)


def test_scores_do_not_depend_on_batch_composition(fitted_conv_detector, digits):
    images, _ = digits
    det = fitted_conv_detector
    together = det.score_samples(images[:300])
    one_by_one = np.concatenate(
        [det.score_samples(images[i : i + 1]) for i in range(0, 300, 37)]
    )
    np.testing.assert_array_equal(together[::37], one_by_one)
    np.testing.assert_array_equal(det.score_samples(images[:300]), together)


@pytest.mark.parametrize("score_type", ["elbo", "iwae", "latent_knn"])
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (64,)], ids=["images", "rows"])
def test_a_lone_row_scores_as_it_does_among_others(score_type, input_shape, digits):
    """Lone rows run as passes of one row (no padding): the same bits."""
    images, _ = digits
    X = images[:200].astype(np.float32).reshape(200, *input_shape[-2:])
    settings = TINY_CONV if len(input_shape) == 3 else TINY_MLP
    det = VAEOutlierDetector(
        **{**settings, "max_epochs": 2},
        score_type=score_type,
        transformations=None,
        random_state=0,
    ).fit(X[:120])
    together = det.score_samples(X[120:])
    for start, stop in [(0, 1), (7, 8), (79, 80), (0, 2), (3, 6), (10, 15)]:
        np.testing.assert_array_equal(
            det.score_samples(X[120 + start : 120 + stop]), together[start:stop]
        )


@pytest.mark.parametrize("kind", ["images", "rows"])
def test_scoring_in_chunks_keeps_every_bit(
    kind, monkeypatch, digits, blobs_with_outliers, fitted_blob_detector
):
    """Rows are scored a chunk at a time (bounded memory); the bits do not move."""
    import skvae._outlier

    if kind == "images":
        images, _ = digits
        X_train, X = images[:120], images[120:420]
        det = VAEOutlierDetector(**TINY_CONV, random_state=0).fit(X_train)
    else:
        X_train, X = blobs_with_outliers
        det = fitted_blob_detector
    whole_scores, whole_parts = det.score_samples(X), det.score_parts(X)
    monkeypatch.setattr(skvae._outlier, "SCORE_CHUNK_ROWS", 7)
    np.testing.assert_array_equal(det.score_samples(X), whole_scores)
    chunked_parts = det.score_parts(X)
    assert list(chunked_parts) == list(whole_parts)
    for name, part in whole_parts.items():
        np.testing.assert_array_equal(chunked_parts[name], part)


@pytest.mark.parametrize("calibration_fraction", [0.2, None])
def test_score_terms_fit_on_a_bounded_random_subset(
    calibration_fraction, monkeypatch, blobs_with_outliers
):
    """Above TERM_FIT_MAX_ROWS, the terms fit on a seeded subset of that many."""
    import skvae._outlier

    monkeypatch.setattr(skvae._outlier, "TERM_FIT_MAX_ROWS", 50)
    X_train, X = blobs_with_outliers
    params = dict(
        TINY_MLP,
        score_type=("elbo", "latent_knn"),
        calibration_fraction=calibration_fraction,
        random_state=0,
    )
    fits = [VAEOutlierDetector(**params).fit(X_train) for _ in range(2)]
    n_fit = len(X_train) - len(fits[0].calibration_indices_)
    assert n_fit > 50
    index = fits[0].score_term_.terms_[1][1].index_
    assert len(index.points_) == 50
    if calibration_fraction is None:  # the threshold comes from the subset
        assert len(fits[0].calibration_scores_) == 50
    else:
        assert len(fits[0].calibration_scores_) == len(fits[0].calibration_indices_)
    np.testing.assert_array_equal(fits[0].score_samples(X), fits[1].score_samples(X))


@pytest.mark.parametrize("copy", [clone, lambda est: pickle.loads(pickle.dumps(est))])
def test_clone_and_pickle_keep_predictions(
    copy, fitted_conv_detector, digits_one_class
):
    X_train, X_test, _ = digits_one_class
    det = fitted_conv_detector
    copied = copy(det)
    if copy is clone:
        assert not hasattr(copied, "net_")
        copied.fit(X_train)
    np.testing.assert_array_equal(copied.predict(X_test), det.predict(X_test))
    np.testing.assert_array_equal(
        copied.score_samples(X_test), det.score_samples(X_test)
    )


def test_grid_search_without_labels_picks_best_mean_elbo(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    search = GridSearchCV(
        VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 10}, random_state=0),
        {"latent_dim": [1, 3]},
        cv=2,
    ).fit(X_train)
    means = search.cv_results_["mean_test_score"]
    assert search.best_params_["latent_dim"] == [1, 3][int(np.argmax(means))]
    assert np.all(np.isfinite(means))
    assert search.best_estimator_.latent_dim == search.best_params_["latent_dim"]


def test_history_records_every_epoch(fitted_conv_detector):
    history = fitted_conv_detector.history_
    assert len(history) == TINY_CONV["max_epochs"]
    assert np.all(np.isfinite(history[:, "train_loss"]))


def test_early_stopping_uses_validation_loss(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(
        **{**TINY_MLP, "max_epochs": 200},
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.5,
        random_state=0,
    )
    # skorch stops early with KeyboardInterrupt: no Ctrl-C warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        det.fit(X_train)
    history = det.history_
    assert "valid_loss" in history[-1]
    assert len(history) < 200
    assert not det.training_interrupted_


@pytest.mark.parametrize("verbose, printed", [(0, False), (1, True)])
def test_verbose_prints_epoch_table(verbose, printed, blobs_with_outliers, capsys):
    X_train, _ = blobs_with_outliers
    VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 2}, verbose=verbose).fit(X_train)
    out = capsys.readouterr().out
    assert ("train_loss" in out) is printed


def test_bernoulli_likelihood_on_unit_interval(fitted_conv_detector, digits_one_class):
    X_train, X_test, is_inlier = digits_one_class
    det = VAEOutlierDetector(**TINY_CONV, likelihood="bernoulli", random_state=0)
    det.fit(X_train)
    assert roc_auc_score(is_inlier, det.score_samples(X_test)) > 0.9


def test_learned_variance_shrinks_below_data_variance(
    fitted_conv_detector, digits_one_class
):
    X_train, _, _ = digits_one_class
    learned = fitted_conv_detector.net_.module_.likelihood.variance
    assert 0 < learned < np.var(X_train)


@pytest.mark.parametrize("params", [TINY_CONV, TINY_MLP])
def test_per_feature_variance_detector(params, digits_one_class, blobs_with_outliers):
    """decoder_var="learned_per_feature" learns one variance per input feature."""
    if params is TINY_CONV:
        X_train, X_test, is_inlier = digits_one_class
    else:
        X_train, X_test = blobs_with_outliers
        is_inlier = np.r_[np.ones(len(X_test) - 4), np.zeros(4)]
    det = VAEOutlierDetector(
        **params, decoder_var="learned_per_feature", random_state=0
    ).fit(X_train)
    assert det.decoder_var_.shape == det.input_shape_
    assert np.all(det.decoder_var_ >= 1e-3)
    assert roc_auc_score(is_inlier, det.score_samples(X_test)) > 0.9


def test_unfitted_detector_raises():
    with pytest.raises(NotFittedError):
        VAEOutlierDetector().score_samples(np.zeros((2, 3)))


# -- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    "X, error, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError, "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), ValueError, "infinity"),
        (np.zeros(5), ValueError, "Expected 2D array"),
        (np.zeros((0, 3)), ValueError, "0 sample"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, "could not convert"),
        (sp.csr_matrix(np.eye(3)), TypeError, "[Ss]parse"),
        (np.zeros((2, 1, 1, 3, 3)), ValueError, "dim 5"),
    ],
    ids=["nan", "inf", "1d", "empty", "strings", "sparse", "5d"],
)
def test_bad_training_input_raises(X, error, match):
    with pytest.raises(error, match=match):
        VAEOutlierDetector(max_epochs=1).fit(X)


def test_wrong_number_of_features_at_predict(fitted_conv_detector):
    with pytest.raises(
        ValueError, match="has 10 features, but VAEOutlierDetector is expecting 64"
    ):
        fitted_conv_detector.predict(np.zeros((2, 10)))


def test_wrong_image_shape_at_predict(fitted_conv_detector):
    with pytest.raises(
        ValueError, match=r"images of shape \(4, 4, 4\).*fitted on shape \(1, 8, 8\)"
    ):
        fitted_conv_detector.predict(np.zeros((2, 4, 4, 4)))


def test_image_shape_must_match_features():
    with pytest.raises(
        ValueError, match=r"image_shape=\(1, 5, 5\) implies 25 features but X has 64"
    ):
        VAEOutlierDetector(image_shape=(1, 5, 5)).fit(np.zeros((4, 64)))


def test_image_shape_must_have_two_or_three_sides():
    with pytest.raises(ValueError, match="image_shape must be"):
        VAEOutlierDetector(image_shape=(64,)).fit(np.zeros((4, 64)))


def test_conv_architecture_needs_images():
    with pytest.raises(ValueError, match="architecture='conv' needs image input"):
        VAEOutlierDetector(architecture="conv").fit(np.zeros((4, 10)))


@pytest.mark.parametrize("bad_value", [-0.5, 1.5])
def test_bernoulli_rejects_values_outside_unit_interval(
    bad_value, fitted_conv_detector
):
    X = np.full((4, 6), 0.5)
    X[1, 2] = bad_value
    with pytest.raises(
        ValueError, match=r"likelihood='bernoulli' models values in \[0, 1\]"
    ):
        VAEOutlierDetector(likelihood="bernoulli", max_epochs=1).fit(X)


def test_bernoulli_checks_range_at_predict_too(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 1}, likelihood="bernoulli"
    ).fit(X_train)
    with pytest.raises(ValueError, match="ranges from 0 to 2"):
        det.score_samples(X_train * 2)


@pytest.mark.parametrize(
    "params",
    [
        {"latent_dim": 0},
        {"contamination": 0.7},
        {"likelihood": "poisson"},
        {"decoder_var": -1.0},
        {"architecture": "resnet"},
    ],
)
def test_invalid_parameters_raise(params):
    with pytest.raises(
        InvalidParameterError, match=f"The '{next(iter(params))}' parameter"
    ):
        VAEOutlierDetector(**params).fit(np.zeros((4, 3)))


# -- thresholds per score type; fitted state is plain --------------------------


@pytest.fixture(scope="module")
def detector_contamination_10(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(**TINY_CONV, contamination=0.1, random_state=0)
    return det.fit(X_train), X_train


@pytest.mark.parametrize(
    "score_type",
    [
        "elbo",
        "reconstruction",
        "latent_mahalanobis",
        "latent_knn",
        "elbo_mahalanobis",
        "transformation",
        "transformation_knn",
        ("elbo", "transformation"),
    ],
)
def test_contamination_holds_for_every_score_type(score_type, digits_one_class):
    """The threshold is set on the held-out scores of the score fit used.

    Non-regression: the threshold once stayed on another score's scale, so a
    detector scoring "latent_mahalanobis" flagged 94% of its own training
    data instead of 10%.
    """
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 3},
        score_type=score_type,
        contamination=0.1,
        random_state=0,
    ).fit(X_train)
    held_out = X_train[det.calibration_indices_]
    # 24 held-out rows: k = floor(0.1 * 25) = 2, so 1 of them is flagged.
    assert np.sum(det.predict(held_out) == -1) == 1
    scores = det.score_samples(held_out)
    np.testing.assert_array_equal(det.calibration_scores_, np.sort(scores))
    assert det.offset_ == conformal_threshold(scores, 0.1)


def test_changed_score_type_needs_a_refit(detector_contamination_10):
    det, X_train = (
        clone_fitted(detector_contamination_10[0]),
        detector_contamination_10[1],
    )
    offset, calibration = det.offset_, det.calibration_scores_.copy()
    det.set_params(score_type="elbo", contamination=0.3, n_neighbors=2)
    # Fitted state is plain: set_params moves none of it.
    assert det.offset_ == offset
    np.testing.assert_array_equal(det.calibration_scores_, calibration)
    for method in ("score_samples", "decision_function", "predict", "score_parts"):
        with pytest.raises(NotFittedError, match="fitted with score_type='auto'"):
            getattr(det, method)(X_train[:3])
    det.set_params(score_type="auto")
    np.testing.assert_array_equal(
        det.score_samples(X_train[:3]),
        detector_contamination_10[0].score_samples(X_train[:3]),
    )
    elbo = det.set_params(score_type="elbo").fit(X_train)
    assert elbo.transformation_net_ is None
    assert elbo.offset_ != offset


def test_fit_trains_only_what_the_score_needs(digits_one_class):
    X_train, _, _ = digits_one_class
    params = {**TINY_CONV, "max_epochs": 2, "random_state": 0}
    elbo = VAEOutlierDetector(**params, score_type="elbo").fit(X_train)
    assert elbo.transformation_net_ is None and elbo.posterior_draws_ is None
    default = VAEOutlierDetector(**params).fit(X_train)
    assert default.transformation_net_ is not None
    assert default.posterior_draws_ is None
    # The VAE trains alike either way: the score adds networks, never moves it.
    for mine, other in zip(
        elbo.net_.module_.parameters(), default.net_.module_.parameters(), strict=True
    ):
        torch.testing.assert_close(mine, other, rtol=0, atol=0)


def test_monte_carlo_scores_draw_once_at_fit(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 3},
        score_type="iwae",
        n_samples=4,
        contamination=0.2,
        random_state=0,
    ).fit(X_train)
    assert det.posterior_draws_.shape == (4, TINY_CONV["latent_dim"])
    held_out = X_train[det.calibration_indices_]
    # 24 held-out rows: k = floor(0.2 * 25) = 5, so 4 of them are flagged.
    assert np.sum(det.predict(held_out) == -1) == 4
    scores = det.score_samples(held_out)
    # n_samples takes effect at the next fit, like every parameter.
    np.testing.assert_array_equal(
        det.set_params(n_samples=8).score_samples(held_out), scores
    )


def clone_fitted(det):
    """A copy of a fitted detector that a test may change."""
    return pickle.loads(pickle.dumps(det))


# -- parameters whose errors must come from fit --------------------------------


def test_even_kernel_size_fails_in_fit_with_the_fix():
    with pytest.raises(ValueError, match="kernel_size=4 must be odd"):
        VAEOutlierDetector(kernel_size=4, max_epochs=1).fit(np.zeros((4, 8, 8)))


@pytest.mark.parametrize(
    "device, error, match",
    [
        (None, InvalidParameterError, "The 'device' parameter"),
        ("gpu", ValueError, "device='gpu' is not a torch device. Pass 'cpu'"),
    ],
)
def test_bad_device_fails_in_fit_with_what_to_pass(device, error, match):
    with pytest.raises(error, match=match):
        VAEOutlierDetector(device=device, max_epochs=1).fit(np.zeros((4, 3)))


def test_torch_device_objects_are_accepted(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(
        **{**TINY_MLP, "max_epochs": 1}, device=torch.device("cpu")
    )
    assert det.fit(X_train).score_samples(X_train[:2]).shape == (2,)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels_last_images_are_refused_with_the_fix(channels):
    X = np.zeros((4, 32, 32, channels), dtype=np.float32)
    with pytest.raises(ValueError, match=r"channels-last.*np\.moveaxis\(X, -1, 1\)"):
        VAEOutlierDetector(max_epochs=1).fit(X)


def test_channels_first_images_with_narrow_width_need_image_shape():
    """The escape hatch the error names: flat rows with image_shape."""
    X = np.random.RandomState(0).uniform(size=(8, 8, 16, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"image_shape=\(8, 16, 3\)"):
        VAEOutlierDetector(max_epochs=1).fit(X)
    det = VAEOutlierDetector(max_epochs=1, image_shape=(8, 16, 3), hidden_dims=(4,))
    assert det.fit(X.reshape(8, -1)).input_shape_ == (8, 16, 3)


def test_held_out_threshold_keeps_its_promise_on_new_normal_data():
    """Fresh draws from the training distribution are flagged at the promised rate."""
    rng = np.random.RandomState(0)
    scales = np.linspace(0.5, 2.0, 6)
    X_train = (rng.normal(size=(1000, 6)) * scales).astype(np.float32)
    X_new = (rng.normal(size=(20000, 6)) * scales).astype(np.float32)
    detector = VAEOutlierDetector(
        hidden_dims=(32,), latent_dim=4, max_epochs=20, contamination=0.1
    )
    rate = np.mean(
        detector.set_params(random_state=0).fit(X_train).predict(X_new) == -1
    )
    # 200 held-out rows, k = floor(0.1 * 201) = 20: the rate of one fit is
    # Beta(20, 181) distributed, mean 0.0995; realised on 20,000 new rows.
    low, high = betabinom(len(X_new), 20, 181).ppf([0.0005, 0.9995]) / len(X_new)
    assert len(detector.calibration_indices_) == 200
    assert low <= rate <= high
