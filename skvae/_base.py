"""Behaviour shared by all skvae estimators: parameters, input handling, fitting.

This class should not be used directly; use the estimators that derive from it.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit

from ._net import VAENet
from ._scoring import elbo_scores
from ._validation import check_unit_interval, resolve_input_shape, split_image_shape
from .nn import make_vae
from .utils._sklearn import (
    Interval,
    Options,
    StrOptions,
    check_is_fitted,
    validate_data,
)
from .utils._torch import seeded

DEFAULT_HIDDEN_DIMS = {"conv": (32, 64, 128), "mlp": (256, 128)}
SCORE_BATCH_SIZE = 256


class _BaseVAE(BaseEstimator):
    """Base class of the skvae estimators.

    Holds the shared hyperparameters, turns input arrays into module input,
    builds and trains the skorch :class:`~skvae._net.VAENet`, and computes the
    per-sample ELBO. Subclasses add the verbs of their task.
    """

    _parameter_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"auto", "conv", "mlp"})],
        "image_shape": [tuple, list, None],
        "hidden_dims": [tuple, list, None],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "decoder_var": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"learned"}),
        ],
        "beta": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, Options(object, {None})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        latent_dim=16,
        *,
        architecture="auto",
        image_shape=None,
        hidden_dims=None,
        kernel_size=3,
        likelihood="gaussian",
        decoder_var="learned",
        beta=1.0,
        max_epochs=100,
        batch_size=64,
        lr=1e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.image_shape = image_shape
        self.hidden_dims = hidden_dims
        self.kernel_size = kernel_size
        self.likelihood = likelihood
        self.decoder_var = decoder_var
        self.beta = beta
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- input ---------------------------------------------------------------

    def _validate_input(self, X, *, reset):
        """Validate ``X`` and return it as a 2-D float32 array.

        Image arrays are flattened, ``input_shape_`` is set on ``reset``,
        uint8 input is scaled by 1/255, and the value range is checked
        against the likelihood.
        """
        X, array_image_shape = split_image_shape(X)
        is_uint8 = getattr(X, "dtype", None) == np.uint8
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        if is_uint8:
            X = X / np.float32(255)
        if reset:
            self.input_shape_ = resolve_input_shape(
                self.architecture, self.image_shape, array_image_shape, X.shape[1]
            )
        elif (
            array_image_shape is not None
            and len(self.input_shape_) == 3
            and array_image_shape != self.input_shape_
        ):
            raise ValueError(
                f"X has images of shape {array_image_shape}, but "
                f"{type(self).__name__} was fitted on shape {self.input_shape_}."
            )
        if self.likelihood == "bernoulli":
            check_unit_interval(X, self.likelihood)
        return X

    # -- fitting -------------------------------------------------------------

    def _fit_vae(self, X, y=None):
        """Validate ``X``, build the module and the skorch net, and train it."""
        X = self._validate_input(X, reset=True)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        with seeded(seed, self.device):
            self.net_ = self._build_net(seed)
            self.net_.fit(X.reshape(-1, *self.input_shape_), y)
        return X

    def _build_net(self, seed):
        architecture = "conv" if len(self.input_shape_) == 3 else "mlp"
        hidden_dims = self.hidden_dims or DEFAULT_HIDDEN_DIMS[architecture]
        module = make_vae(
            self.input_shape_,
            self.latent_dim,
            hidden_dims=tuple(hidden_dims),
            kernel_size=self.kernel_size,
            likelihood=self.likelihood,
            decoder_var=self.decoder_var,
        )
        train_split, callbacks = None, []
        if self.early_stopping:
            train_split = ValidSplit(self.validation_fraction, random_state=seed)
            callbacks.append(
                EarlyStopping(
                    patience=self.n_iter_no_change,
                    threshold=self.tol,
                    load_best=True,
                    sink=print if self.verbose else _silent,
                )
            )
        if self.verbose >= 2:
            callbacks.append(ProgressBar())
        return VAENet(
            module,
            criterion__beta=self.beta,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            train_split=train_split,
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose),
        )

    @property
    def history_(self):
        """The skorch :class:`~skorch.history.History` of the last fit."""
        check_is_fitted(self, "net_")
        return self.net_.history

    # -- scoring -------------------------------------------------------------

    def _module_scores(self, X):
        """Per-sample ELBO of validated rows ``X``."""
        return elbo_scores(
            self.net_.module_,
            X,
            input_shape=self.input_shape_,
            batch_size=SCORE_BATCH_SIZE,
            device=self.net_.device,
        )

    def score_samples(self, X):
        """Per-sample evidence lower bound (ELBO) on log p(x).

        The ELBO is evaluated at the posterior mean, so it is deterministic.
        Higher means more typical of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples; images may be ``(n, H, W)`` or ``(n, C, H, W)``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The ELBO of each sample, in nats.
        """
        check_is_fitted(self)
        return self._module_scores(self._validate_input(X, reset=False))

    def score(self, X, y=None):
        """Mean per-sample ELBO of ``X``; higher is better.

        This lets ``GridSearchCV`` compare settings without labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean ELBO in nats per sample.
        """
        return float(np.mean(self.score_samples(X)))


def _silent(*args, **kwargs):
    """Discard skorch's messages (the sink when ``verbose=0``)."""
