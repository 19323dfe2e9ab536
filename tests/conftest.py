import hashlib

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

# Small networks and few epochs keep the suite fast; the settings still learn
# the toy data well enough for the ranking assertions in the tests.
TINY_CONV = {
    "hidden_dims": (8, 16),
    "latent_dim": 4,
    "max_epochs": 40,
    "batch_size": 32,
}
TINY_MLP = {"hidden_dims": (16,), "latent_dim": 2, "max_epochs": 60, "batch_size": 32}


def training_rows(detector, X):
    """The rows of ``X`` a fitted detector trained on (not held out to calibrate)."""
    return np.delete(np.asarray(X), detector.calibration_indices_, axis=0)


@pytest.fixture(autouse=True)
def seeds_fixed():
    np.random.seed(0)  # noqa: NPY002 - pins the legacy global RNG too
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits():
    """Digit images scaled to [0, 1], shape (n, 8, 8), and their labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 8, 8).astype(np.float32), y


@pytest.fixture(scope="session")
def digits_one_class(digits):
    """Train on 120 zeros; test on the other zeros plus 100 other digits."""
    images, y = digits
    zeros, others = np.flatnonzero(y == 0), np.flatnonzero(y != 0)[:100]
    X_test = np.concatenate([images[zeros[120:]], images[others]])
    is_inlier = np.r_[np.ones(len(zeros) - 120), np.zeros(len(others))]
    return images[zeros[:120]], X_test, is_inlier


@pytest.fixture(scope="session")
def blobs_with_outliers():
    """A Gaussian cloud in 5-D; the last 4 test points sit far outside it."""
    rng = np.random.RandomState(42)
    X_train = rng.normal(size=(200, 5)).astype(np.float32)
    X_test = np.concatenate(
        [
            rng.normal(size=(20, 5)),
            rng.normal(loc=6.0, size=(4, 5)),
        ]
    ).astype(np.float32)
    return X_train, X_test


class FittedModels:
    """Tiny models fitted on first use and shared by every test that reads them.

    ``fitted_models(VAEOutlierDetector, "blobs", **TINY_MLP, random_state=0)``
    returns the one detector of those parameters fitted on that training
    set, whichever test asked first. Tests must not change a model they get
    here (``set_params``, refits, warm starts): clone it instead. The
    session's end checks that none changed.
    """

    def __init__(self, training_sets):
        self._training_sets = training_sets
        self._models = {}

    def __call__(self, estimator_class, data, **params):
        key = (estimator_class.__name__, data, tuple(sorted(params.items())))
        if key not in self._models:
            model = estimator_class(**params).fit(self._training_sets[data])
            self._models[key] = (model, _fingerprint(model))
        return self._models[key][0]

    def changed(self):
        """The keys of the models whose parameters or weights changed."""
        return [
            key
            for key, (model, fingerprint) in self._models.items()
            if _fingerprint(model) != fingerprint
        ]


def _fingerprint(model):
    nets = [model.net_, getattr(model, "transformation_net_", None)]
    weights = b"".join(
        tensor.detach().numpy().tobytes()
        for net in nets
        if net is not None
        for tensor in net.module_.state_dict().values()
    )
    return repr(sorted(model.get_params().items())), hashlib.sha256(weights).digest()


@pytest.fixture(scope="session")
def fitted_models(digits_one_class, blobs_with_outliers):
    """The session's catalogue of fitted tiny models (:class:`FittedModels`).

    Training sets: ``"blobs"`` (the 5-D cloud) and ``"zeros"`` (120 digit
    zeros as 8x8 images).
    """
    catalogue = FittedModels(
        {"blobs": blobs_with_outliers[0], "zeros": digits_one_class[0]}
    )
    yield catalogue
    assert not catalogue.changed(), (
        f"a test changed shared models: {catalogue.changed()}"
    )


@pytest.fixture(scope="session")
def fitted_conv_detector(fitted_models):
    """The conv detector of the catalogue fitted on zeros (read-only)."""
    from skvae import VAEOutlierDetector

    return fitted_models(VAEOutlierDetector, "zeros", **TINY_CONV, random_state=0)


@pytest.fixture(scope="session")
def fitted_blob_detector(fitted_models):
    """The MLP detector of the catalogue fitted on the blobs (read-only)."""
    from skvae import VAEOutlierDetector

    return fitted_models(VAEOutlierDetector, "blobs", **TINY_MLP, random_state=0)


def pytest_configure(config):
    # The test models are tiny: one thread per process is fastest, and with
    # pytest-xdist's workers on a small machine, more threads only contend.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Leave the docs checks to the docs command unless ``-m`` names them.

    A ``-m 'not docs'`` in ``addopts`` would be replaced by any ``-m`` on the
    command line, so a quick ``-m "not slow"`` loop would run them too.
    """
    if "docs" in config.getoption("markexpr"):
        return
    docs_checks = [item for item in items if item.get_closest_marker("docs")]
    if docs_checks:
        config.hook.pytest_deselected(items=docs_checks)
        items[:] = [item for item in items if not item.get_closest_marker("docs")]
