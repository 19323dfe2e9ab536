"""Pictures of the latent space: a scatter of the codes, and traversals."""

import numpy as np

from ..scoring import decoded_means
from ..utils._sklearn import check_is_fitted
from ._utils import as_displayable, get_ax, get_fig, image_shape, latent_codes


def plot_latent_space(estimator, X, y=None, *, ax=None, **scatter_kwargs):
    """Scatter the posterior means of ``X`` in two dimensions.

    A 2-D latent space is shown as it is; a larger one is projected on the
    first two principal components of the codes of ``X``
    (:class:`~sklearn.decomposition.PCA`).

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator.
    X : array-like of shape (n_samples, n_features) or image array
        Samples to encode.
    y : array-like of shape (n_samples,), default=None
        Labels that colour the points, with a legend (up to 20 distinct
        labels; more are shown with a colour bar).
    ax : matplotlib Axes, default=None
        Axes to draw on; a new figure when None.
    **scatter_kwargs
        Passed to :meth:`matplotlib.axes.Axes.scatter`.

    Returns
    -------
    ax : matplotlib Axes
        The Axes with one scatter collection.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_latent_space
    >>> ax = plot_latent_space(det, X[:200], digits.target[:200])
    >>> len(ax.collections)
    1
    """
    Z = latent_codes(estimator, X)
    xlabel, ylabel = "z[0]", "z[1]"
    if Z.shape[1] == 1:
        Z = np.column_stack([Z[:, 0], np.zeros(len(Z))])
        ylabel = ""
    elif Z.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(Z)
        Z = pca.transform(Z)
        ratio = pca.explained_variance_ratio_
        xlabel = f"PC 1 of latent means ({ratio[0]:.0%} of variance)"
        ylabel = f"PC 2 of latent means ({ratio[1]:.0%} of variance)"
    ax = get_ax(ax)
    scatter_kwargs = {"s": 8, "alpha": 0.8, **scatter_kwargs}
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], **scatter_kwargs)
    else:
        classes, codes = np.unique(np.asarray(y), return_inverse=True)
        cmap = "tab10" if len(classes) <= 10 else "tab20"
        points = ax.scatter(
            Z[:, 0],
            Z[:, 1],
            c=codes,
            cmap=cmap,
            vmin=-0.5,
            vmax=(10 if len(classes) <= 10 else 20) - 0.5,
            **scatter_kwargs,
        )
        if len(classes) <= 20:
            handles, _ = points.legend_elements(num=list(range(len(classes))))
            ax.legend(
                handles,
                [str(c) for c in classes],
                title="label",
                fontsize="small",
                markerscale=0.8,
            )
        else:
            ax.figure.colorbar(points, ax=ax, label="label index")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Latent space (latent_dim={estimator.latent_dim})")
    return ax


def plot_latent_traversal(
    estimator, *, units=None, n_steps=7, span=3.0, cmap="gray", fig=None
):
    """Decode codes that vary one latent unit over ``[-span, span]``, others 0.

    Row i shows the decoder mean E[x|z] for ``z = t * e_i`` at ``n_steps``
    values t from ``-span`` to ``span``; 0 is the prior's mean, and ``span=3``
    covers 99.7% of the prior N(0, 1) of each unit.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator whose samples can be shown as images. A
        :class:`~skvae.DualVAETransformer`'s units are those of its whole
        code (foreground, then background), decoded by its foreground
        decoder; ``n_steps=2, span=5`` gives its thesis' exploration grid.
    units : list of int, default=None
        The latent units to vary, one row each; all of them when None.
    n_steps : int, default=7
        Number of values per unit (columns).
    span : float, default=3.0
        The values run from ``-span`` to ``span``.
    cmap : str, default="gray"
        Colour map of one-channel images.
    fig : matplotlib Figure, default=None
        Figure to draw into (it is cleared); a new one when None.

    Returns
    -------
    fig : matplotlib Figure
        The figure, whose Axes form a ``(len(units), n_steps)`` grid.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_latent_traversal
    >>> fig = plot_latent_traversal(det, units=[0, 1], n_steps=5)
    >>> len(fig.axes)  # 2 units x 5 steps
    10
    """
    check_is_fitted(estimator, "net_")
    shape = image_shape(estimator)
    module = estimator.net_.module_
    # A DualVAETransformer's code holds both its codes.
    latent_dim = getattr(estimator, "_n_features_out", estimator.latent_dim)
    names = (
        estimator.get_feature_names_out()
        if hasattr(estimator, "background_latent_dim")
        else [f"z[{unit}]" for unit in range(latent_dim)]
    )
    units = list(range(latent_dim)) if units is None else list(units)
    if not units or not all(0 <= u < latent_dim for u in units):
        raise ValueError(
            f"units={units!r} must list latent units in [0, {latent_dim})."
        )
    values = np.linspace(-span, span, n_steps)
    Z = np.zeros((len(units), n_steps, latent_dim), dtype=np.float32)
    for row, unit in enumerate(units):
        Z[row, :, unit] = values
    Z = Z.reshape(-1, latent_dim)
    images = decoded_means(module, Z, device=estimator.net_.device)
    images = as_displayable(images, shape)
    limits = min(0.0, float(images.min())), max(1.0, float(images.max()))
    # At least wide enough for the title.
    width = max(1.0 * n_steps + 0.6, 4.5)
    fig = get_fig(fig, figsize=(width, 1.0 * len(units) + 0.6))
    axes = fig.subplots(len(units), n_steps, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.imshow(images[k], cmap=cmap, vmin=limits[0], vmax=limits[1])
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, value in zip(axes[-1], values, strict=True):
        ax.set_xlabel(f"{value:+.1f}", fontsize="small")
    for ax, unit in zip(axes[:, 0], units, strict=True):
        ax.set_ylabel(names[unit], fontsize="small")
    fig.suptitle("Latent traversal: one unit varied, the others 0", fontsize="medium")
    return fig
