"""Helpers shared by the plotting functions."""

import math

import numpy as np

from ..scoring import latent_means
from ..utils._sklearn import check_is_fitted


def get_ax(ax):
    """Return ``ax``, or the Axes of a new figure when ``ax`` is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.figure().add_subplot()


def get_fig(fig, figsize):
    """Return ``fig`` cleared, or a new figure of ``figsize`` when it is None."""
    if fig is None:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize, layout="constrained")
    fig.clear()
    return fig


def image_shape(estimator):
    """``(C, H, W)`` to show one sample of ``estimator`` as an image.

    Dense models show square feature vectors as one-channel images.
    """
    check_is_fitted(estimator, "net_")
    shape = tuple(estimator.input_shape_)
    if len(shape) == 3:
        return shape
    side = math.isqrt(shape[0])
    if side * side != shape[0]:
        raise ValueError(
            f"Cannot show samples of input_shape_={shape} as images: "
            f"{shape[0]} features is not a square number."
        )
    return (1, side, side)


def as_displayable(images, shape):
    """Turn rows or ``(n, C, H, W)`` arrays into ``imshow`` input.

    One channel gives ``(n, H, W)``, three channels ``(n, H, W, 3)``
    clipped to [0, 1]; other channel counts are averaged.
    """
    images = np.asarray(images, dtype=np.float64).reshape(-1, *shape)
    if shape[0] == 3:
        return np.clip(images.transpose(0, 2, 3, 1), 0.0, 1.0)
    return images.mean(axis=1)


def latent_codes(estimator, X):
    """Posterior means of ``X``, shape ``(n_samples, latent_dim)``."""
    check_is_fitted(estimator, "net_")
    X = estimator._validate_input(X, reset=False)
    return latent_means(
        estimator.net_.module_,
        X,
        input_shape=estimator.input_shape_,
        device=estimator.net_.device,
    )


def inlier_mask(y_true):
    """Read labels as "is inlier": +1/-1 (as ``predict``), 1/0 or booleans."""
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "biuf":
        raise ValueError(
            "y_true must hold +1 (inlier) / -1 (outlier), 1 / 0 or booleans; "
            f"got dtype {y_true.dtype}."
        )
    return y_true > 0


# The score types that are log-likelihoods or bounds on one; the others are
# distances or sums of z-scores, without a unit.
NATS_SCORE_TYPES = frozenset(
    {"elbo", "iwae", "reconstruction", "reconstruction_probability"}
)


def score_label(estimator):
    """Axis label of ``score_samples`` values."""
    score_type = getattr(estimator, "score_type", "elbo")
    unit = ", nats" if score_type in NATS_SCORE_TYPES else ""
    return f"score_samples ({score_type}{unit}); lower = more anomalous"
