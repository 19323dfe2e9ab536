"""Outlier detection with a variational autoencoder."""

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin

from ._base import _BaseVAE
from .utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted

__all__ = ["VAEOutlierDetector"]


class VAEOutlierDetector(OutlierMixin, _BaseVAE):
    """Unsupervised outlier detection with a variational autoencoder.

    The VAE learns the distribution of the training data; a sample's evidence
    lower bound (ELBO) on log p(x) is its score: typical samples get a high
    ELBO, anomalies a low one. Images (square inputs, image arrays or an
    explicit ``image_shape``) get a convolutional VAE; other inputs a fully
    connected one.

    Scores follow scikit-learn: ``score_samples`` is higher for more normal
    samples, ``decision_function`` is negative for outliers and ``predict``
    returns +1 for inliers and -1 for outliers. (PyOD's convention is the
    opposite: higher = more anomalous.)

    Parameters
    ----------
    latent_dim : int, default=16
        Size of the latent code.
    architecture : {"auto", "conv", "mlp"}, default="auto"
        Network type. ``"auto"`` uses convolutions for image input (an image
        array, ``image_shape``, or a square number of features with a side of
        8 or more) and dense layers otherwise.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` holds flattened
        images. ``None`` infers it from the input.
    hidden_dims : tuple of int, default=None
        Channels of the stride-2 convolutions, or widths of the dense layers.
        ``None`` means ``(32, 64, 128)`` for convolutions and ``(256, 128)``
        for dense layers.
    kernel_size : int, default=3
        Odd kernel size of the convolutions.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Decoder distribution p(x|z). ``"bernoulli"`` needs values in [0, 1].
    decoder_var : float or "learned", default="learned"
        Variance of the Gaussian likelihood. ``"learned"`` learns one shared
        variance with the network (Dai & Wipf 2019), which sets the balance
        between reconstruction and KL from the data.
    beta : float, default=1.0
        Weight of the KL term during training (beta-VAE). Scores always use
        the true ELBO (beta = 1).
    max_epochs : int, default=100
        Number of passes over the training data. What counts is the number
        of optimizer steps, ``max_epochs * n_samples / batch_size``: small
        data sets need many epochs, large ones fewer.
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
    device : str, default="cpu"
        Torch device to train and score on, e.g. ``"cuda"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, batch shuffling, latent sampling during
        training and the validation split. Pass an int for reproducible
        fits; scoring is deterministic regardless.
    verbose : int, default=0
        0 is silent, 1 prints a table per epoch (loss, validation loss,
        duration), 2 adds a progress bar per epoch.
    contamination : "auto" or float, default="auto"
        How the threshold ``offset_`` is set from the training scores.

        - If ``"auto"``, the lower Tukey fence ``Q1 - 1.5 * IQR`` of the
          training scores: samples far below the bulk of the training data
          are outliers, with no guess of their share.
        - If a float in (0, 0.5], that share of the training data is flagged
          as outliers.

    Attributes
    ----------
    net_ : skvae._net.VAENet
        The fitted skorch net; ``net_.module_`` is the torch VAE.
    input_shape_ : tuple of int
        Shape of one sample as the network sees it: ``(C, H, W)`` for the
        convolutional architecture, ``(n_features,)`` for the dense one.
    offset_ : float
        Threshold on ``score_samples``: ``decision_function`` is
        ``score_samples - offset_``.
    history_ : skorch.history.History
        Per-epoch training record (losses, durations) of the skorch net.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit. Defined only when ``X`` has
        feature names that are all strings.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Tree-based outlier detection.
    sklearn.svm.OneClassSVM : Kernel-based novelty detection.

    Notes
    -----
    The score is the ELBO with the latent code at the posterior mean: the
    log-likelihood of the reconstruction minus the KL divergence of the
    posterior from the prior. It is deterministic, and a sample's score does
    not depend on the other samples it is scored with.

    uint8 input is scaled by 1/255 in every method.

    References
    ----------
    .. [1] Kingma, D. P. & Welling, M. (2014). Auto-Encoding Variational
       Bayes. ICLR. :arxiv:`1312.6114`
    .. [2] An, J. & Cho, S. (2015). Variational autoencoder based anomaly
       detection using reconstruction probability. SNU Data Mining Center.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(64, 4))
    >>> det = VAEOutlierDetector(latent_dim=2, max_epochs=5, random_state=0).fit(X)
    >>> det.predict([[0.0, 0.0, 0.0, 0.0], [9.0, 9.0, -9.0, 9.0]])
    array([ 1, -1])
    """

    _parameter_constraints: dict = {
        **_BaseVAE._parameter_constraints,
        "contamination": [
            StrOptions({"auto"}),
            Interval(Real, 0, 0.5, closed="right"),
        ],
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
        contamination="auto",
    ):
        super().__init__(
            latent_dim,
            architecture=architecture,
            image_shape=image_shape,
            hidden_dims=hidden_dims,
            kernel_size=kernel_size,
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
        )
        self.contamination = contamination

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the VAE on ``X`` and set the outlier threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training data, mostly normal. Images may be ``(n, H, W)`` or
            ``(n, C, H, W)``.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._fit_vae(X)
        self.offset_ = self._threshold(self._module_scores(X))
        return self

    def _threshold(self, train_scores):
        if self.contamination == "auto":
            q1, q3 = np.percentile(train_scores, [25, 75])
            return float(q1 - 1.5 * (q3 - q1))
        return float(np.percentile(train_scores, 100.0 * self.contamination))

    def decision_function(self, X):
        """Signed distance of the score to the threshold; negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each sample as inlier (+1) or outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers.
        """
        check_is_fitted(self)
        return np.where(self.decision_function(X) < 0, -1, 1)
