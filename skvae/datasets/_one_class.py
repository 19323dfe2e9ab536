"""The one-class anomaly-detection protocol of Ruff et al. (2018)."""

import numpy as np
from sklearn.utils import check_consistent_length, check_random_state

__all__ = ["normal_classes_split", "one_class_split"]


def one_class_split(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    inlier_class,
    train_contamination=0.0,
    random_state=None,
):
    """Split a labelled data set into one class's training set and a test set.

    The one-class protocol (Ruff et al. 2018, used for Deep SVDD and Grad2VAE):
    a detector is trained on the training images of one class only, then scores
    the whole test set, where that class is normal and every other class is an
    anomaly. Repeating it for every class and averaging the ROC-AUC gives the
    figure papers report.

    Parameters
    ----------
    X_train : array-like of shape (n_train, ...)
        Training samples, flat or images.
    y_train : array-like of shape (n_train,)
        Their classes.
    X_test : array-like of shape (n_test, ...)
        Test samples, returned whole.
    y_test : array-like of shape (n_test,)
        Their classes.
    inlier_class : int or str
        The normal class; a value of ``y_train``.
    train_contamination : float in [0, 1), default=0.0
        Share of the returned training set drawn at random from the training
        samples of the other classes: the usual unsupervised setting, where
        the data to fit on holds some unlabelled anomalies. 0 gives the
        clean protocol.
    random_state : int, RandomState instance or None, default=None
        Seed of the draw of training anomalies (unused when
        ``train_contamination=0``).

    Returns
    -------
    X_inlier : ndarray of shape (n_inlier, ...)
        The rows of ``X_train`` of class ``inlier_class``: the data to fit on
        (with ``train_contamination``, plus the drawn anomalies, in random
        order).
    X_test : ndarray of shape (n_test, ...)
        ``X_test`` as an array.
    is_inlier : ndarray of shape (n_test,), dtype int64
        1 where ``y_test == inlier_class``, 0 elsewhere. Inliers are the
        positive class, so ``roc_auc_score(is_inlier, det.score_samples(X_test))``
        is the protocol's ROC-AUC for a scikit-learn detector (higher score =
        more normal). For PyOD's ``decision_function`` (higher = more
        anomalous), use ``1 - is_inlier``.

    Raises
    ------
    ValueError
        If the lengths of samples and labels differ, ``inlier_class`` is not
        in ``y_train``, or the test set lacks either inliers or outliers (the
        ROC-AUC would be undefined).

    See Also
    --------
    load_digit_images : A reproducible train/test split of the bundled digits.
    load_fashion_mnist : Fashion-MNIST's official train and test sets.

    References
    ----------
    L. Ruff, R. Vandermeulen, N. Goernitz, L. Deecke, S. A. Siddiqui,
    A. Binder, E. Müller and M. Kloft, "Deep One-Class Classification",
    ICML 2018.

    Examples
    --------
    The protocol over every class of the digits, with an IsolationForest:

    >>> from sklearn.ensemble import IsolationForest
    >>> from sklearn.metrics import roc_auc_score
    >>> from skvae.datasets import load_digit_images, one_class_split
    >>> X_train, y_train = load_digit_images(subset="train", return_X_y=True)
    >>> X_test, y_test = load_digit_images(subset="test", return_X_y=True)
    >>> aucs = []
    >>> for digit in range(10):
    ...     X_fit, X_eval, is_inlier = one_class_split(
    ...         X_train, y_train, X_test, y_test, inlier_class=digit
    ...     )
    ...     det = IsolationForest(n_estimators=10, random_state=0).fit(X_fit)
    ...     aucs.append(roc_auc_score(is_inlier, det.score_samples(X_eval)))
    >>> X_fit.shape, X_eval.shape, int(is_inlier.sum())
    ((135, 64), (450, 64), 45)
    >>> bool(0.5 < sum(aucs) / len(aucs) <= 1.0)
    True
    """
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    check_consistent_length(X_train, y_train)
    check_consistent_length(X_test, y_test)
    is_train_inlier = y_train == inlier_class
    if not is_train_inlier.any():
        raise ValueError(
            f"inlier_class={inlier_class!r} does not occur in y_train, whose "
            f"classes are {np.unique(y_train).tolist()}."
        )
    is_inlier = (y_test == inlier_class).astype(np.int64)
    n_inliers = int(is_inlier.sum())
    if n_inliers in (0, len(is_inlier)):
        kind = "no inliers" if n_inliers == 0 else "no outliers"
        raise ValueError(
            f"With inlier_class={inlier_class!r} the test set has {kind}, so "
            "the ROC-AUC of the one-class protocol would be undefined. y_test "
            "must contain the inlier class and at least one other class."
        )
    train_rows = _contaminated_rows(
        np.flatnonzero(is_train_inlier),
        np.flatnonzero(~is_train_inlier),
        train_contamination,
        check_random_state(random_state),
    )
    return X_train[train_rows], X_test, is_inlier


def normal_classes_split(
    X_train,
    y_train,
    X_test,
    y_test,
    *,
    normal_classes,
    anomaly_share=0.05,
    max_train_per_class=None,
    train_contamination=0.0,
    random_state=None,
):
    """Split a labelled data set into several normal classes and rare anomalies.

    The multi-class protocol: the normal data is made of several classes (a
    detector must model several clusters), the anomalies are a small share of
    the test set drawn from the other classes. The detector is fitted on the
    training samples of the normal classes; the test set holds every test
    sample of the normal classes plus a random sample of the other classes'
    test samples, sized so that anomalies make up ``anomaly_share`` of it.

    Parameters
    ----------
    X_train : array-like of shape (n_train, ...)
        Training samples, flat or images.
    y_train : array-like of shape (n_train,)
        Their classes.
    X_test : array-like of shape (n_test, ...)
        Test samples.
    y_test : array-like of shape (n_test,)
        Their classes.
    normal_classes : array-like
        The classes that are normal; values of ``y_train``.
    anomaly_share : float in (0, 1), default=0.05
        Share of anomalies in the returned test set (at least one anomaly).
    max_train_per_class : int or None, default=None
        If given, at most this many training samples per normal class, drawn
        at random (to bound the cost of a benchmark).
    train_contamination : float in [0, 1), default=0.0
        Share of the returned training set drawn at random from the training
        samples of the other classes (unlabelled anomalies in the data to fit
        on, as in most real data). 0 gives a clean training set.
    random_state : int, RandomState instance or None, default=None
        Seed of the random draws (anomalies, and training samples with
        ``max_train_per_class``).

    Returns
    -------
    X_normal : ndarray of shape (n_fit, ...)
        The training samples to fit on.
    X_eval : ndarray of shape (n_eval, ...)
        The test samples, normal ones first.
    is_inlier : ndarray of shape (n_eval,), dtype int64
        1 for the normal classes' samples, 0 for the anomalies.

    Raises
    ------
    ValueError
        If a normal class is missing from ``y_train``, the test set has no
        normal or no anomalous samples, or ``anomaly_share`` is outside (0, 1).

    See Also
    --------
    one_class_split : The protocol with a single normal class.

    Examples
    --------
    >>> from skvae.datasets import load_digit_images, normal_classes_split
    >>> X_train, y_train = load_digit_images(subset="train", return_X_y=True)
    >>> X_test, y_test = load_digit_images(subset="test", return_X_y=True)
    >>> X_fit, X_eval, is_inlier = normal_classes_split(
    ...     X_train, y_train, X_test, y_test, normal_classes=[0, 1, 2, 3, 4],
    ...     random_state=0,
    ... )
    >>> X_fit.shape, X_eval.shape, int((1 - is_inlier).sum())
    ((675, 64), (238, 64), 12)
    """
    X_train, y_train = np.asarray(X_train), np.asarray(y_train)
    X_test, y_test = np.asarray(X_test), np.asarray(y_test)
    check_consistent_length(X_train, y_train)
    check_consistent_length(X_test, y_test)
    if not 0 < anomaly_share < 1:
        raise ValueError(f"anomaly_share={anomaly_share!r} must lie in (0, 1).")
    normal_classes = np.unique(np.asarray(normal_classes))
    missing = np.setdiff1d(normal_classes, y_train)
    if missing.size:
        raise ValueError(
            f"normal_classes {missing.tolist()} do not occur in y_train, whose "
            f"classes are {np.unique(y_train).tolist()}."
        )
    rng = check_random_state(random_state)
    train_rows = []
    for normal_class in normal_classes:
        rows = np.flatnonzero(y_train == normal_class)
        if max_train_per_class is not None and len(rows) > max_train_per_class:
            rows = np.sort(rng.choice(rows, max_train_per_class, replace=False))
        train_rows.append(rows)
    train_rows = _contaminated_rows(
        np.concatenate(train_rows),
        np.flatnonzero(~np.isin(y_train, normal_classes)),
        train_contamination,
        rng,
    )
    is_normal = np.isin(y_test, normal_classes)
    normal_rows, anomaly_pool = np.flatnonzero(is_normal), np.flatnonzero(~is_normal)
    if normal_rows.size == 0 or anomaly_pool.size == 0:
        raise ValueError(
            f"With normal_classes={normal_classes.tolist()} the test set has no "
            f"{'normal' if normal_rows.size == 0 else 'anomalous'} samples; "
            "y_test must hold both."
        )
    n_anomalies = anomalies_for_share(normal_rows.size, anomaly_share)
    n_anomalies = min(max(1, n_anomalies), anomaly_pool.size)
    anomaly_rows = np.sort(rng.choice(anomaly_pool, n_anomalies, replace=False))
    eval_rows = np.concatenate([normal_rows, anomaly_rows])
    is_inlier = np.r_[np.ones(normal_rows.size), np.zeros(n_anomalies)]
    return X_train[train_rows], X_test[eval_rows], is_inlier.astype(np.int64)


def anomalies_for_share(n_normal, share):
    """Return the number of anomalies that make ``share`` beside ``n_normal`` rows."""
    return round(share * n_normal / (1 - share))


def _contaminated_rows(normal_rows, anomaly_pool, contamination, rng):
    """Return the normal rows plus pool rows that make ``contamination`` of all.

    Clean (``contamination=0``) rows are returned unchanged, in order; mixed
    ones are shuffled so that the anomalies do not sit in one block.
    """
    if not 0 <= contamination < 1:
        raise ValueError(
            f"train_contamination={contamination!r} must lie in [0, 1): it is "
            "the share of anomalies in the training set."
        )
    if contamination == 0:
        return normal_rows
    n_anomalies = anomalies_for_share(normal_rows.size, contamination)
    if n_anomalies > anomaly_pool.size:
        raise ValueError(
            f"train_contamination={contamination!r} needs {n_anomalies} training "
            f"anomalies, but the other classes have only {anomaly_pool.size} "
            "training samples; pass a smaller share."
        )
    anomaly_rows = rng.choice(anomaly_pool, n_anomalies, replace=False)
    return rng.permutation(np.concatenate([normal_rows, anomaly_rows]))
