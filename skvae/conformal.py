"""Conformal p-values, thresholds and false-discovery control for anomaly scores.

Split-conformal inference (Vovk et al. 2005; Bates et al. 2023) turns any
score into p-values with a finite-sample guarantee. Score a calibration set
of normal samples the model did not train on; then for a new sample with
score ``s`` (higher = more normal, scikit-learn's direction),

    ``p(s) = (1 + #{calibration scores <= s}) / (n + 1)``.

If the new sample and the calibration samples are exchangeable (drawn from
the same distribution, e.g. all normal data, independently of the training
set), ``P(p <= alpha) <= alpha`` for every ``alpha``: flagging samples whose
p-value is at most ``alpha`` flags a normal sample with probability at most
``alpha`` (and, for untied scores, more than ``alpha - 1 / (n + 1)``). This
holds in expectation over the calibration set; the rate of one fixed
calibration set varies around it like a Beta variable of ``n`` (Vovk 2012).
Over a batch of test samples, the Benjamini-Hochberg procedure on these
p-values controls the false-discovery rate (Bates et al. 2023, theorem 3).

These are plain functions of score arrays;
:class:`~skvae.VAEOutlierDetector` uses them with the scores of its held-out
calibration set.

References
----------
.. [1] Bates, S., Candes, E., Lei, L., Romano, Y. & Sesia, M. (2023).
   Testing for outliers with conformal p-values. Annals of Statistics 51(1).
   :arxiv:`2104.08279`
.. [2] Vovk, V. (2012). Conditional validity of inductive conformal
   predictors. ACML.
.. [3] Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery
   rate. JRSS B 57(1).
"""

import math

import numpy as np

__all__ = ["benjamini_hochberg", "conformal_pvalues", "conformal_threshold"]


def _sorted_scores(calibration_scores):
    scores = np.sort(np.asarray(calibration_scores, dtype=np.float64).ravel())
    if len(scores) == 0:
        raise ValueError("calibration_scores is empty; it needs at least one score.")
    if np.isnan(scores).any():
        raise ValueError("calibration_scores contains NaN.")
    return scores


def conformal_pvalues(calibration_scores, scores):
    """Split-conformal p-values of ``scores`` against ``calibration_scores``.

    Parameters
    ----------
    calibration_scores : array-like of shape (n_calibration,)
        Scores of normal samples the model did not train on; higher = more
        normal.
    scores : array-like of shape (n_samples,)
        Scores of the samples to test, same direction.

    Returns
    -------
    pvalues : ndarray of shape (n_samples,)
        ``(1 + #{calibration scores <= s}) / (n_calibration + 1)`` for each
        score ``s``: small for samples that score lower than almost every
        calibration sample. The smallest possible value is
        ``1 / (n_calibration + 1)``.

    Examples
    --------
    >>> from skvae.conformal import conformal_pvalues
    >>> conformal_pvalues([1.0, 2.0, 3.0, 4.0], [0.5, 2.5, 9.0])
    array([0.2, 0.6, 1. ])
    """
    calibration = _sorted_scores(calibration_scores)
    counts = np.searchsorted(calibration, np.asarray(scores, dtype=np.float64), "right")
    return (1.0 + counts) / (len(calibration) + 1.0)


def conformal_threshold(calibration_scores, alpha):
    """Return the score below which conformal p-values are at most ``alpha``.

    ``score < conformal_threshold(c, alpha)`` holds exactly when
    ``conformal_pvalues(c, score) <= alpha``, so flagging the samples below
    it flags a new normal sample with probability at most ``alpha`` (see the
    module docstring).

    Parameters
    ----------
    calibration_scores : array-like of shape (n_calibration,)
        Scores of held-out normal samples; higher = more normal.
    alpha : float in (0, 1)
        The false-positive rate to control.

    Returns
    -------
    threshold : float
        The ``k``-th smallest calibration score, ``k = floor(alpha *
        (n_calibration + 1))``; ``-inf`` when ``k = 0``, i.e. when the
        calibration set is too small for the level (fewer than
        ``1 / alpha - 1`` scores): then no sample can be flagged.

    Examples
    --------
    >>> from skvae.conformal import conformal_threshold
    >>> float(conformal_threshold(range(1, 20), 0.1))  # k = floor(0.1 * 20) = 2
    2.0
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}.")
    calibration = _sorted_scores(calibration_scores)
    # A tiny tolerance keeps alpha * (n + 1) = 5 from rounding down to 4.
    k = math.floor(alpha * (len(calibration) + 1) + 1e-9)
    return float(calibration[k - 1]) if k > 0 else -math.inf


def benjamini_hochberg(pvalues, alpha):
    """Which tests the Benjamini-Hochberg procedure rejects at level ``alpha``.

    Sort the ``m`` p-values, find the largest ``k`` with ``p_(k) <= alpha *
    k / m`` and reject the ``k`` smallest. With conformal p-values of a
    batch of test samples, the expected share of normal samples among the
    rejected ones (the false-discovery rate) is at most ``alpha`` times the
    share of normal samples in the batch (Bates et al. 2023).

    Parameters
    ----------
    pvalues : array-like of shape (n_samples,)
        One p-value per test, e.g. from :func:`conformal_pvalues`.
    alpha : float in (0, 1)
        The false-discovery rate to control.

    Returns
    -------
    rejected : ndarray of bool, shape (n_samples,)
        True for the rejected tests (the discoveries: flagged outliers).

    Examples
    --------
    >>> from skvae.conformal import benjamini_hochberg
    >>> benjamini_hochberg([0.001, 0.2, 0.012, 0.9], alpha=0.05)
    array([ True, False,  True, False])
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha}.")
    pvalues = np.asarray(pvalues, dtype=np.float64).ravel()
    order = np.argsort(pvalues, kind="stable")
    m = len(pvalues)
    below = pvalues[order] <= alpha * np.arange(1, m + 1) / m
    n_rejected = int(np.flatnonzero(below)[-1]) + 1 if below.any() else 0
    rejected = np.zeros(m, dtype=bool)
    rejected[order[:n_rejected]] = True
    return rejected
