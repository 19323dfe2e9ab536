"""The benchmark loop: protocols (how the data is split) times methods."""

import json
import warnings

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from ..datasets import normal_classes_split, one_class_split
from ._methods import METHODS, MethodResult


def one_class_splits(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    classes,
    train_contamination=0.0,
    random_state=0,
):
    """Yield ``(split, description, X_fit, X_eval, is_inlier)``, one per class.

    The one-class protocol (Ruff et al. 2018): fit on one class's training
    samples, score the whole test set. With ``train_contamination``, that
    share of the training set is drawn from the other classes' training
    samples (seeded by ``random_state`` and the class).
    """
    for inlier_class in classes:
        X_fit, X_eval, is_inlier = one_class_split(
            X_train,
            y_train,
            X_test,
            y_test,
            inlier_class=inlier_class,
            train_contamination=train_contamination,
            random_state=np.random.RandomState([random_state, int(inlier_class)]),
        )
        description = {
            "normal": [int(inlier_class)],
            "inlier_class": int(inlier_class),
            "train_contamination": train_contamination,
        }
        yield int(inlier_class), description, X_fit, X_eval, is_inlier


def multi_class_splits(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    n_splits,
    normal_fraction=0.5,
    anomaly_share=0.05,
    max_train_per_class=None,
    random_state=0,
    normal_classes=None,
    first_split=0,
    train_contamination=0.0,
):
    """Yield ``(split, description, X_fit, X_eval, is_inlier)`` for random splits.

    Each split draws ``normal_fraction`` of the classes as normal, fits on
    their training samples and scores their test samples plus anomalies of
    the other classes, ``anomaly_share`` of the test set
    (:func:`skvae.datasets.normal_classes_split`). Split ``i`` is seeded by
    ``random_state + i``, so a split is the same whatever ``n_splits`` is.
    With ``normal_classes`` the normal classes are fixed and the splits
    differ in their random draws only. Splits are numbered from
    ``first_split``. With ``train_contamination``, that share of each
    training set is drawn from the other classes' training samples.
    """
    classes = np.unique(y_train)
    n_normal = max(1, round(normal_fraction * len(classes)))
    for split in range(first_split, first_split + n_splits):
        rng = np.random.RandomState(random_state + split - first_split)
        normal = (
            np.sort(rng.choice(classes, n_normal, replace=False))
            if normal_classes is None
            else np.asarray(normal_classes)
        )
        X_fit, X_eval, is_inlier = normal_classes_split(
            X_train,
            y_train,
            X_test,
            y_test,
            normal_classes=normal,
            anomaly_share=anomaly_share,
            max_train_per_class=max_train_per_class,
            train_contamination=train_contamination,
            random_state=rng,
        )
        description = {
            "normal": normal.tolist(),
            "train_contamination": train_contamination,
        }
        yield split, description, X_fit, X_eval, is_inlier


def run_benchmark(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    classes=None,
    methods,
    splits=None,
    epochs=None,
    random_state=0,
    progress=None,
    records_path=None,
):
    """Run every method on every split; return one record per (result, split).

    Parameters
    ----------
    X_train, y_train, X_test, y_test : ndarray
        A labelled train/test split (images or flat rows).
    classes : iterable of int or None, default=None
        The inlier classes of the one-class protocol, one at a time. Ignored
        when ``splits`` is given.
    methods : list of str
        Keys of :data:`~skvae.benchmark.METHODS`.
    splits : iterable or None, default=None
        ``(split, description, X_fit, X_eval, is_inlier)`` tuples, e.g. from
        :func:`multi_class_splits`; by default the one-class splits of
        ``classes``.
    epochs : int or None, default=None
        Training epochs for the deep methods; ``None`` keeps each default.
    random_state : int, default=0
        Seed passed to every method.
    progress : callable or None, default=None
        Called with a one-line status after each fit, e.g. a progress bar's
        ``update``.
    records_path : path or None, default=None
        A JSON-lines file: each (method, split) is appended as soon as it
        finishes, and the ones already in the file are loaded instead of
        run again, so an interrupted run continues where it stopped.

    Returns
    -------
    records : list of dict
        Keys ``method``, ``method_key``, ``split``, ``normal`` (the normal
        classes), ``roc_auc``, ``average_precision`` (anomalies as the
        positive class), ``fit_seconds``, ``score_seconds``, and the ROC
        curve ``fpr`` / ``tpr``. One-class records also carry
        ``inlier_class``.

    Examples
    --------
    >>> from skvae.benchmark import run_benchmark
    >>> from skvae.datasets import load_digit_images
    >>> train = load_digit_images(subset="train")
    >>> test = load_digit_images(subset="test")
    >>> records = run_benchmark(
    ...     train.images, train.target, test.images, test.target,
    ...     classes=[0], methods=["isolation-forest"],
    ... )
    >>> [(r["method_key"], r["split"]) for r in records]
    [('isolation-forest', 0)]
    """
    if splits is None:
        splits = one_class_splits(X_train, y_train, X_test, y_test, classes=classes)
    done = _load_records(records_path)
    records = []
    for split, description, X_fit, X_eval, is_inlier in splits:
        for method in methods:
            previous = [
                r for r in done if r["method_key"] == method and r["split"] == split
            ]
            if not previous:
                results = _run_method(
                    method, split, X_fit, X_eval, epochs, random_state
                )
                previous = [
                    _record(name, method, split, description, is_inlier, result)
                    for name, result in results.items()
                ]
                _append_records(records_path, previous)
            records.extend(previous)
            if progress is not None:
                progress(f"split {split}: {method}")
    return records


def _run_method(method, split, X_fit, X_eval, epochs, random_state):
    """Run one method; if it raises, return nan scores under its key."""
    try:
        return METHODS[method](X_fit, X_eval, epochs=epochs, random_state=random_state)
    except Exception as error:  # one broken method must not end a long run
        warnings.warn(
            f"{method} failed on split {split} ({type(error).__name__}: {error}); "
            "it is recorded with nan scores.",
            RuntimeWarning,
            stacklevel=3,
        )
        nan = float("nan")
        failed = MethodResult(np.full(len(X_eval), nan), nan, nan, repr(error))
        return {method: failed}


def _load_records(path):
    if path is None:
        return []
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def _append_records(path, records):
    if path is None:
        return
    with open(path, "a") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def _record(name, method_key, split, description, is_inlier, result):
    scores = np.asarray(result.scores, dtype=np.float64)
    record = {
        "method": name,
        "method_key": method_key,
        "split": split,
        **description,
        "fit_seconds": result.fit_seconds,
        "score_seconds": result.score_seconds,
    }
    if result.error is not None:
        record["error"] = result.error
    if not np.all(np.isfinite(scores)):
        # One broken method must not end a long run; its AUC shows as nan.
        if result.error is None:
            warnings.warn(
                f"{name} gave non-finite scores on split {split}; its ROC-AUC "
                "and average precision are recorded as nan.",
                RuntimeWarning,
                stacklevel=2,
            )
        return {
            **record,
            "roc_auc": float("nan"),
            "average_precision": float("nan"),
            "fpr": [],
            "tpr": [],
        }
    fpr, tpr, _ = roc_curve(is_inlier, scores)
    return {
        **record,
        "roc_auc": float(roc_auc_score(is_inlier, scores)),
        # Anomalies are the rare class users look for: they are AP's positives.
        "average_precision": float(average_precision_score(1 - is_inlier, -scores)),
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
    }
