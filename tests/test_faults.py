"""Faults: fit is all or nothing, whatever stage fails."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae._base import _BaseVAE
from skvae.terms import StandardizedSum

from .conftest import TINY_CONV


class Injected(Exception):
    """The failure a test injects."""


def _fail_at(monkeypatch, stage, error):
    """Make ``fit`` raise ``error`` at ``stage``."""

    def fail(*args, **kwargs):
        raise error

    if stage == "vae training":
        monkeypatch.setattr(_BaseVAE, "_fit_vae", fail)
    elif stage == "classifier training":
        monkeypatch.setattr(VAEOutlierDetector, "_fit_transformation_net", fail)
    elif stage == "score fit":
        monkeypatch.setattr(StandardizedSum, "fit_score", fail)
    elif stage == "calibration":
        monkeypatch.setattr(VAEOutlierDetector, "_score_outputs", fail)
    elif stage == "threshold":
        monkeypatch.setattr(VAEOutlierDetector, "_threshold", fail)


STAGES = [
    "vae training",
    "classifier training",
    "score fit",
    "calibration",
    "threshold",
]
ERRORS = [Injected("boom"), KeyboardInterrupt()]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("error", ERRORS, ids=["exception", "ctrl-c"])
def test_failed_first_fit_leaves_an_unfitted_detector(
    stage, error, monkeypatch, digits_one_class
):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    _fail_at(monkeypatch, stage, error)
    with pytest.raises(type(error)):
        det.fit(X_train)
    with pytest.raises(NotFittedError):
        check_is_fitted(det)
    assert vars(det) == vars(VAEOutlierDetector(**det.get_params()))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("error", ERRORS, ids=["exception", "ctrl-c"])
def test_failed_refit_keeps_the_previous_model_whole(
    stage, error, monkeypatch, digits_one_class
):
    X_train, X_test, _ = digits_one_class
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    det.fit(X_train)
    fitted = {name: value for name, value in vars(det).items() if name.endswith("_")}
    scores, offset = det.score_samples(X_test), det.offset_
    # A refit on other data, with other settings, fails part way.
    det.set_params(random_state=1, contamination=0.2, warm_start=True)
    _fail_at(monkeypatch, stage, error)
    with pytest.raises(type(error)):
        det.fit(X_train[::-1][:100])
    monkeypatch.undo()
    now = {name: value for name, value in vars(det).items() if name.endswith("_")}
    assert now.keys() == fitted.keys()
    assert all(now[name] is value for name, value in fitted.items())
    assert det.offset_ == offset
    np.testing.assert_array_equal(det.score_samples(X_test), scores)


@pytest.mark.parametrize("Estimator", [VAETransformer, VAEClassifier])
def test_other_estimators_fit_all_or_nothing(Estimator, monkeypatch, digits):
    images, y = digits
    est = Estimator(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    est.fit(images[:100], y[:100])
    before = pickle.dumps(est)
    _fail_at(monkeypatch, "vae training", Injected())
    with pytest.raises(Injected):
        est.fit(images[100:200], y[100:200])
    assert pickle.dumps(est) == before
