"""Telling flat images from tables: the neighbouring-pixel correlation test."""

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.datasets import load_digits

from skvae import VAEClassifier, VAETransformer
from skvae._validation import (
    IMAGE_NEIGHBOUR_EXCESS,
    MIN_ROWS_TO_TELL_IMAGES,
    looks_like_images,
    neighbour_correlation_excess,
)


@pytest.fixture(scope="module")
def flat_digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.mark.parametrize("digit", range(10))
def test_each_digit_class_alone_reads_as_images(flat_digits, digit):
    # One class is what a one-class detector trains on: its strokes vary
    # less than all digits', and neighbours must still stand out.
    X, y = flat_digits
    assert neighbour_correlation_excess(X[y == digit], 8) > 2 * IMAGE_NEIGHBOUR_EXCESS


def _shuffled_columns(X, seed=0):
    return X[:, np.random.RandomState(seed).permutation(X.shape[1])]


def _rotated(X, seed=0):
    """An embedding-like view: every feature a mix of all pixels."""
    return (X - X.mean(axis=0)) @ ortho_group.rvs(X.shape[1], random_state=seed)


@pytest.mark.parametrize(
    "make_table",
    [_shuffled_columns, _rotated, lambda X: np.random.RandomState(0).rand(*X.shape)],
    ids=["shuffled columns", "rotated (embedding-like)", "independent noise"],
)
def test_tables_with_a_square_number_of_features_read_as_tables(
    flat_digits, make_table
):
    X, _ = flat_digits
    table = make_table(X)
    assert abs(neighbour_correlation_excess(table, 8)) < IMAGE_NEIGHBOUR_EXCESS / 2
    assert not looks_like_images(table, 8)


def test_correlated_features_without_an_order_read_as_a_table():
    # Every pair alike: neighbours are no more alike than any two.
    rng = np.random.RandomState(0)
    shared = rng.normal(size=(300, 1))
    table = shared + rng.normal(size=(300, 100))
    assert abs(neighbour_correlation_excess(table, 10)) < 0.02


def test_constant_pixels_are_left_out(flat_digits):
    X, _ = flat_digits
    bordered = np.zeros((len(X), 10, 10))
    bordered[:, 1:9, 1:9] = X.reshape(-1, 8, 8)
    # Constant borders neither add pairs nor break the standardisation.
    excess = neighbour_correlation_excess(bordered.reshape(len(X), -1), 10)
    assert np.isfinite(excess) and excess > 2 * IMAGE_NEIGHBOUR_EXCESS


def test_it_cannot_tell_without_varying_features():
    X = np.zeros((50, 64))
    X[:, 0] = np.arange(50)
    assert np.isnan(neighbour_correlation_excess(X, 8))
    assert looks_like_images(X, 8)  # as before the test existed


def test_few_rows_keep_square_counts_as_images():
    table = np.random.RandomState(0).rand(MIN_ROWS_TO_TELL_IMAGES - 1, 64)
    assert looks_like_images(table, 8)
    more = np.random.RandomState(0).rand(200, 64)
    assert not looks_like_images(more, 8)


def test_large_inputs_are_read_by_a_bounded_sample(flat_digits):
    X, _ = flat_digits
    many = np.tile(X, (40, 1))  # 71,880 rows
    # Evenly spaced rows of the whole: the same answer as the digits' own.
    assert neighbour_correlation_excess(many, 8) == pytest.approx(
        neighbour_correlation_excess(X, 8), abs=0.02
    )


@pytest.mark.parametrize("estimator_class", [VAETransformer, VAEClassifier])
@pytest.mark.parametrize("shuffle", [False, True], ids=["images", "shuffled"])
def test_every_estimator_reads_square_counts_alike(
    flat_digits, estimator_class, shuffle
):
    X, y = flat_digits
    X = _shuffled_columns(X[:200]) if shuffle else X[:200]
    estimator = estimator_class(hidden_dims=(4, 8), latent_dim=2, max_epochs=1)
    estimator.fit(X, y[:200])
    assert estimator.input_shape_ == ((64,) if shuffle else (1, 8, 8))
