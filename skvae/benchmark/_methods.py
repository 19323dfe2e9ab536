"""The detectors the benchmark compares, behind one small interface.

Each method is a function ``(X_train, X_test, *, epochs, random_state)``
returning ``{name: MethodResult}``; one fit may yield several named results
(the parts of skvae's score, read from one fit). Scores are normality scores:
higher = more normal, whatever the library's own convention.
"""

import time
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from .._outlier import VAEOutlierDetector
from ..terms._builtin import COMBINATIONS, auto_terms

# Every score without the transformation classifier, which "skvae-scores"
# reads from one fit.
VAE_SCORES = (
    "elbo",
    "iwae",
    "reconstruction",
    "reconstruction_probability",
    "latent_mahalanobis",
    "latent_knn",
    "input_knn",
)


@dataclass
class MethodResult:
    """Normality scores of the test set and the seconds spent.

    ``error`` says why a method that failed has no scores (they are nan).
    """

    scores: np.ndarray
    fit_seconds: float
    score_seconds: float
    error: str | None = None


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _as_unit_float(X):
    """Flat float32 rows in [0, 1] for the detectors that take 2-D input."""
    X = X.reshape(len(X), -1)
    return X / np.float32(255) if X.dtype == np.uint8 else X.astype(np.float32)


def run_skvae(X_train, X_test, *, epochs, random_state):
    """Fit the default VAEOutlierDetector; its score and each of its parts."""
    return _run_skvae_detector("skvae", {}, X_train, X_test, epochs, random_state)


def run_skvae_vae_only(X_train, X_test, *, epochs, random_state):
    """Fit the VAE alone (``transformations=None``); its score and parts."""
    return _run_skvae_detector(
        "skvae-vae-only",
        {"transformations": None},
        X_train,
        X_test,
        epochs,
        random_state,
    )


def run_skvae_vae_scores(X_train, X_test, *, epochs, random_state):
    """Fit the VAE once with every score of its own; each score and their sums.

    The fit scores the training rows with every term (the Monte-Carlo ones
    too), so it costs more than a fit for one score.
    """
    return _run_skvae_detector(
        "skvae-scores",
        {"score_type": VAE_SCORES, "transformations": None},
        X_train,
        X_test,
        epochs,
        random_state,
        sums=lambda detector: {
            "auto": auto_terms(detector.input_shape_, transformations=None),
            **COMBINATIONS,
        },
    )


def _run_skvae_detector(name, params, X_train, X_test, epochs, random_state, sums=None):
    """One fit; a result per part of its score, and per sum of ``sums``.

    The parts are standardised (:meth:`VAEOutlierDetector.score_parts`),
    which ranks samples as each part's own score does; ``sums`` (by default
    the fitted score itself) add parts up as ``score_samples`` does; a
    callable ``sums`` is given the fitted detector.
    """
    params = {**params, "random_state": random_state}
    if epochs is not None:
        params["max_epochs"] = epochs
    detector, fit_seconds = _timed(VAEOutlierDetector(**params).fit, X_train)
    parts, seconds = _timed(detector.score_parts, X_test)
    if sums is None:
        sums = {"auto": tuple(parts)} if len(parts) > 1 else {}
    elif callable(sums):
        sums = sums(detector)
    scores = {
        **parts,
        **{total: sum(parts[part] for part in names) for total, names in sums.items()},
    }
    return {
        f"{name}[{score_type}]": MethodResult(values, fit_seconds, seconds)
        for score_type, values in scores.items()
    }


def _run_sklearn_style(name, detector, X_train, X_test):
    _, fit_seconds = _timed(detector.fit, _as_unit_float(X_train))
    scores, seconds = _timed(detector.score_samples, _as_unit_float(X_test))
    return {name: MethodResult(scores, fit_seconds, seconds)}


def _run_pyod(name, detector, X_train, X_test):
    _, fit_seconds = _timed(detector.fit, _as_unit_float(X_train))
    # PyOD: higher = more anomalous; flip to normality scores.
    scores, seconds = _timed(detector.decision_function, _as_unit_float(X_test))
    return {name: MethodResult(-np.asarray(scores), fit_seconds, seconds)}


def run_isolation_forest(X_train, X_test, *, epochs, random_state):
    """scikit-learn's IsolationForest on flat pixels."""
    detector = IsolationForest(random_state=random_state)
    return _run_sklearn_style("IsolationForest", detector, X_train, X_test)


def run_local_outlier_factor(X_train, X_test, *, epochs, random_state):
    """scikit-learn's LocalOutlierFactor (defaults, ``novelty=True``) on flat pixels."""
    detector = LocalOutlierFactor(novelty=True)
    return _run_sklearn_style("LOF", detector, X_train, X_test)


def run_pyod_ocsvm(X_train, X_test, *, epochs, random_state):
    """PyOD's OCSVM with its defaults (RBF kernel, gamma='auto', nu=0.5)."""
    from pyod.models.ocsvm import OCSVM

    return _run_pyod("PyOD OCSVM", OCSVM(), X_train, X_test)


def run_pyod_deep_svdd(X_train, X_test, *, epochs, random_state):
    """PyOD's DeepSVDD (MLP) with its defaults."""
    from pyod.models.deep_svdd import DeepSVDD

    n_features = int(np.prod(X_train.shape[1:]))
    params = {"n_features": n_features, "random_state": random_state, "verbose": 0}
    if epochs is not None:
        params["epochs"] = epochs
    return _run_pyod("PyOD DeepSVDD", DeepSVDD(**params), X_train, X_test)


def run_pyod_vae(X_train, X_test, *, epochs, random_state):
    """PyOD's VAE (MLP, 2-d latent, standardised input) with its defaults."""
    from pyod.models.vae import VAE

    params = {"random_state": random_state, "verbose": 0}
    if epochs is not None:
        params["epoch_num"] = epochs
    return _run_pyod("PyOD VAE", VAE(**params), X_train, X_test)


def run_pyod_autoencoder(X_train, X_test, *, epochs, random_state):
    """PyOD's AutoEncoder (MLP) with its defaults."""
    from pyod.models.auto_encoder import AutoEncoder

    params = {"random_state": random_state, "verbose": 0}
    if epochs is not None:
        params["epoch_num"] = epochs
    return _run_pyod("PyOD AutoEncoder", AutoEncoder(**params), X_train, X_test)


METHODS = {
    "skvae": run_skvae,
    "skvae-vae-only": run_skvae_vae_only,
    "skvae-scores": run_skvae_vae_scores,
    "pyod-ocsvm": run_pyod_ocsvm,
    "pyod-deepsvdd": run_pyod_deep_svdd,
    "pyod-vae": run_pyod_vae,
    "pyod-autoencoder": run_pyod_autoencoder,
    "isolation-forest": run_isolation_forest,
    "lof": run_local_outlier_factor,
}


def available_methods():
    """Names of the methods that can run here (PyOD's need PyOD installed).

    Returns
    -------
    names : list of str
        Keys of :data:`METHODS` whose packages are installed, in the table's
        order.

    Examples
    --------
    >>> from skvae.benchmark import available_methods
    >>> "skvae" in available_methods()
    True
    """
    try:
        import pyod  # noqa: F401
    except ImportError:
        return [name for name in METHODS if not name.startswith("pyod")]
    return list(METHODS)
