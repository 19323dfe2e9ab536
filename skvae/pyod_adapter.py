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

from numbers import Real

import numpy as np
from scipy.special import erf
from scipy.stats import binom
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._outlier import VAEOutlierDetector
from .conformal import conformal_pvalues, conformal_threshold

__all__ = ["PyODVAE"]


class PyODVAE(BaseDetector):
    """A :class:`~skvae.VAEOutlierDetector` as a PyOD detector.

    ``decision_function`` returns the negative of the wrapped detector's
    ``score_samples`` (by default a sum of training z-scores, unitless; see
    ``VAEOutlierDetector``'s ``score_type``): higher = more anomalous, as
    everywhere in PyOD. ``labels_`` and ``predict`` give 1 for outliers and 0
    for inliers.

    The threshold, ``predict_proba`` and ``predict_confidence`` come from the
    scores of the rows the wrapped detector held out from training
    (``calibration_scores_``; see its ``calibration_fraction``), not from the
    training scores as in PyOD's other detectors: the network fits its
    training rows more tightly than new data, so a threshold from training
    scores flags more new normal data than ``contamination`` says. With
    held-out rows, ``predict`` flags a new normal sample with probability at
    most ``contamination`` (conformal guarantee, assuming the new data is
    exchangeable with the training data). With
    ``calibration_fraction=None`` all three fall back to the training scores,
    as in PyOD.

    Parameters
    ----------
    estimator : VAEOutlierDetector, default=None
        The detector to wrap, with its hyperparameters; ``None`` means
        ``VAEOutlierDetector()``. It is cloned in ``fit``; tune its parameters
        as ``estimator__latent_dim`` and so on.
    contamination : float in (0, 0.5], default=0.1
        The share of new normal data to flag; sets ``threshold_``.

    Attributes
    ----------
    estimator_ : VAEOutlierDetector
        The fitted clone of ``estimator``.
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training data; higher = more anomalous.
    calibration_scores_ : ndarray of shape (n_calibration,)
        Sorted outlier scores of the held-out calibration rows (of the
        training rows when nothing was held out); higher = more anomalous.
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
    >>> det.predict_proba(np.array([[9.0, 9.0, -9.0, 9.0]]), method="conformal")
    array([[0.0714..., 0.9285...]])
    """

    def __init__(self, estimator=None, contamination=0.1):
        super().__init__(contamination=contamination)
        self.estimator = estimator

    def fit(self, X, y=None):
        """Fit the wrapped detector and the threshold.

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
        # Sorted ascending in PyOD's direction.
        self.calibration_scores_ = -self.estimator_.calibration_scores_[::-1]
        self._process_decision_scores()
        return self

    def _process_decision_scores(self):
        """Set ``threshold_`` and ``labels_`` from the calibration scores."""
        if not isinstance(self.contamination, Real):
            # A PyThresh thresholder: PyOD's own handling, on training scores.
            return super()._process_decision_scores()
        if len(self.estimator_.calibration_indices_):
            # score > threshold_ exactly when the conformal p-value is at
            # most contamination.
            self.threshold_ = -conformal_threshold(
                self.estimator_.calibration_scores_, self.contamination
            )
        else:
            self.threshold_ = float(
                np.percentile(self.decision_scores_, 100 * (1 - self.contamination))
            )
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        self._mu = float(np.mean(self.calibration_scores_))
        self._sigma = float(np.std(self.calibration_scores_))
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

    def predict_proba(self, X, method="linear", return_confidence=False):
        """Probability of each sample being an outlier, from the calibration scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.
        method : {"linear", "unify", "conformal"}, default="linear"
            ``"linear"`` and ``"unify"`` are PyOD's conversions (min-max
            scaling; a Gaussian error function of the standardised score),
            applied with the calibration scores' range and moments.
            ``"conformal"`` is one minus the conformal p-value of the
            wrapped detector's ``score_pvalues``: the share of calibration
            samples that score more normal, which carries the conformal
            guarantee (needs held-out calibration rows).
        return_confidence : bool, default=False
            Also return :meth:`predict_confidence`.

        Returns
        -------
        probability : ndarray of shape (n_samples, 2)
            Columns: probability of being normal, of being an outlier.
        confidence : ndarray of shape (n_samples,)
            Only with ``return_confidence=True``.
        """
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        scores = self.decision_function(X)
        calibration = self.calibration_scores_
        if method == "linear":
            spread = calibration[-1] - calibration[0]
            outlier = (scores - calibration[0]) / (spread if spread > 0 else 1.0)
        elif method == "unify":
            sigma = self._sigma if self._sigma > 0 else 1.0
            outlier = erf((scores - self._mu) / (sigma * np.sqrt(2)))
        elif method == "conformal":
            outlier = 1.0 - self._pvalues(scores)
        else:
            raise ValueError(
                f"method={method!r} is not a probability conversion; use "
                "'linear', 'unify' or 'conformal'."
            )
        outlier = np.clip(outlier, 0.0, 1.0)
        probability = np.column_stack([1.0 - outlier, outlier])
        if return_confidence:
            return probability, self.predict_confidence(X)
        return probability

    def predict_confidence(self, X):
        """Confidence in each label, from the calibration scores (ExCeeD).

        PyOD's estimate of how surely a sample keeps its label under a
        slightly different training set (Perini et al. 2020), counted against
        the calibration scores instead of the training scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        confidence : ndarray of shape (n_samples,)
            Values in [0, 1].
        """
        check_is_fitted(self, ["decision_scores_", "threshold_", "labels_"])
        scores = self.decision_function(X)
        calibration = self.calibration_scores_
        n = len(calibration)
        at_or_below = np.searchsorted(calibration, scores, side="right")
        outlier_probability = (1 + at_or_below) / (2 + n)
        contamination = (
            self.contamination
            if isinstance(self.contamination, Real)
            else np.mean(self.labels_)
        )
        confidence = 1 - binom.cdf(n - int(n * contamination), n, outlier_probability)
        inlier = scores <= self.threshold_
        confidence[inlier] = 1 - confidence[inlier]
        return confidence

    def _pvalues(self, scores):
        """Conformal p-values of PyOD-direction ``scores``."""
        if not len(self.estimator_.calibration_indices_):
            raise NotFittedError(
                "method='conformal' needs calibration scores of rows the "
                "detector did not train on; the wrapped detector held out none. "
                "Give it calibration_fraction=0.2 (the default)."
            )
        return conformal_pvalues(self.estimator_.calibration_scores_, -scores)
