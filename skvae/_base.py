"""Behaviour shared by all skvae estimators: parameters, input handling, fitting.

This class should not be used directly; use the estimators that derive from it.
"""

import copy
import functools
import math
import warnings
from collections.abc import Callable
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.dataset import ValidSplit

from ._callbacks import FiniteLossGuard, TrainingDiverged, TrainingInterruptedWarning
from ._persistence import warn_if_incompatible
from ._validation import (
    ValidatedRows,
    check_unit_interval,
    is_uint8,
    plain_rows,
    resolve_input_shape,
    split_image_shape,
)
from ._version import __version__
from .net import DataParallelNet, VAENet
from .nn import make_vae
from .scoring import elbo_scores
from .scoring._copies import pass_granularity, scoring_copy
from .utils._distributed import agree_on_seed
from .utils._sklearn import (
    Interval,
    StrOptions,
    _fit_context,
    check_array,
    check_is_fitted,
    validate_data,
)
from .utils._torch import seeded

# max_epochs="auto": about AUTO_TRAINING_STEPS optimizer steps, within
# [AUTO_MIN_EPOCHS, AUTO_MAX_EPOCHS] passes. The cap keeps small data sets
# from being memorised: a detector's threshold comes from training scores.
AUTO_TRAINING_STEPS = 1500
AUTO_MIN_EPOCHS = 2
AUTO_MAX_EPOCHS = 100
# Arrays with more rows are validated batch by batch when scored.
LAZY_VALIDATION_ROWS = 4096
# Two conv blocks matched three blocks' one-class AUC in 60% of the fit time
# (benchmarks/architecture.py, docs/performance.md).
DEFAULT_HIDDEN_DIMS = {"conv": (32, 64), "mlp": (256, 128)}


_DOCS = {
    "vae_parameters": """    latent_dim : int, default=16
        Size of the latent code.
    architecture : {"auto", "conv", "mlp", "grad2vae"}, default="auto"
        Network type. ``"auto"`` uses convolutions for image input (an image
        array, ``image_shape``, or a square number of features with a side of
        8 or more whose grid neighbours correlate as pixels do, so that 64
        flat digit pixels are 8x8 images and 256 or 1,024 embedding features
        stay a table; below 8 rows every square number is an image) and
        dense layers otherwise; ``input_shape_`` shows which. ``"conv"``
        reads any square number of features as an image. ``"grad2vae"`` builds the
        Grad2VAE of Abukmeil et al. (2022), :class:`skvae.nn.Grad2VAE`: one
        full-size and one stride-2 convolution (``hidden_dims`` of two
        channel counts), and an attention from the curvature of the latent
        code fused into the decoder, trained with an extra loss; flat rows
        that are no square image are read as one-row images. Not available
        in :class:`VAEClassifier`.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` holds flattened
        images. ``None`` infers it from the input.
    hidden_dims : tuple of int, default=None
        Channels of the stride-2 convolutions, or widths of the dense layers.
        ``None`` means ``(32, 64)`` for convolutions and ``(256, 128)``
        for dense layers. :class:`VAEOutlierDetector`'s transformation
        classifier has the same convolutions and one more of twice the last
        width.
    kernel_size : int, default=3
        Odd kernel size of the convolutions.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Hidden activation of the convolutional and dense architectures
        (LeakyReLU with slope 0.2, or ReLU).
    batch_norm : bool, default=False
        Batch normalisation before the activation of each hidden
        convolution (convolutional architecture only). It normalises with batch
        statistics while training only: scores, ``transform`` and
        ``predict`` use the running averages, so they are deterministic and
        a sample's result does not depend on the other rows it is passed
        with.
    pad_to : int or tuple of int, default=None
        Side ``S`` or ``(H, W)`` to zero-pad images to (centred) before the
        first convolution, e.g. 32 for 28x28 images to give stride-2 layers
        exact halvings (32, 16, 8, 4). The decoder builds images of the
        padded size and returns their centre crop: the likelihood, scores
        and reconstructions stay on the input's pixels. Convolutional
        architecture only.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Decoder distribution p(x|z). ``"bernoulli"`` needs values in [0, 1].
    decoder_var : float, "learned" or "learned_per_feature", default="learned"
        Variance of the Gaussian likelihood. ``"learned"`` sets one shared
        variance at every training step to its closed-form optimum, the
        batch's mean squared reconstruction error (Rybkin et al. 2021; Dai &
        Wipf 2019 learn it by gradient descent instead), and scores with a
        running average of it; this sets the balance between reconstruction
        and KL from the data. ``"learned_per_feature"`` does the same per
        feature (pixel), floored at 1e-3, so precisely reconstructed features
        weigh more; ``decoder_var_`` is then an array of the input's shape.
    beta : float or "auto", default="auto"
        Weight of the KL term during training (beta-VAE). ``"auto"`` is 1,
        the ELBO itself, and 0.5 in ``VAEOutlierDetector``, whose scores
        tell anomalies apart better when the VAE spends more of its code on
        the data (measured on every benchmark table, docs/benchmark.md).
        Scores always use the true ELBO (beta = 1); to read the ELBO as a
        bound on the log-likelihood (bits per dimension), train with
        ``beta=1``.
    max_epochs : int or "auto", default="auto"
        Number of passes over the training data. What counts is the number
        of optimizer steps, ``max_epochs * n_samples / batch_size``: small
        data sets need many epochs, large ones fewer. ``"auto"`` trains for
        about 1500 steps (600 in ``VAEOutlierDetector``, which trains a
        second network), within 2 to 100 epochs.
    batch_size : int, default=64
        Samples per training step.
    lr : float, default=1e-3
        Learning rate of the Adam optimizer.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the
        validation loss has not improved by ``tol`` (relative) for
        ``n_iter_no_change`` epochs; the best epoch's weights are restored.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before early stopping.
    tol : float, default=1e-4
        Minimal relative improvement of the validation loss.
    device : str or torch.device, default="cpu"
        Torch device to train and score on, e.g. ``"cuda"`` or ``"cuda:1"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling, latent sampling during
        training and the validation split. Pass an int for reproducible
        fits; scoring is deterministic regardless.
    verbose : int, default=0
        0 is silent, 1 prints a table per epoch (loss, validation loss,
        duration), 2 adds a progress bar per epoch.
    warm_start : bool, default=False
        If True and the network built by the previous ``fit`` matches the
        current parameters and input shape, ``fit`` continues training its
        weights for ``max_epochs`` more epochs instead of starting afresh.
        The training settings are the current ones (``max_epochs``, ``lr``,
        ``beta``, ``batch_size``, ...), with a fresh optimizer as in
        scikit-learn's warm-started networks; ``history_`` runs on.
""".strip(),
    "vae_attributes": """    net_ : skvae.net.VAENet
        The fitted skorch net; ``net_.module_`` is the torch VAE.
    input_shape_ : tuple of int
        Shape of one sample as the network sees it: ``(C, H, W)`` for the
        convolutional architecture, ``(n_features,)`` for the dense one.
    sample_shape_ : tuple of int
        Shape of one sample of the ``X`` given to ``fit``: ``(n_features,)``
        for rows, ``(H, W)`` or ``(C, H, W)`` for image arrays. Reconstructions
        and exported scorers take and give samples of this shape.
    history_ : skorch.history.History
        Per-epoch training record (losses, durations) of the skorch net.
    training_interrupted_ : bool
        Whether Ctrl-C stopped the training of a network before its planned
        epochs (``fit`` then finished with the weights trained so far and
        warned with :class:`skvae.TrainingInterruptedWarning`).
    decoder_var_ : float, ndarray or None
        Variance of the fitted Gaussian likelihood (the learned one with
        ``decoder_var="learned"``; an array of the input's shape with
        ``decoder_var="learned_per_feature"``); ``None`` for the Bernoulli
        likelihood.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit. Defined only when ``X`` has
        feature names that are all strings.

""".strip(),
}


def fit_all_or_nothing(fit):
    """Wrap an estimator's ``fit``: parameters validated, and all or nothing.

    scikit-learn's ``_fit_context`` validates the parameters; on any
    exception, KeyboardInterrupt included, at any stage of ``fit``
    (training, the score's fit, the thresholds), the estimator is put back
    exactly as it was before the call: unfitted if it was, or whole with its
    previous model if it was fitted. ``fit`` only rebinds attributes, never
    changes the previous fitted objects in place, so the previous
    attributes themselves are what is restored.
    """
    validated_fit = _fit_context(prefer_skip_nested_validation=True)(fit)

    @functools.wraps(fit)
    def all_or_nothing(self, *args, **kwargs):
        state = self.__dict__.copy()
        try:
            return validated_fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    return all_or_nothing


def fill_doc(cls):
    """Put the parameters and attributes all estimators share into a docstring.

    The shared entries are written once, here, and appear in each estimator's
    docstring where it says ``%(vae_parameters)s`` and ``%(vae_attributes)s``.
    """
    cls.__doc__ = cls.__doc__ % _DOCS
    return cls


class _BaseVAE(BaseEstimator):
    """Base class of the skvae estimators.

    Holds the shared hyperparameters, turns input arrays into module input,
    builds and trains the skorch :class:`~skvae.net.VAENet`, and computes the
    per-sample ELBO. Subclasses add the verbs of their task.
    """

    _parameter_constraints: dict = {
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"auto", "conv", "mlp", "grad2vae"})],
        "image_shape": [tuple, list, None],
        "hidden_dims": [tuple, list, None],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"leaky_relu", "relu"})],
        "batch_norm": ["boolean"],
        "pad_to": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "decoder_var": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"learned", "learned_per_feature"}),
        ],
        "beta": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

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
    ):
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.image_shape = image_shape
        self.hidden_dims = hidden_dims
        self.kernel_size = kernel_size
        self.activation = activation
        self.batch_norm = batch_norm
        self.pad_to = pad_to
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
        self.warm_start = warm_start

    # -- input ---------------------------------------------------------------

    def _validate_input(self, X, y="no_validation", *, reset):
        """Validate ``X`` (and ``y`` if given); return ``X`` as a 2-D float32 array.

        Image arrays are flattened, ``input_shape_`` is set on ``reset``,
        uint8 input is scaled by 1/255, and the value range is checked
        against the likelihood. With ``y``, returns ``(X, y)``.
        """
        with_y = not (isinstance(y, str) and y == "no_validation")
        if not with_y and _is_large_array(X):
            return self._validate_lazily(X, reset=reset)
        sample_shape = getattr(X, "shape", (None, None))[1:]
        X, array_image_shape = split_image_shape(X)
        pixels = is_uint8(X)
        validated = None
        if not (reset or with_y or hasattr(self, "feature_names_in_")):
            validated = plain_rows(X, getattr(self, "n_features_in_", None))
        if validated is None:
            validated = validate_data(self, X, y, reset=reset, dtype=np.float32)
        X, y = validated if with_y else (validated, None)
        if pixels:
            X = X / np.float32(255)
        if reset:
            self.sample_shape_ = tuple(sample_shape) or (X.shape[1],)
            self.input_shape_ = self._resolve_input_shape(
                array_image_shape, X.shape[1], rows=X
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
        return (X, y) if with_y else X

    def _resolve_input_shape(self, array_image_shape, n_features, rows=None):
        """Shape of one sample as the module sees it; subclasses may override."""
        return resolve_input_shape(
            self.architecture, self.image_shape, array_image_shape, n_features, rows
        )

    def _validate_lazily(self, X, *, reset):
        """Check a large array's structure now and its values batch by batch.

        The first row goes through the full validation (rank, features,
        image shape, dtype; on ``reset`` it sets the fitted shapes); the
        returned :class:`ValidatedRows` validates and converts every slice
        or batch when a scoring or training loop reads it, so memory does
        not grow with the number of rows. For ``fit`` (``reset``) every row
        is checked up front, a chunk at a time, so that bad values fail
        before any training.
        """
        self._validate_input(X[:1], reset=reset)
        flat, array_image_shape = split_image_shape(X)
        rows = ValidatedRows(flat, self._validate_rows)
        if reset:
            rows.check_all(LAZY_VALIDATION_ROWS)
            # One row could not tell images from a table; a sample of all can.
            self.input_shape_ = self._resolve_input_shape(
                array_image_shape, flat.shape[1], rows=flat
            )
        return rows

    def _validate_rows(self, rows):
        """Validate a slice of a flat array whose structure was checked."""
        if rows.dtype == np.uint8:
            # Pixels are finite: one pass converts and scales them.
            rows = np.divide(rows, np.float32(255), dtype=np.float32)
        else:
            rows = check_array(rows, dtype=np.float32)
        if self.likelihood == "bernoulli":
            check_unit_interval(rows, self.likelihood)
        return rows

    # -- fitting -------------------------------------------------------------

    _net_class = VAENet
    # Builds the torch module from _module_kwargs() (skorch calls it).
    _module_factory = staticmethod(make_vae)
    # Optimizer steps of max_epochs="auto".
    _auto_training_steps = AUTO_TRAINING_STEPS
    # KL weight of beta="auto".
    _auto_kl_weight = 1.0
    # Parameters added since models were first saved, with the values under
    # which a model saved before them (pickled or skvae.save) scores as it
    # was fitted; a loaded model without them gets these.
    _params_of_older_models = {}

    def _training_seed(self):
        """Draw the seed of a fit from ``random_state``, the same on every process."""
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return agree_on_seed(seed)

    def _fit_vae(self, X, y=None, *, seed=None):
        """Build the module and the skorch net for validated ``X`` and train it.

        Sets ``net_``. ``seed`` (drawn by :meth:`_training_seed` if None)
        seeds the training; it is returned for later seeded steps.
        """
        self._check_training_params()
        if seed is None:
            seed = self._training_seed()
        spec = self._net_spec("net_")
        self.net_ = self._fit_net(spec, getattr(self, "net_", None), X, y, seed=seed)
        return seed

    def _net_spec(self, attribute):
        """Return the :class:`NetSpec` of the fitted net held in ``attribute``.

        ``fit`` trains, and :func:`skvae.load` rebuilds, each net from it;
        subclasses with more nets extend it.
        """
        if attribute != "net_":
            raise ValueError(f"{type(self).__name__} has no net {attribute!r}.")
        return NetSpec(
            self._net_class,
            self._module_factory,
            self._module_kwargs(),
            self._net_params(),
            self._extra_callbacks(),
        )

    def _fit_net(self, spec, previous, X, y=None, *, seed):
        """Build the skorch net of ``spec``, train it on validated ``X``; return it.

        Every network an estimator trains goes through here, so each gets
        the shared training settings (``max_epochs``, ``batch_size``, ``lr``,
        early stopping, the divergence guard, device, progress). With
        ``warm_start`` and a ``previous`` net of the same class and module
        arguments, training continues from its weights (with a copy of its
        history) instead of starting afresh.
        """
        resume = (
            self.warm_start
            and isinstance(previous, spec.net_class)
            and module_kwargs_of(previous) == spec.module_kwargs
        )
        with seeded(seed, self.device):
            net = self._build_net(spec, seed, len(X))
            if resume:
                net.initialize()
                net.module_.load_state_dict(previous.module_.state_dict())
                net.history_ = copy.deepcopy(previous.history_)
            self._train(net, self._as_module_input(X), y)
        return net

    @property
    def _module_kwargs_(self):
        """The arguments the fitted VAE module was built with."""
        return module_kwargs_of(self.net_)

    def _train(self, net, X, y=None):
        """Train ``net`` (with a ``FiniteLossGuard``), recovering from divergence.

        The module is left in eval mode, the mode every later use wants
        (skorch switches it back to training mode in each training step).
        """
        epochs_before = len(net.history) if net.initialized_ else 0
        try:
            net.partial_fit(X, y)
        except TrainingDiverged as diverged:
            self._recover_from_divergence(net, diverged)
        net.module_.eval()
        if getattr(net, "interrupted_", False):
            warnings.warn(
                f"Ctrl-C stopped training {type(net).__name__} after "
                f"{len(net.history) - epochs_before} of {net.max_epochs} epochs; "
                "fit goes on with the weights trained so far "
                "(training_interrupted_ is True). To make Ctrl-C abort fit "
                "and keep the estimator as it was, run "
                'warnings.simplefilter("error", skvae.TrainingInterruptedWarning).',
                TrainingInterruptedWarning,
                stacklevel=2,
            )

    @property
    def training_interrupted_(self):
        """Whether Ctrl-C stopped the training of a fitted network early."""
        check_is_fitted(self)
        return any(
            getattr(net, "interrupted_", False)
            for net in vars(self).values()
            if isinstance(net, DataParallelNet)
        )

    def _check_training_params(self):
        """Check the parameters whose constraints cannot say it all."""
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size={self.kernel_size} must be odd (e.g. 3 or 5): the "
                "convolutions pad by kernel_size // 2 so that each stride-2 "
                "layer halves the image side exactly."
            )
        try:
            torch.device(self.device)
        except RuntimeError as error:
            raise ValueError(
                f"device={self.device!r} is not a torch device. Pass 'cpu', "
                "'cuda', 'cuda:<index>' or 'mps'."
            ) from error

    def _recover_from_divergence(self, net, diverged):
        """Restore the last finite weights of ``net``, or raise if there are none."""
        guard = dict(net.callbacks_)["finite_loss"]
        advice = f"Lower lr (now {self.lr}), or scale X to a unit range."
        if guard.last_good_state_ is None:
            raise ValueError(
                f"Training diverged: the loss became {diverged.loss} in the first "
                f"epoch, so there are no usable weights. {advice}"
            )
        net.module_.load_state_dict(guard.last_good_state_)
        guard.last_good_state_ = None  # the copy must not travel in pickles
        warnings.warn(
            f"Training diverged: the loss became {diverged.loss} in epoch "
            f"{diverged.epoch}. Kept the weights of epoch "
            f"{guard.last_good_epoch_}. {advice}",
            ConvergenceWarning,
            stacklevel=3,
        )

    def _as_module_input(self, X):
        """View validated rows ``X`` in the shape the module takes."""
        if isinstance(X, ValidatedRows):
            return X.reshaped(self.input_shape_)
        return X.reshape(-1, *self.input_shape_)

    def _module_kwargs(self):
        """Arguments of :func:`skvae.nn.make_vae`; subclasses may add to them."""
        architecture = "conv" if len(self.input_shape_) == 3 else "mlp"
        hidden_dims = self.hidden_dims or DEFAULT_HIDDEN_DIMS[architecture]
        kwargs = {
            "input_shape": self.input_shape_,
            "latent_dim": self.latent_dim,
            "hidden_dims": tuple(hidden_dims),
            "kernel_size": self.kernel_size,
            "likelihood": self.likelihood,
            "decoder_var": self.decoder_var,
        }
        if self.architecture == "grad2vae":
            kwargs["architecture"] = "grad2vae"
        # Passed only when set, so that architectures without these options
        # (the dual VAE) see the arguments they take.
        if self.activation != "leaky_relu":
            kwargs["activation"] = self.activation
        if self.batch_norm:
            kwargs["batch_norm"] = True
        if self.pad_to is not None:
            kwargs["pad_to"] = self._pad_to_shape()
        return kwargs

    def _pad_to_shape(self):
        """``pad_to`` as an ``(H, W)`` tuple."""
        if isinstance(self.pad_to, Integral):
            return (int(self.pad_to), int(self.pad_to))
        if len(self.pad_to) != 2:
            raise ValueError(
                f"pad_to={self.pad_to!r} must be one side or an (H, W) pair."
            )
        return tuple(int(side) for side in self.pad_to)

    def _net_params(self):
        """Extra keyword arguments for the skorch net; subclasses extend them."""
        return {"criterion__beta": self._kl_weight()}

    def _kl_weight(self):
        """Resolve ``beta="auto"`` to the KL weight of training."""
        return self._auto_kl_weight if self.beta == "auto" else self.beta

    def _extra_callbacks(self):
        """Named skorch callbacks a subclass adds to the training run."""
        return []

    def _n_epochs(self, n_samples):
        """Resolve ``max_epochs="auto"`` for a training set of ``n_samples``."""
        if self.max_epochs != "auto":
            return self.max_epochs
        batches_per_epoch = math.ceil(n_samples / self.batch_size)
        epochs = math.ceil(self._auto_training_steps / batches_per_epoch)
        return min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, epochs))

    def _build_net(self, spec, seed, n_samples):
        """Return the unfitted skorch net of ``spec`` for ``n_samples`` rows.

        skorch builds the module with ``spec.module_factory`` (for the VAE,
        by default :func:`skvae.nn.make_vae`) when it initializes (the
        caller seeds that). Handing skorch a module instance instead would
        pickle its weights twice: once as the ``module`` parameter and once
        as the fitted ``module_``.
        """
        train_split, callbacks = None, [("finite_loss", FiniteLossGuard())]
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
        callbacks.extend(spec.callbacks)
        if self.verbose >= 2:
            callbacks.append(ProgressBar())
        return spec.net_class(
            spec.module_factory,
            **{f"module__{name}": value for name, value in spec.module_kwargs.items()},
            **spec.net_params,
            lr=self.lr,
            max_epochs=self._n_epochs(n_samples),
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            iterator_train__drop_last=self._drop_last_batch(n_samples),
            train_split=train_split,
            callbacks=callbacks,
            device=self.device,
            verbose=int(self.verbose),
        )

    def _drop_last_batch(self, n_samples):
        """Whether training skips each epoch's incomplete last batch.

        Only with ``batch_norm``, where a last batch of one image with 1x1
        feature maps cannot be normalised (and small ones add noise to the
        running statistics), and only when a full batch remains.
        """
        if not self.batch_norm:
            return False
        n_train = n_samples
        if self.early_stopping:
            n_train -= math.ceil(self.validation_fraction * n_samples)
        return n_train > self.batch_size

    def __getstate__(self):
        state = super().__getstate__()
        state["_skvae_version"] = __version__
        return state

    def __setstate__(self, state):
        warn_if_incompatible(
            type(self).__name__, state.pop("_skvae_version", "unknown")
        )
        super().__setstate__({**self._params_of_older_models, **state})

    def _expected_failed_checks(self):
        """Return the sklearn common checks this estimator fails, with reasons.

        scikit-learn 1.6 dropped the ``_xfail_checks`` tag; pass this to
        ``parametrize_with_checks(..., expected_failed_checks=...)``.
        """
        return {}

    @property
    def decoder_var_(self):
        """Variance of the fitted Gaussian likelihood (``None`` for Bernoulli).

        With ``decoder_var="learned"`` this is the learned value.
        """
        check_is_fitted(self, "net_")
        likelihood = self.net_.module_.likelihood
        return getattr(likelihood, "variance", None)

    @property
    def history_(self):
        """The skorch :class:`~skorch.history.History` of the last fit."""
        check_is_fitted(self, "net_")
        return self.net_.history

    # -- scoring -------------------------------------------------------------

    def _map_module(self, scoring_fn, X, **kwargs):
        """Apply a function of :mod:`skvae.scoring` to validated rows ``X``.

        On the CPU the passes run a copy of the fitted module whose
        convolutions run on kernels chosen by their shape, not the batch
        (faster, and a lone row runs as a pass of one; the module itself
        is left as it is).
        """
        module = scoring_copy(self.net_.module_)
        return scoring_fn(
            module,
            X,
            input_shape=self.input_shape_,
            device=self.net_.device,
            granularity=pass_granularity(module),
            **kwargs,
        )

    def _module_scores(self, X):
        """Per-sample ELBO of validated rows ``X``."""
        return self._map_module(elbo_scores, X)

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


class NetSpec(NamedTuple):
    """What one skorch net of an estimator is: its class, module and extras."""

    net_class: type
    module_factory: Callable
    module_kwargs: dict
    net_params: dict
    callbacks: list


def module_kwargs_of(net):
    """Return the ``module__*`` arguments a skorch ``net`` builds its module with."""
    prefix = "module__"
    return {
        name[len(prefix) :]: value
        for name, value in net.get_params().items()
        if name.startswith(prefix)
    }


def _silent(*args, **kwargs):
    """Discard skorch's messages (the sink when ``verbose=0``)."""


def _is_large_array(X):
    """Whether ``X`` is a NumPy array (or memmap) worth validating lazily."""
    return isinstance(X, np.ndarray) and X.ndim >= 2 and len(X) > LAZY_VALIDATION_ROWS
