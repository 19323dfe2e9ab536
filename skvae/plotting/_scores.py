"""Plots of anomaly scores: histograms with the threshold, ROC and PR curves."""

import numpy as np

from ._utils import get_ax, inlier_mask, score_label


def plot_score_histogram(
    estimator, X, y_true=None, *, bins=30, threshold=None, ax=None
):
    """Histogram of ``score_samples(X)``, split into inliers and outliers.

    A vertical line marks the threshold: the detector's ``offset_`` (on the
    ``score_samples`` scale, so samples left of it are predicted outliers).

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator with ``score_samples``.
    X : array-like of shape (n_samples, n_features) or image array
        Samples to score.
    y_true : array-like of shape (n_samples,), default=None
        True labels, +1 (inlier) / -1 (outlier) as ``predict`` returns them;
        1 / 0 and booleans are read as "is inlier". One histogram when None.
    bins : int, default=30
        Number of bins, shared by both histograms.
    threshold : float, default=None
        Where to draw the threshold line; the estimator's ``offset_`` when
        None (no line if it has none).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes, with one bar container per group and the threshold line.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_score_histogram
    >>> ax = plot_score_histogram(det, X[:300], is_zero[:300])
    >>> ax.get_xlabel()
    'score_samples (auto); lower = more anomalous'
    """
    scores = estimator.score_samples(X)
    ax = get_ax(ax)
    edges = np.histogram_bin_edges(scores, bins=bins)
    if y_true is None:
        ax.hist(scores, bins=edges, alpha=0.7, label="samples")
    else:
        inlier = inlier_mask(y_true)
        if len(inlier) != len(scores):
            raise ValueError(
                f"y_true has {len(inlier)} labels but X has {len(scores)} samples."
            )
        for mask, label, color in [
            (inlier, "inliers", "tab:blue"),
            (~inlier, "outliers", "tab:red"),
        ]:
            ax.hist(
                scores[mask],
                bins=edges,
                alpha=0.6,
                color=color,
                label=f"{label} (n={mask.sum()})",
            )
    threshold = getattr(estimator, "offset_", None) if threshold is None else threshold
    if threshold is not None:
        ax.axvline(
            threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}"
        )
    ax.set_xlabel(score_label(estimator))
    ax.set_ylabel("number of samples")
    ax.legend(fontsize="small")
    return ax


def _plot_outlier_curve(display_class, title, estimator, X, y_true, name, ax, kwargs):
    """Draw a scikit-learn curve display of ``-score_samples``, outliers positive."""
    labels = np.where(inlier_mask(y_true), "inlier", "outlier")
    display = display_class.from_predictions(
        labels,
        -estimator.score_samples(X),
        pos_label="outlier",
        name=name or type(estimator).__name__,
        ax=get_ax(ax),
        plot_chance_level=True,
        **kwargs,
    )
    display.ax_.set_title(title)
    return display.ax_


def plot_roc_curve(estimator, X, y_true, *, name=None, ax=None, **kwargs):
    """ROC curve of the anomaly score, with outliers as the positive class.

    Uses :meth:`sklearn.metrics.RocCurveDisplay.from_predictions` with
    ``-score_samples(X)`` as the score, so the curve is the detector's:
    more anomalous samples rank first. Its AUC equals
    ``roc_auc_score(y_true > 0, score_samples(X))``.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator with ``score_samples``.
    X : array-like of shape (n_samples, n_features) or image array
        Samples to score.
    y_true : array-like of shape (n_samples,)
        +1 (inlier) / -1 (outlier), or 1 / 0 or booleans for "is inlier".
    name : str, default=None
        Legend name; the estimator's class name when None.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.
    **kwargs
        Passed to ``RocCurveDisplay.from_predictions``.

    Returns
    -------
    ax : matplotlib Axes
        The Axes with the ROC curve.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_roc_curve
    >>> ax = plot_roc_curve(det, X[:300], is_zero[:300])  # outliers are positives
    >>> ax.get_xlabel()
    'False Positive Rate (Positive label: outlier)'
    """
    from sklearn.metrics import RocCurveDisplay

    title = "ROC curve (positive class: outlier)"
    return _plot_outlier_curve(
        RocCurveDisplay, title, estimator, X, y_true, name, ax, kwargs
    )


def plot_precision_recall_curve(estimator, X, y_true, *, name=None, ax=None, **kwargs):
    """Precision-recall curve of the anomaly score, outliers being positive.

    Uses :meth:`sklearn.metrics.PrecisionRecallDisplay.from_predictions`
    with ``-score_samples(X)`` as the score: precision is the share of true
    outliers among the flagged samples, recall the share of outliers
    flagged. The chance level is the share of outliers.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator with ``score_samples``.
    X : array-like of shape (n_samples, n_features) or image array
        Samples to score.
    y_true : array-like of shape (n_samples,)
        +1 (inlier) / -1 (outlier), or 1 / 0 or booleans for "is inlier".
    name : str, default=None
        Legend name; the estimator's class name when None.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.
    **kwargs
        Passed to ``PrecisionRecallDisplay.from_predictions``.

    Returns
    -------
    ax : matplotlib Axes
        The Axes with the precision-recall curve.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_precision_recall_curve
    >>> ax = plot_precision_recall_curve(det, X[:300], is_zero[:300])
    >>> ax.get_ylabel()
    'Precision (Positive label: outlier)'
    """
    from sklearn.metrics import PrecisionRecallDisplay

    title = "Precision-recall (positive class: outlier)"
    return _plot_outlier_curve(
        PrecisionRecallDisplay, title, estimator, X, y_true, name, ax, kwargs
    )
