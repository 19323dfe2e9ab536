import numpy as np
import pytest

pytest.importorskip("pyod")

from pyod.models.base import BaseDetector  # noqa: E402
from pyod.utils.utility import precision_n_scores  # noqa: E402
from scipy.stats import binom  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from skvae import VAEOutlierDetector  # noqa: E402
from skvae.pyod_adapter import PyODVAE  # noqa: E402

from .conftest import TINY_MLP  # noqa: E402

pytestmark = pytest.mark.compat


@pytest.fixture(scope="module")
def fitted(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = PyODVAE(VAEOutlierDetector(**TINY_MLP, random_state=0), contamination=0.1)
    return det.fit(X_train)


def test_is_a_pyod_detector(fitted):
    assert isinstance(fitted, BaseDetector)


def test_scores_are_flipped_sklearn_scores(fitted, blobs_with_outliers):
    _, X_test = blobs_with_outliers
    np.testing.assert_array_equal(
        fitted.decision_function(X_test), -fitted.estimator_.score_samples(X_test)
    )
    scores = fitted.decision_function(X_test)
    assert np.min(scores[-4:]) > np.max(scores[:-4])  # higher = more anomalous


def test_pyod_labels_and_threshold(fitted, blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    assert set(np.unique(fitted.labels_)) == {0, 1}
    np.testing.assert_array_equal(
        fitted.decision_scores_, fitted.decision_function(X_train)
    )
    np.testing.assert_array_equal(fitted.predict(X_train), fitted.labels_)
    assert np.all(fitted.predict(X_test[-4:]) == 1)
    # The threshold is the conformal one of the 40 held-out rows:
    # k = floor(0.1 * 41) = 4, so 3 of them are flagged; training rows less.
    held_out = X_train[fitted.estimator_.calibration_indices_]
    assert fitted.predict(held_out).sum() == 3
    np.testing.assert_array_equal(
        fitted.calibration_scores_, np.sort(fitted.decision_function(held_out))
    )
    assert fitted.labels_.mean() <= 0.1


@pytest.mark.parametrize("method", ["linear", "unify", "conformal"])
def test_outlier_probabilities_come_from_the_calibration_scores(
    method, fitted, blobs_with_outliers
):
    _, X_test = blobs_with_outliers
    proba = fitted.predict_proba(X_test, method=method)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba >= 0) & (proba <= 1))
    # The planted outliers are the likeliest outliers.
    assert proba[-4:, 1].min() >= proba[:-4, 1].max()
    if method == "conformal":
        pvalues = fitted.estimator_.score_pvalues(X_test)
        np.testing.assert_allclose(proba[:, 1], 1 - pvalues)
    if method == "linear":
        calibration = fitted.calibration_scores_
        expected = (fitted.decision_function(X_test) - calibration[0]) / (
            calibration[-1] - calibration[0]
        )
        np.testing.assert_allclose(proba[:, 1], np.clip(expected, 0, 1))


def test_confidence_is_a_probability_of_keeping_the_label(fitted, blobs_with_outliers):
    _, X_test = blobs_with_outliers
    labels, confidence = fitted.predict(X_test, return_confidence=True)
    assert confidence.shape == (len(X_test),)
    assert np.all((confidence >= 0) & (confidence <= 1))
    # Far outliers score above all 40 calibration rows: outlier probability
    # 41/42, and the most confidence ExCeeD gives with 40 scores.
    n = len(fitted.calibration_scores_)
    most = 1 - binom.cdf(n - int(n * 0.1), n, (n + 1) / (n + 2))
    np.testing.assert_allclose(confidence[-4:], most)
    assert most > 0.98 and np.all(labels[-4:] == 1)


def test_without_calibration_it_behaves_as_pyod(blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    estimator = VAEOutlierDetector(
        **TINY_MLP, calibration_fraction=None, random_state=0
    )
    det = PyODVAE(estimator, contamination=0.1).fit(X_train)
    assert det.labels_.mean() == pytest.approx(0.1, abs=0.01)
    for method in ("linear", "unify"):
        np.testing.assert_allclose(
            det.predict_proba(X_test, method=method),
            BaseDetector.predict_proba(det, X_test, method=method),
        )
    np.testing.assert_allclose(
        det.predict_confidence(X_test), BaseDetector.predict_confidence(det, X_test)
    )
    with pytest.raises(NotFittedError, match="calibration_fraction=0.2"):
        det.predict_proba(X_test, method="conformal")
    with pytest.raises(ValueError, match="not a probability conversion"):
        det.predict_proba(X_test, method="sigmoid")


def test_works_with_pyod_utilities(fitted, blobs_with_outliers):
    _, X_test = blobs_with_outliers
    y_outlier = np.r_[np.zeros(20), np.ones(4)]
    scores = fitted.decision_function(X_test)
    assert roc_auc_score(y_outlier, scores) == 1.0
    assert precision_n_scores(y_outlier, scores) == 1.0


def test_nested_params_for_tuning():
    det = PyODVAE(VAEOutlierDetector(latent_dim=3))
    assert det.get_params()["estimator__latent_dim"] == 3
    det.set_params(estimator__latent_dim=5)
    assert det.estimator.latent_dim == 5


def test_invalid_contamination_raises():
    with pytest.raises(ValueError, match="contamination must be in"):
        PyODVAE(contamination=0.9)
