"""Grid of inputs, reconstructions and their explanation maps."""

import numpy as np

from ..explain import anomaly_map, grad2vae_map, gradient_attention_map, reconstruct
from ._utils import as_displayable, get_fig, image_shape

ATTENTION_MAPS = {"gradient": gradient_attention_map, "grad2vae": grad2vae_map}


def plot_reconstructions(
    estimator,
    X,
    *,
    attention="gradient",
    attention_kwargs=None,
    row_labels=None,
    cmap="gray",
    map_cmap="inferno",
    fig=None,
):
    """Show each image with its reconstruction, anomaly map and attention maps.

    One row per sample of ``X``; the columns are the input, its
    reconstruction (:func:`skvae.explain.reconstruct`), the per-pixel
    anomaly map (:func:`skvae.explain.anomaly_map`, summed over channels)
    and one column per attention map. Each map column shares one colour
    scale across rows, with a colour bar, so rows can be compared.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted skvae estimator. Dense (MLP) models need a square number
        of features to be shown as images, and ``attention=None``.
    X : array-like of shape (n_samples, n_features) or image array
        A few samples (one row each).
    attention : {"gradient", "grad2vae"}, list of them, or None, \
            default="gradient"
        The attention maps of the last columns:
        ``"gradient"`` is :func:`skvae.explain.gradient_attention_map`,
        ``"grad2vae"`` :func:`skvae.explain.grad2vae_map`; None shows none.
    attention_kwargs : dict, default=None
        Keyword arguments of each attention function, by name, e.g.
        ``{"gradient": {"layer": 0}}``.
    row_labels : list of str, default=None
        Text to the left of each row, e.g. the scores.
    cmap : str, default="gray"
        Colour map of the input and reconstruction columns (one channel).
    map_cmap : str, default="inferno"
        Colour map of the anomaly and attention maps.
    fig : matplotlib Figure, default=None
        Figure to draw into (it is cleared); a new one when None.

    Returns
    -------
    fig : matplotlib Figure
        The figure, whose Axes form an ``(n_samples, n_columns)`` grid.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.plotting import plot_reconstructions
    >>> layer_0 = {"gradient": {"layer": 0}}  # 8x8 images: the 4x4 block
    >>> fig = plot_reconstructions(det, X[:3], attention_kwargs=layer_0)
    >>> [ax.get_title() for ax in fig.axes[:4]]  # the columns of each row
    ['input', 'reconstruction', 'anomaly map (-log p, nats)', 'gradient attention']
    """
    names = [] if attention is None else [attention]
    if attention is not None and not isinstance(attention, str):
        names = list(attention)
    if not set(names) <= set(ATTENTION_MAPS):
        raise ValueError(
            f"attention={attention!r} must be one of {sorted(ATTENTION_MAPS)}, "
            "a list of them, or None."
        )
    attention_kwargs = attention_kwargs or {}
    shape = image_shape(estimator)
    X = np.asarray(X)
    columns = {
        "input": as_displayable(estimator._validate_input(X, reset=False), shape),
        "reconstruction": as_displayable(reconstruct(estimator, X), shape),
        "anomaly map (-log p, nats)": anomaly_map(estimator, X)
        .reshape(len(X), *shape)
        .sum(axis=1),
    }
    for name in names:
        columns[f"{name} attention"] = ATTENTION_MAPS[name](
            estimator, X, **attention_kwargs.get(name, {})
        )
    n_rows, n_cols = len(X), len(columns)
    fig = get_fig(fig, figsize=(1.6 * n_cols + 0.8, 1.5 * n_rows + 0.5))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for j, (title, images) in enumerate(columns.items()):
        is_map = j >= 2
        # Maps share one scale per column; images one scale that shows [0, 1]
        # data as is and does not clip anything else.
        source = images if is_map else columns["input"]
        limits = (images.min(), images.max()) if is_map else _image_limits(source)
        for i in range(n_rows):
            ax = axes[i, j]
            shown = ax.imshow(
                images[i],
                cmap=map_cmap if is_map else cmap,
                vmin=limits[0],
                vmax=limits[1],
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize="small")
        if is_map:
            fig.colorbar(shown, ax=axes[:, j], location="bottom", shrink=0.9)
    if row_labels is not None:
        for ax, label in zip(axes[:, 0], row_labels, strict=True):
            ax.set_ylabel(label, fontsize="small")
    return fig


def _image_limits(images):
    return min(0.0, float(images.min())), max(1.0, float(images.max()))


def plot_dual_reconstructions(
    estimator,
    X,
    *,
    with_background_removed=False,
    row_labels=None,
    cmap="gray",
    fig=None,
):
    """Show what a :class:`~skvae.DualVAETransformer` makes of each image.

    The thesis' reconstruction figure: one row per sample of ``X``, with the
    input, the foreground decoder's reconstruction of it, the pooled target
    g(x) and the background decoder's reconstruction of g(x). Each pair of
    columns shares one colour scale.

    Parameters
    ----------
    estimator : fitted DualVAETransformer
        The fitted dual VAE.
    X : array-like of shape (n_samples, n_features) or image array
        A few samples (one row each).
    with_background_removed : bool, default=False
        Add a column after the foreground reconstruction: the reconstruction
        with the background code set to its "no background" state
        (``reconstruct_foreground(X, remove_background=True)``).
    row_labels : list of str, default=None
        Text to the left of each row, e.g. the true background state.
    cmap : str, default="gray"
        Colour map.
    fig : matplotlib Figure, default=None
        Figure to draw into (it is cleared); a new one when None.

    Returns
    -------
    fig : matplotlib Figure
        The figure, whose Axes form an ``(n_samples, 4)`` grid (5 columns
        with ``with_background_removed``).

    Examples
    --------
    >>> from skvae import DualVAETransformer
    >>> from skvae.datasets import make_cells
    >>> from skvae.plotting import plot_dual_reconstructions
    >>> X, truth = make_cells(64, random_state=0)
    >>> dual = DualVAETransformer(latent_dim=2, max_epochs=1, random_state=0).fit(X)
    >>> fig = plot_dual_reconstructions(dual, X[:2])
    >>> len(fig.axes)  # 2 rows of 4 panels
    8
    """
    if not hasattr(estimator, "reconstruct_background"):
        raise TypeError(
            f"plot_dual_reconstructions needs a fitted DualVAETransformer, got "
            f"{type(estimator).__name__}; use plot_reconstructions for one VAE."
        )
    shape = image_shape(estimator)
    pooled_shape = estimator.net_.module_.background_target.output_shape
    X = np.asarray(X)
    inputs = as_displayable(estimator._validate_input(X, reset=False), shape)
    columns = {
        "input": inputs,
        "foreground reconstruction": as_displayable(
            estimator.reconstruct_foreground(X), shape
        ),
    }
    if with_background_removed:
        columns["background removed"] = as_displayable(
            estimator.reconstruct_foreground(X, remove_background=True), shape
        )
    n_images = len(columns)
    columns["pooled target g(x)"] = as_displayable(
        estimator.background_target(X), pooled_shape
    )
    columns["background reconstruction"] = as_displayable(
        estimator.reconstruct_background(X), pooled_shape
    )
    n_rows, n_cols = len(X), len(columns)
    fig = get_fig(fig, figsize=(1.75 * n_cols, 1.6 * n_rows + 0.4))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for j, (title, images) in enumerate(columns.items()):
        # Images on the scale of the input, the pooled pair on [0, 1].
        limits = _image_limits(inputs) if j < n_images else (0.0, 1.0)
        for i in range(n_rows):
            ax = axes[i, j]
            ax.imshow(images[i], cmap=cmap, vmin=limits[0], vmax=limits[1])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize="small")
    if row_labels is not None:
        for ax, label in zip(axes[:, 0], row_labels, strict=True):
            ax.set_ylabel(label, fontsize="small")
    return fig
