"""Semi-supervised classification with a variational autoencoder."""

import inspect
import math
import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from skorch import NeuralNetClassifier

from ._base import _BaseVAE, fill_doc, fit_all_or_nothing
from ._callbacks import FiniteLossGuard, WeightAveraging
from ._data import SemiSupervisedLoader
from .nn import SemiSupervisedLoss
from .scoring import class_probabilities, latent_means
from .utils._sklearn import Interval, StrOptions, check_is_fitted
from .utils._torch import seeded

__all__ = ["VAEClassifier"]

UNLABELED = -1
# swa_start="auto" without early stopping.
DEFAULT_SWA_START = 0.7
# Parameters of the joint loss and its batches; the frozen mode trains the
# head on latent means with a plain cross-entropy, so they do nothing there.
JOINT_ONLY_PARAMETERS = (
    "classifier_weight",
    "labeled_fraction",
    "augment",
    "unlabeled_weight",
    "confidence_threshold",
    "vat_eps",
)


@fill_doc
class VAEClassifier(ClassifierMixin, _BaseVAE):
    """Semi-supervised classification with a variational autoencoder.

    All samples train the VAE; the labeled ones also train a small dense
    classifier on its latent code. Following scikit-learn's semi-supervised
    convention (:class:`~sklearn.semi_supervised.SelfTrainingClassifier`,
    :class:`~sklearn.semi_supervised.LabelSpreading`), the label -1 marks an
    unlabeled sample, so a few labels and many unlabeled samples go into one
    ``fit(X, y)``.

    Parameters
    ----------
    %(vae_parameters)s
    head_mode : {"joint", "frozen"}, default="joint"
        How the classifier head is trained.

        - ``"joint"``: one training run minimises the negative ELBO on all
          samples plus the weighted cross-entropy on the labeled ones, so the
          encoder learns codes that reconstruct *and* separate the classes
          (Kingma et al. 2014).
        - ``"frozen"``: the VAE is trained on all samples first; then the
          encoder is frozen and only the head is trained on the latent means
          of the labeled samples (the transfer-learning recipe), for as
          many optimizer steps as the VAE took (at least ``max_epochs``
          passes over the labeled samples).
    classifier_weight : float, default=1.0
        Weight of the cross-entropy per input feature in the joint loss (it
        is multiplied by ``n_features`` because the ELBO sums over them).
        Ignored when ``head_mode="frozen"``.
    labeled_fraction : float, default=0.25
        Minimum share of labeled samples in every training mini-batch of the
        joint mode. When the labeled samples are rarer than that, each batch
        is filled with this share of them (reshuffled and reused as often as
        needed) and the rest with unlabeled ones, and an epoch is one pass
        over the unlabeled samples; otherwise batches are plain shuffles.
        ``0`` always uses plain shuffles. Ignored when ``head_mode="frozen"``.
    augment : bool, default=False
        Joint mode on images only: shift each training image by up to two
        pixels and mirror half of them left to right, anew every batch. Use
        it only where a mirrored image keeps its class (clothes, natural
        images; not digits or text). Ignored for tabular input and when
        ``head_mode="frozen"``.
    unlabeled_weight : float, default=1.0
        Joint mode: weight of the pseudo-label loss on unlabeled samples,
        relative to the labeled cross-entropy. Where the head's prediction
        from an unlabeled sample's posterior mean is confident (probability
        at least ``confidence_threshold``), that class is the target of the
        prediction from the sampled latent code (FixMatch-style consistency
        with the latent noise as the perturbation, Sohn et al. 2020). ``0``
        turns it off. Ignored when ``head_mode="frozen"``.
    confidence_threshold : float, default=0.8
        Minimum probability for a pseudo-label to count; see
        ``unlabeled_weight``.
    vat_eps : float, default=0.15
        Joint mode: radius of virtual adversarial training (Miyato et al.
        2018). For every training sample, labeled or not, the head's
        prediction must not change (in KL divergence) when the input moves by
        this much in the direction that changes it most; the prediction
        becomes smooth along the data, which lets the unlabeled samples
        shape the decision boundary without any augmentation of the input
        domain. The radius is a root-mean-square change per input feature
        (the L2 norm of the step is ``vat_eps * sqrt(n_features)``), so one
        value fits inputs of any size scaled to about [0, 1]. It costs one
        more forward and backward pass of the encoder per batch (fit takes
        ~1.5 times as long); ``0`` turns it off. Ignored when
        ``head_mode="frozen"``.
    swa_start : float, "auto" or None, default="auto"
        Stochastic weight averaging: after this share of ``max_epochs``, the
        weights after every optimizer step are averaged, and the average is
        the fitted model (Izmailov et al. 2018). It makes the result depend
        less on where the last steps happened to land; it needs training
        that has settled by then (with few epochs that still improve fast,
        it can cost accuracy). ``None`` keeps the last weights. ``"auto"``
        means 0.7, or ``None`` with ``early_stopping=True``, which keeps the
        weights of the best validation epoch instead (a float with early
        stopping warns and is not used). In frozen mode it applies to the
        VAE, before the head is trained.

    Attributes
    ----------
    %(vae_attributes)s
    classes_ : ndarray of shape (n_classes,)
        The class labels seen among the labeled samples.

    See Also
    --------
    sklearn.semi_supervised.SelfTrainingClassifier : Self-training wrapper.
    sklearn.semi_supervised.LabelSpreading : Graph-based semi-supervision.
    VAETransformer : The same model as a dimensionality reduction.

    Notes
    -----
    ``classifier_weight``, ``labeled_fraction``, ``augment``,
    ``unlabeled_weight``, ``confidence_threshold`` and ``vat_eps`` shape the
    joint loss and its batches; with ``head_mode="frozen"``, setting one of
    them to a value other than its default warns that it has no effect.

    ``score(X, y)`` is the accuracy (as for every scikit-learn classifier);
    ``score_samples(X)`` is the per-sample ELBO. Unlabeled rows (-1) count as
    errors in ``score``: evaluate on labeled data.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(-2, 1, size=(40, 4)), rng.normal(2, 1, size=(40, 4))]
    >>> y = np.r_[np.zeros(40, int), np.ones(40, int)]
    >>> y_partial = y.copy()
    >>> y_partial[5:40] = y_partial[45:] = -1  # keep 5 labels per class
    >>> clf = VAEClassifier(latent_dim=2, max_epochs=20, random_state=0)
    >>> clf.fit(X, y_partial).score(X, y) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        # The Grad2VAE has no classifier head (skvae.nn.Grad2VAE).
        "architecture": [StrOptions({"auto", "conv", "mlp"})],
        "head_mode": [StrOptions({"joint", "frozen"})],
        "classifier_weight": [Interval(Real, 0, None, closed="left")],
        "labeled_fraction": [Interval(Real, 0, 1, closed="left")],
        "augment": ["boolean"],
        "unlabeled_weight": [Interval(Real, 0, None, closed="left")],
        "confidence_threshold": [Interval(Real, 0, 1, closed="both")],
        "vat_eps": [Interval(Real, 0, None, closed="left")],
        "swa_start": [
            Interval(Real, 0, 1, closed="left"),
            StrOptions({"auto"}),
            None,
        ],
    }

    # scikit-learn reads an estimator's parameters from its own __init__
    # signature, so the shared ones are spelled out again here (explicit
    # signatures also keep IDE help); tests/test_common.py checks that the
    # copies stay identical to _BaseVAE's.
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
        head_mode="joint",
        classifier_weight=1.0,
        labeled_fraction=0.25,
        augment=False,
        unlabeled_weight=1.0,
        confidence_threshold=0.8,
        vat_eps=0.15,
        swa_start="auto",
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
        self.head_mode = head_mode
        self.classifier_weight = classifier_weight
        self.labeled_fraction = labeled_fraction
        self.augment = augment
        self.unlabeled_weight = unlabeled_weight
        self.confidence_threshold = confidence_threshold
        self.vat_eps = vat_eps
        self.swa_start = swa_start

    @fit_all_or_nothing
    def fit(self, X, y):
        """Fit the VAE on all of ``X`` and the classifier on the labeled rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training data, labeled and unlabeled.
        y : array-like of shape (n_samples,)
            Class labels; -1 (or the string ``"-1"``) marks unlabeled rows.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X, y = self._validate_input(X, y, reset=True)
        y_encoded = self._encode_labels(y)
        self._warn_inert_parameters()
        if self.head_mode == "joint":
            self._fit_vae(X, y_encoded)
            return self
        seed = self._fit_vae(X)
        labeled = y_encoded != UNLABELED
        with seeded(seed + 1, self.device):
            self._fit_head(X[labeled], y_encoded[labeled], len(X))
        return self

    def _warn_inert_parameters(self):
        """Warn about set parameters that the chosen mode does not use."""
        defaults = {
            name: param.default
            for name, param in inspect.signature(type(self)).parameters.items()
        }
        if self.head_mode == "frozen":
            inert = [
                name
                for name in JOINT_ONLY_PARAMETERS
                if getattr(self, name) != defaults[name]
            ]
            if inert:
                warnings.warn(
                    f"{', '.join(inert)} only affect head_mode='joint'; with "
                    "head_mode='frozen' the head is trained on the latent means "
                    "with a plain cross-entropy, so they are not used.",
                    UserWarning,
                    stacklevel=3,
                )
        if self.early_stopping and self.swa_start not in ("auto", None):
            warnings.warn(
                f"swa_start={self.swa_start} is not used with "
                "early_stopping=True, which keeps the weights of the best "
                "validation epoch; set swa_start='auto' or None to silence "
                "this warning.",
                UserWarning,
                stacklevel=3,
            )

    def _expected_failed_checks(self):
        return {
            "check_classifiers_classes": (
                "the check uses -1 as a class label, but -1 marks unlabeled "
                "samples in scikit-learn's semi-supervised convention; "
                "scikit-learn exempts its own semi-supervised classifiers from "
                "this part of the check by name."
            ),
        }

    def _encode_labels(self, y):
        """Set ``classes_``; return labels as class indices, -1 for unlabeled."""
        unlabeled = _unlabeled_mask(y)
        if unlabeled.all():
            raise ValueError(
                "All samples are unlabeled (y == -1). VAEClassifier needs "
                "labeled samples of at least 2 classes; to learn from "
                "unlabeled data alone, use VAETransformer."
            )
        check_classification_targets(y[~unlabeled])
        self.classes_, encoded = np.unique(y[~unlabeled], return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "VAEClassifier needs labeled samples of at least 2 classes; "
                f"y has only one class: {self.classes_[0]!r}."
            )
        y_encoded = np.full(len(y), UNLABELED, dtype=np.int64)
        y_encoded[~unlabeled] = encoded
        return y_encoded

    def _module_kwargs(self):
        vat_eps = 0.0
        if self.head_mode == "joint":
            vat_eps = self.vat_eps * math.sqrt(self.n_features_in_)
        return {
            **super()._module_kwargs(),
            "n_classes": len(self.classes_),
            "vat_eps": vat_eps,
        }

    def _net_params(self):
        return {
            "criterion": SemiSupervisedLoss,
            "criterion__beta": self._kl_weight(),
            "criterion__classifier_weight": self.classifier_weight,
            "criterion__n_features": self.n_features_in_,
            "criterion__unlabeled_weight": self.unlabeled_weight,
            "criterion__confidence_threshold": self.confidence_threshold,
            "iterator_train": SemiSupervisedLoader,
            "iterator_train__labeled_fraction": self.labeled_fraction,
            "iterator_train__augment": self.augment and self.head_mode == "joint",
        }

    def _extra_callbacks(self):
        if self.swa_start is None or self.early_stopping:
            return []
        start = DEFAULT_SWA_START if self.swa_start == "auto" else self.swa_start
        return [("weight_averaging", WeightAveraging(start))]

    def _fit_head(self, X, y, n_samples):
        """Train only the head on the frozen encoder's latent means.

        The head gets at least as many optimizer steps as the VAE had on all
        ``n_samples`` rows: with few labels, ``max_epochs`` passes over them
        would be only a few steps.
        """
        vae_steps = self._n_epochs(n_samples) * math.ceil(n_samples / self.batch_size)
        head_epochs = math.ceil(vae_steps / math.ceil(len(X) / self.batch_size))
        head_net = NeuralNetClassifier(
            self.net_.module_.head,
            criterion=torch.nn.CrossEntropyLoss,
            optimizer=torch.optim.Adam,
            lr=self.lr,
            max_epochs=max(self._n_epochs(n_samples), head_epochs),
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            train_split=None,
            callbacks=[("finite_loss", FiniteLossGuard())],
            device=self.device,
            verbose=int(self.verbose),
        )
        Z = self._map_module(latent_means, X).astype(np.float32)
        self._train(head_net, Z, y)

    def predict_proba(self, X):
        """Class probabilities from the head on the posterior mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities in the order of ``classes_``; rows sum to 1.
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        return self._map_module(class_probabilities, X)

    def predict(self, X):
        """Predict the class of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels, from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


def _unlabeled_mask(y):
    """Rows marked unlabeled: -1 for numeric labels, "-1" for string labels."""
    y = np.asarray(y)
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    return y.astype(str) == str(UNLABELED)
