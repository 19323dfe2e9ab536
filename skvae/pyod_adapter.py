"""Use skvae's VAE detector inside PyOD, with PyOD's conventions.

PyOD scores the other way round from scikit-learn: higher = more anomalous,
and labels are 1 for outliers, 0 for inliers. :class:`PyODVAE` wraps a
:class:`~skvae.VAEOutlierDetector` and flips its scores, so it runs in PyOD's
own utilities (``evaluate_print``, combination, thresholding, model
selection) next to PyOD's detectors.

Needs PyOD: ``pip install "skvae[pyod]"``.
"""

try:
    from pyod.models.base import BaseDetector
except ImportError as error:  # pragma: no cover - exercised without pyod only
    raise ImportError(
        "skvae.pyod_adapter needs PyOD. Install it with "
        '`pip install "skvae[pyod]"` (or `pip install pyod`).'
    ) from error

from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._outlier import VAEOutlierDetector

__all__ = ["PyODVAE"]


class PyODVAE(BaseDetector):
    """A :class:`~skvae.VAEOutlierDetector` as a PyOD detector.

    ``decision_function`` returns the negative of the wrapped detector's
    ``score_samples`` (by default a sum of training z-scores, unitless; see
    ``VAEOutlierDetector``'s ``score_type``): higher = more anomalous, as
    everywhere in PyOD. ``labels_`` and ``predict`` give 1 for outliers and 0 for
    inliers; the threshold is PyOD's, from ``contamination``.

    Parameters
    ----------
    estimator : VAEOutlierDetector, default=None
        The detector to wrap, with its hyperparameters; ``None`` means
        ``VAEOutlierDetector()``. It is cloned in ``fit``; tune its parameters
        as ``estimator__latent_dim`` and so on.
    contamination : float in (0, 0.5], default=0.1
        Share of outliers in the training data; sets ``threshold_``.

    Attributes
    ----------
    estimator_ : VAEOutlierDetector
        The fitted clone of ``estimator``.
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training data; higher = more anomalous.
    threshold_ : float
        Scores above it are outliers.
    labels_ : ndarray of shape (n_samples,)
        1 for outliers, 0 for inliers, on the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.pyod_adapter import PyODVAE
    >>> X = np.random.RandomState(0).normal(size=(64, 4))
    >>> det = PyODVAE(VAEOutlierDetector(latent_dim=2, max_epochs=5, random_state=0))
    >>> det.fit(X).predict(np.array([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, -9.0, 9.0]]))
    array([0, 1])
    """

    def __init__(self, estimator=None, contamination=0.1):
        super().__init__(contamination=contamination)
        self.estimator = estimator

    def fit(self, X, y=None):
        """Fit the wrapped detector and PyOD's threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted detector.
        """
        self._set_n_classes(y)
        estimator = VAEOutlierDetector() if self.estimator is None else self.estimator
        self.estimator_ = clone(estimator).fit(X)
        # Training scores take the same path as decision_function (PyOD #200).
        self.decision_scores_ = self.decision_function(X)
        self._process_decision_scores()
        return self

    def decision_function(self, X):
        """Outlier scores of ``X``; higher = more anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The negated ``score_samples`` of the wrapped detector.
        """
        check_is_fitted(self, "estimator_")
        return -self.estimator_.score_samples(X)
