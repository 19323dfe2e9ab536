import numpy as np
import pytest

pytest.importorskip("pyod")

from pyod.models.base import BaseDetector  # noqa: E402
from pyod.utils.utility import precision_n_scores  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from skvae import VAEOutlierDetector  # noqa: E402
from skvae.pyod_adapter import PyODVAE  # noqa: E402

from .conftest import TINY_MLP  # noqa: E402


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
    assert fitted.labels_.mean() == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(
        fitted.decision_scores_, fitted.decision_function(X_train)
    )
    np.testing.assert_array_equal(fitted.predict(X_train), fitted.labels_)
    assert np.all(fitted.predict(X_test[-4:]) == 1)
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)


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
