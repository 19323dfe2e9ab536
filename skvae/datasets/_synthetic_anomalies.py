"""Synthetic anomalies of ADBench's four types, generated from normal rows."""

import numpy as np
from sklearn.mixture import GaussianMixture
from sklearn.utils import check_array, check_random_state

__all__ = ["ANOMALY_KINDS", "make_synthetic_anomalies"]

ANOMALY_KINDS = ("local", "global", "dependency", "clustered")
# Han et al. (2022), section 4.3: the scale of each kind's departure.
DEFAULT_ALPHA = {"local": 5.0, "global": 1.1, "clustered": 5.0}


def make_synthetic_anomalies(
    X, n_anomalies, *, kind, alpha=None, max_components=5, random_state=None
):
    """Draw anomalies of one of ADBench's four types from normal rows ``X``.

    ADBench (Han et al. 2022) turns a real data set into a benchmark of one
    kind of anomaly at a time, generated from a model of the normal rows:

    - ``"local"``: a Gaussian mixture fitted to ``X`` (components chosen by
      BIC), sampled with every covariance scaled by ``alpha`` (5): rows near
      the normal clusters, but too spread out.
    - ``"global"``: each feature uniform in ``[alpha * min, alpha * max]`` of
      that feature in ``X`` (``alpha`` 1.1): rows anywhere in the box.
    - ``"dependency"``: each feature drawn independently from a kernel
      density estimate of its marginal in ``X``: every value is typical, the
      combination is not (ADBench fits a vine copula to the normal rows; the
      anomalies are what remains without it, independent marginals).
    - ``"clustered"``: the mixture's means scaled by ``alpha`` (5), its
      covariances kept: dense clusters away from the normal ones.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Normal rows, best standardised (``"global"`` and ``"clustered"``
        scale about the origin).
    n_anomalies : int
        How many anomalies to draw.
    kind : {"local", "global", "dependency", "clustered"}
        The type of anomaly.
    alpha : float or None, default=None
        The kind's scale (ignored by ``"dependency"``); ``None`` takes
        ADBench's: 5 for local and clustered, 1.1 for global.
    max_components : int, default=5
        The most mixture components BIC chooses among (local, clustered).
    random_state : int, RandomState instance or None, default=None
        Seed of the mixture's fit and of the draws.

    Returns
    -------
    anomalies : ndarray of shape (n_anomalies, n_features)
        The drawn rows, float64.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``n_anomalies`` is negative.

    References
    ----------
    S. Han, X. Hu, H. Huang, M. Jiang and Y. Zhao, "ADBench: Anomaly
    Detection Benchmark", NeurIPS 2022 Datasets and Benchmarks.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.datasets import make_synthetic_anomalies
    >>> X = np.random.RandomState(0).normal(size=(500, 3))
    >>> far = make_synthetic_anomalies(X, 50, kind="clustered", random_state=0)
    >>> far.shape
    (50, 3)
    """
    if kind not in ANOMALY_KINDS:
        raise ValueError(
            f"kind={kind!r} is not one of ADBench's anomaly types "
            f"{', '.join(ANOMALY_KINDS)}."
        )
    if n_anomalies < 0:
        raise ValueError(f"n_anomalies={n_anomalies!r} must be >= 0.")
    X = check_array(X, dtype=np.float64)
    rng = check_random_state(random_state)
    alpha = DEFAULT_ALPHA.get(kind) if alpha is None else alpha
    if kind == "global":
        low, high = alpha * X.min(axis=0), alpha * X.max(axis=0)
        return rng.uniform(low, high, size=(n_anomalies, X.shape[1]))
    if kind == "dependency":
        return _independent_marginals(X, n_anomalies, rng)
    mixture = _bic_mixture(X, max_components, rng)
    means, covariances = mixture.means_, mixture.covariances_
    if kind == "local":
        covariances = alpha * covariances
    else:
        means = alpha * means
    components = rng.choice(len(means), size=n_anomalies, p=mixture.weights_)
    anomalies = np.empty((n_anomalies, X.shape[1]))
    for component in np.unique(components):
        rows = components == component
        anomalies[rows] = rng.multivariate_normal(
            means[component], covariances[component], size=int(rows.sum())
        )
    return anomalies


def _bic_mixture(X, max_components, rng):
    """Fit full-covariance mixtures of 1 to ``max_components``; return the least BIC."""
    best, best_bic = None, np.inf
    for n_components in range(1, min(max_components, len(X)) + 1):
        mixture = GaussianMixture(
            n_components, covariance_type="full", random_state=rng.randint(2**31)
        ).fit(X)
        bic = mixture.bic(X)
        if bic < best_bic:
            best, best_bic = mixture, bic
    return best


def _independent_marginals(X, n_anomalies, rng):
    """Each feature from a Gaussian KDE of its own column (Silverman's bandwidth)."""
    n_rows, n_features = X.shape
    picks = rng.randint(n_rows, size=(n_anomalies, n_features))
    values = X[picks, np.arange(n_features)]
    bandwidth = 1.06 * X.std(axis=0) * n_rows ** (-1 / 5)
    return values + rng.normal(size=values.shape) * bandwidth
