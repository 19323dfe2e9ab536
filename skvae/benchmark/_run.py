"""The benchmark loop: one-class protocol over classes and methods."""

import warnings

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..datasets import one_class_split
from ._methods import METHODS


def run_benchmark(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    classes,
    methods,
    epochs=None,
    random_state=0,
    progress=None,
):
    """Run the one-class protocol and return one record per (method, class).

    Parameters
    ----------
    X_train, y_train, X_test, y_test : ndarray
        A labelled train/test split (images or flat rows).
    classes : iterable of int
        The inlier classes to benchmark, one at a time.
    methods : list of str
        Keys of :data:`~skvae.benchmark.METHODS`.
    epochs : int or None, default=None
        Training epochs for the deep methods; ``None`` keeps each default.
    random_state : int, default=0
        Seed passed to every method.
    progress : callable or None, default=None
        Called with a one-line status after each fit, e.g. a progress bar's
        ``update``.

    Returns
    -------
    records : list of dict
        Keys ``method``, ``inlier_class``, ``roc_auc``, ``fit_seconds``,
        ``score_seconds``, and the ROC curve ``fpr`` / ``tpr``.
    """
    records = []
    for inlier_class in classes:
        X_inlier, X_eval, is_inlier = one_class_split(
            X_train, y_train, X_test, y_test, inlier_class=inlier_class
        )
        for method in methods:
            results = METHODS[method](
                X_inlier, X_eval, epochs=epochs, random_state=random_state
            )
            for name, result in results.items():
                records.append(_record(name, inlier_class, is_inlier, result))
            if progress is not None:
                progress(f"class {inlier_class}: {method}")
    return records


def _record(name, inlier_class, is_inlier, result):
    scores = np.asarray(result.scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        # One broken method must not end a long run; its AUC shows as nan.
        warnings.warn(
            f"{name} gave non-finite scores for class {inlier_class}; "
            "its ROC-AUC is recorded as nan.",
            RuntimeWarning,
            stacklevel=2,
        )
        fpr, tpr, auc = [], [], float("nan")
    else:
        fpr, tpr, _ = roc_curve(is_inlier, scores)
        fpr, tpr = fpr.tolist(), tpr.tolist()
        auc = float(roc_auc_score(is_inlier, scores))
    return {
        "method": name,
        "inlier_class": int(inlier_class),
        "roc_auc": auc,
        "fit_seconds": result.fit_seconds,
        "score_seconds": result.score_seconds,
        "fpr": fpr,
        "tpr": tpr,
    }
