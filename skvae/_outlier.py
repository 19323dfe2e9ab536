"""Outlier detection with a variational autoencoder."""

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin

from ._base import _BaseVAE, fill_doc
from .utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted

__all__ = ["VAEOutlierDetector"]


@fill_doc
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
    %(vae_parameters)s
    contamination : "auto" or float, default="auto"
        How the threshold ``offset_`` is set from the training scores.

        - If ``"auto"``, the lower Tukey fence ``Q1 - 1.5 * IQR`` of the
          training scores: samples far below the bulk of the training data
          are outliers, with no guess of their share.
        - If a float in (0, 0.5], that share of the training data is flagged
          as outliers.

    Attributes
    ----------
    %(vae_attributes)s
    offset_ : float
        Threshold on ``score_samples``: ``decision_function`` is
        ``score_samples - offset_``.

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
        X = self._validate_input(X, reset=True)
        self._fit_vae(X)
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
