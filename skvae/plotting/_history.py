"""Training curves from the skorch history."""

from ..utils._sklearn import check_is_fitted
from ._utils import get_ax


def plot_training_curves(estimator, *, ax=None):
    """Plot the training loss per epoch, and the validation loss when recorded.

    The loss is the training objective of the estimator: the negative ELBO
    (with ``beta``) averaged over samples, plus the weighted classification
    loss for :class:`~skvae.VAEClassifier`. The validation loss exists when
    the estimator was fitted with ``early_stopping=True``.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator; its ``history_`` is read.
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.

    Returns
    -------
    ax : matplotlib Axes
        The Axes with one line per recorded loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_training_curves
    >>> ax = plot_training_curves(det)
    >>> len(ax.get_lines())  # the training loss of 3 epochs
    1
    """
    check_is_fitted(estimator, "net_")
    history = estimator.history_
    ax = get_ax(ax)
    epochs = history[:, "epoch"]
    ax.plot(epochs, history[:, "train_loss"], label="train loss")
    if any("valid_loss" in row for row in history):
        valid = [row.get("valid_loss") for row in history]
        kept = [(e, v) for e, v in zip(epochs, valid, strict=True) if v is not None]
        ax.plot(*zip(*kept, strict=True), label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative ELBO per sample)")
    ax.set_title("Training curves")
    ax.legend(fontsize="small")
    return ax
