"""Foreground/background separation with the dual ("double ELBO") VAE."""

import math
from numbers import Integral, Real

import numpy as np

from ._base import fill_doc, fit_all_or_nothing
from ._transformer import VAETransformer
from .nn import make_dual_vae
from .nn._dual import MIXING_MODES, pooled_shape
from .scoring import (
    background_reconstructions,
    background_targets,
    decoded_means,
    latent_means,
    reconstructed_means,
)
from .utils._sklearn import (
    Interval,
    StrOptions,
    _check_feature_names_in,
    check_is_fitted,
)

__all__ = ["DualVAETransformer"]

# "auto" sizes, as shares of the longer image side: the thesis' 6- and
# 30-pixel windows on 60x60 images.
AUTO_FOREGROUND_FIELD = 1 / 10
AUTO_BACKGROUND_FIELD = 1 / 2
# "auto" background weight: this share of the pixels per pooled value (the
# thesis' 450 for 30x30 windows).
AUTO_WEIGHT_PER_POOLED_PIXEL = 0.5


@fill_doc
class DualVAETransformer(VAETransformer):
    """Separate sharp, local foreground from blurry, large-scale background signal.

    The dual VAE of Eichen's thesis ("Separation of foreground and
    background signal in variational autoencoders", section 2.9), built for
    two-photon microscopy, where out-of-focus cells light up large regions
    of the frame. Two encoders read each image: a foreground encoder whose
    receptive field is about one foreground object, and a background encoder
    with a large one. One dense layer mixes the two codes; the foreground
    decoder reconstructs the image and the background decoder a pooled,
    squashed copy g(x) that keeps mostly the background. Training maximises
    ``ELBO_1 + w * ELBO_2``.

    ``transform`` returns the posterior means of both codes in one array,
    the foreground code first and the background code in the **last**
    ``background_latent_dim`` columns (``get_feature_names_out`` names them
    ``fg0, ...`` and ``bg0, ...``).

    Parameters
    ----------
    %(vae_parameters)s
    background_latent_dim : int, default=1
        Size of the background code (``latent_dim`` is the foreground's).
    foreground_receptive_field : int or "auto", default="auto"
        Side in pixels of the window each foreground encoder feature sees;
        about the size of one foreground object. ``"auto"`` is a tenth of
        the longer image side (6 on 60x60 images, as in the thesis).
    background_receptive_field : int or "auto", default="auto"
        The same for the background encoder; ``"auto"`` is half the longer
        image side (30 on 60x60 images).
    pool_size : int or "auto", default="auto"
        Side of the mean-pooling windows of the background target g(x);
        ``"auto"`` is half the longer image side, so g(x) has 2x2 values.
    target_slope : float, default=12.0
        Slope of the squashing of the pooled target,
        ``g(x) = sigmoid(target_slope * (mean - target_center))``.
    target_center : float, default=0.5
        Center of that squashing; the mean pixel value that reads as
        "half active".
    background_weight : float or "auto", default="auto"
        Weight ``w`` of the background ELBO, which has far fewer values than
        the image. ``"auto"`` is half the number of pixels per pooled value
        (450 for 30x30 windows, the thesis' value; it reports 100 to 1000
        to work alike).
    mixing : {"full", "into_foreground"}, default="full"
        ``"full"`` (the thesis) lets each decoder see both codes through the
        mixing layer. ``"into_foreground"`` lets only the foreground decoder
        see both; the background decoder sees the background code alone,
        so that code must carry the background.
    weight_background_kl : bool, default=False
        Whether ``background_weight`` also weighs the background KL term.
        ``False`` weighs only the log-likelihood of g(x) (each pooled value
        stands for many pixels; the code's KL is paid once). ``True`` weighs
        all of ``ELBO_2``, as the thesis does: encoding the background then
        costs ``w`` times its KL, and the background code collapsed onto the
        prior (KL ~0) in all three of the thesis' scenarios
        (docs/dual_vae.md).

    Attributes
    ----------
    %(vae_attributes)s
    background_off_code_ : ndarray of shape (background_latent_dim,)
        The background code that stands for "no background": that of the
        training image whose reconstructed g(x) is darkest. Used by
        ``reconstruct_foreground(X, remove_background=True)``.

    See Also
    --------
    VAETransformer : One VAE with one code.
    skvae.datasets.make_cells : The thesis' synthetic microscopy images.
    skvae.plotting.plot_dual_reconstructions : Input, both reconstructions
        and the pooled target.

    Notes
    -----
    ``score_samples`` and ``score`` return the model's combined ELBO,
    ``ELBO_1 + w * ELBO_2`` at the posterior mean, the training objective
    (each pooled value of g(x) counts like ``w`` pixels; with
    ``weight_background_kl=False`` the background KL counts once). Images must be at
    least as large as a foreground window to be separated meaningfully;
    flat input that is not a square image is read as a one-row image, so
    the estimator still works on any 2-D array.

    Examples
    --------
    >>> from skvae import DualVAETransformer
    >>> from skvae.datasets import make_cells
    >>> X, truth = make_cells(200, scenario="X90", random_state=0)
    >>> dual = DualVAETransformer(
    ...     latent_dim=4, likelihood="bernoulli", max_epochs=1, random_state=0
    ... ).fit(X)
    >>> dual.transform(X).shape
    (200, 5)
    >>> dual.get_feature_names_out()
    array(['fg0', 'fg1', 'fg2', 'fg3', 'bg0'], dtype=object)
    >>> dual.reconstruct_background(X[:3]).shape
    (3, 2, 2)
    """

    _parameter_constraints: dict = {
        **VAETransformer._parameter_constraints,
        "architecture": [StrOptions({"auto", "conv"})],
        "background_latent_dim": [Interval(Integral, 1, None, closed="left")],
        "foreground_receptive_field": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "background_receptive_field": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "pool_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "target_slope": [Interval(Real, 0, None, closed="neither")],
        "target_center": [Real],
        "background_weight": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "mixing": [StrOptions(set(MIXING_MODES))],
        "weight_background_kl": ["boolean"],
    }

    _module_factory = staticmethod(make_dual_vae)

    def __init__(
        self,
        latent_dim=16,
        *,
        architecture="auto",
        image_shape=None,
        hidden_dims=None,
        kernel_size=3,
        activation="leaky_relu",
        batch_norm=False,
        pad_to=None,
        likelihood="gaussian",
        decoder_var="learned",
        beta="auto",
        max_epochs="auto",
        batch_size=64,
        lr=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="cpu",
        random_state=None,
        verbose=0,
        warm_start=False,
        background_latent_dim=1,
        foreground_receptive_field="auto",
        background_receptive_field="auto",
        pool_size="auto",
        target_slope=12.0,
        target_center=0.5,
        background_weight="auto",
        mixing="full",
        weight_background_kl=False,
    ):
        super().__init__(
            latent_dim,
            architecture=architecture,
            image_shape=image_shape,
            hidden_dims=hidden_dims,
            kernel_size=kernel_size,
            activation=activation,
            batch_norm=batch_norm,
            pad_to=pad_to,
            likelihood=likelihood,
            decoder_var=decoder_var,
            beta=beta,
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.background_latent_dim = background_latent_dim
        self.foreground_receptive_field = foreground_receptive_field
        self.background_receptive_field = background_receptive_field
        self.pool_size = pool_size
        self.target_slope = target_slope
        self.target_center = target_center
        self.background_weight = background_weight
        self.mixing = mixing
        self.weight_background_kl = weight_background_kl

    # -- fitting -------------------------------------------------------------

    @fit_all_or_nothing
    def fit(self, X, y=None):
        """Fit the dual VAE on images ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training images, ``(n, H, W)`` or ``(n, C, H, W)``, or flat rows.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._validate_input(X, reset=True)
        self._fit_vae(X)
        self.background_off_code_ = self._darkest_background_code(X)
        return self

    def _darkest_background_code(self, X):
        """Return the background code of the image with the darkest g(x) reconstruction.

        It stands for "no background" when the background signal is bright
        on a dark ground (fluorescence); ``reconstruct_foreground(...,
        remove_background=True)`` decodes with it.
        """
        brightness = self._map_module(background_reconstructions, X).mean(axis=1)
        # Scores are the same bits in any grouping, so encoding the one row
        # again equals its row of a full pass.
        darkest = np.argmin(brightness)
        code = self._map_module(latent_means, X[darkest : darkest + 1])[0]
        return code[self.latent_dim :].astype(np.float32)

    def _resolve_input_shape(self, array_image_shape, n_features, rows=None):
        """Return an image shape; flat rows that are no square image become one row."""
        shape = super()._resolve_input_shape(array_image_shape, n_features, rows)
        return shape if len(shape) == 3 else (1, 1, n_features)

    def _module_kwargs(self):
        """Arguments of :func:`skvae.nn.make_dual_vae`, with "auto" sizes resolved."""
        kwargs = super()._module_kwargs()
        unsupported = {"activation", "batch_norm", "pad_to"} & set(kwargs)
        if unsupported:
            raise ValueError(
                f"DualVAETransformer does not take {', '.join(sorted(unsupported))}; "
                "leave them at their defaults."
            )
        _, height, width = self.input_shape_
        pool_size = self._auto_size(self.pool_size, AUTO_BACKGROUND_FIELD)
        n_pooled = math.prod(pooled_shape((1, height, width), pool_size))
        weight = self.background_weight
        if weight == "auto":
            weight = AUTO_WEIGHT_PER_POOLED_PIXEL * height * width / n_pooled
        kwargs.update(
            background_latent_dim=self.background_latent_dim,
            foreground_receptive_field=self._auto_size(
                self.foreground_receptive_field, AUTO_FOREGROUND_FIELD
            ),
            background_receptive_field=self._auto_size(
                self.background_receptive_field, AUTO_BACKGROUND_FIELD
            ),
            pool_size=pool_size,
            target_slope=self.target_slope,
            target_center=self.target_center,
            background_weight=float(weight),
            mixing=self.mixing,
            weight_background_kl=self.weight_background_kl,
        )
        return kwargs

    def _auto_size(self, value, share_of_side):
        """Resolve an "auto" window size: ``share_of_side`` of the longer side."""
        if value != "auto":
            return value
        return max(1, round(share_of_side * max(self.input_shape_[1:])))

    # -- outputs -------------------------------------------------------------

    def score_samples(self, X):
        """Per-sample combined ELBO, ``ELBO_1 + w * ELBO_2``, at the posterior mean.

        ``ELBO_1`` bounds log p(x) of the image, ``ELBO_2`` log r(g(x)) of
        its pooled target; ``w`` is the fitted background weight. Higher
        means more typical of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples; images may be ``(n, H, W)`` or ``(n, C, H, W)``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The combined ELBO of each sample, in nats.
        """
        return super().score_samples(X)

    def reconstruct_foreground(self, X, *, remove_background=False):
        """Reconstruct ``X`` with the foreground decoder, from both codes' means.

        The foreground decoder reconstructs the whole image, background
        included (it sees the background code through the mixing layer).
        With ``remove_background=True`` each image's background code is
        replaced by ``background_off_code_``, the code of the training image
        whose background reconstruction is darkest: the image as it would
        look without background signal, if the model separates the two.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.
        remove_background : bool, default=False
            Decode with the "no background" code instead of each image's own.

        Returns
        -------
        X_reconstructed : ndarray
            Decoder means, shaped like the training input's samples.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        if remove_background:
            Z = self._map_module(latent_means, X).astype(np.float32)
            Z[:, self.latent_dim :] = self.background_off_code_
            means = decoded_means(self.net_.module_, Z, device=self.net_.device)
        else:
            means = self._map_module(reconstructed_means, X)
        return means.reshape(len(X), *self.sample_shape_)

    def reconstruct_background(self, X):
        """Reconstruct the pooled target g(x) with the background decoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        G_reconstructed : ndarray
            Background decoder means, shaped like :meth:`background_target`.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        return self._as_pooled(self._map_module(background_reconstructions, X))

    def background_target(self, X):
        """Return the pooled, squashed images g(x) the background decoder learns.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        G : ndarray
            ``(n, h, w)`` for ``(n, H, W)`` training input, ``(n, C, h, w)``
            for ``(n, C, H, W)``, and flat rows for flat input, where ``h``
            and ``w`` count the pooling windows.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        return self._as_pooled(self._map_module(background_targets, X))

    def _as_pooled(self, flat):
        """Shape flat pooled rows like the training input's samples."""
        channels, height, width = self.net_.module_.background_target.output_shape
        if len(self.sample_shape_) == 2:
            return flat.reshape(len(flat), height, width)
        if len(self.sample_shape_) == 3:
            return flat.reshape(len(flat), channels, height, width)
        return flat

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: ``fg0, ...`` then ``bg0, ...``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Only checked against the names seen in ``fit``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The foreground code's names, then the background code's.
        """
        check_is_fitted(self)
        _check_feature_names_in(self, input_features, generate_names=False)
        names = [f"fg{i}" for i in range(self.latent_dim)]
        names += [f"bg{i}" for i in range(self.background_latent_dim)]
        return np.asarray(names, dtype=object)

    @property
    def _n_features_out(self):
        """Number of output features: both codes."""
        return self.latent_dim + self.background_latent_dim
