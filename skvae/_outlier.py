"""Outlier detection with a variational autoencoder."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import OutlierMixin
from sklearn.exceptions import NotFittedError

from ._base import _BaseVAE, fill_doc
from .scoring import (
    latent_gaussian,
    latent_noise,
    mahalanobis_scores,
    per_sample_outputs,
)
from .utils._sklearn import Interval, StrOptions, _fit_context, check_is_fitted

__all__ = ["VAEOutlierDetector"]

SCORE_TYPES = (
    "elbo",
    "iwae",
    "reconstruction",
    "reconstruction_probability",
    "latent_mahalanobis",
    "elbo_mahalanobis",
)
# Scores that draw n_samples posterior samples per sample.
MONTE_CARLO_SCORES = ("iwae", "reconstruction_probability")
# The standardised parts summed by "elbo_mahalanobis".
COMBINED_PARTS = ("elbo", "latent_mahalanobis")


def _mean_and_std(scores):
    """Mean and standard deviation of training scores (1 for constant ones)."""
    std = float(np.std(scores))
    return float(np.mean(scores)), std if std > 0 else 1.0


@fill_doc
class VAEOutlierDetector(OutlierMixin, _BaseVAE):
    """Unsupervised outlier detection with a variational autoencoder.

    The VAE learns the distribution of the training data. By default a
    sample's score combines its evidence lower bound (ELBO) on log p(x) with
    how close its latent code lies to the training codes (Mahalanobis
    distance), each standardised by its training scores: typical samples
    score high, anomalies low. ``score_type`` picks another score of the
    same model, e.g. the ELBO alone. Images (square inputs, image arrays or an
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

    score_type : {"elbo", "iwae", "reconstruction", \
            "reconstruction_probability", "latent_mahalanobis", \
            "elbo_mahalanobis"}, default="elbo_mahalanobis"
        The anomaly score returned by ``score_samples``; higher is more
        normal for all of them (see Notes).

        - ``"elbo"``: ELBO at the posterior mean, in nats.
        - ``"iwae"``: importance-weighted bound on log p(x) with
          ``n_samples`` posterior draws, in nats.
        - ``"reconstruction"``: log p(x|z) at the posterior mean, in nats.
        - ``"reconstruction_probability"``: mean of log p(x|z) over
          ``n_samples`` posterior draws (An & Cho 2015), in nats.
        - ``"latent_mahalanobis"``: minus the Mahalanobis distance of the
          posterior mean to the training codes.
        - ``"elbo_mahalanobis"``: the sum of ``"elbo"`` and
          ``"latent_mahalanobis"``, each standardised by the mean and
          standard deviation of its training scores.

    n_samples : int, default=16
        Number of posterior draws of the Monte-Carlo scores (``"iwae"`` and
        ``"reconstruction_probability"``); ignored by the others. Each draw
        costs one decoder pass.

    Attributes
    ----------
    %(vae_attributes)s
    offset_ : float
        Threshold on ``score_samples`` of the current ``score_type``:
        ``decision_function`` is ``score_samples - offset_``. ``fit`` sets a
        threshold for every score type (see Notes), so ``score_type`` may be
        changed after fit.
    latent_mean_ : ndarray of shape (latent_dim,)
        Mean of the posterior means of the training data.
    latent_covariance_ : ndarray of shape (latent_dim, latent_dim)
        Ledoit-Wolf covariance of the posterior means of the training data,
        plus a ridge of 1e-6 on the diagonal; the metric of
        ``score_type="latent_mahalanobis"``.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Tree-based outlier detection.
    sklearn.svm.OneClassSVM : Kernel-based novelty detection.

    Notes
    -----
    Every score is higher for more normal samples. With mu and sigma the
    mean and standard deviation of the posterior q(z|x):

    - ``"elbo"``: ``log p(x|z=mu) - KL(q(z|x) || p(z))``, the
      reconstruction log-likelihood at the posterior mean minus how far the
      posterior strays from the prior. A sample is unusual if it is poorly
      reconstructed or needs an unusual code.
    - ``"iwae"``: ``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)`` with K =
      ``n_samples`` posterior draws z_k (Burda et al. 2016). It is a lower
      bound on log p(x) in expectation, tighter as K grows, so use it for
      likelihoods and bits per dimension; ``"elbo"`` plugs in z = mu for
      speed and determinism, which makes it an approximation, not a bound.
    - ``"reconstruction"``: ``log p(x|z=mu)`` alone. For the Gaussian
      likelihood it ranks samples exactly as the negative squared
      reconstruction error does.
    - ``"reconstruction_probability"``: ``(1/K) sum_k log p(x|z_k)``, the
      expected reconstruction log-likelihood under the posterior; it also
      penalises samples whose reconstruction breaks down as z moves within
      the posterior (An & Cho 2015, averaged in log space).
    - ``"latent_mahalanobis"``: ``-sqrt((mu - m)^T C^-1 (mu - m))`` with
      ``m = latent_mean_`` and ``C = latent_covariance_``: how far the code
      lies from the training codes, whatever the reconstruction.
    - ``"elbo_mahalanobis"``: ``(e - m_e) / s_e + (d - m_d) / s_d`` with
      ``e`` the ``"elbo"`` score, ``d`` the ``"latent_mahalanobis"`` score
      and ``m``, ``s`` the mean and standard deviation of each over the
      training data (fixed at fit). A sample is unusual if it is poorly
      explained by the model or its code lies off the training codes; the
      standardisation puts the two on one scale without using the other
      samples being scored.

    All scores are deterministic, and a sample's score does not depend on
    the other samples it is scored with. The Monte-Carlo scores draw
    ``z_k = mu + sigma * eps_k`` with one set of standard-normal draws
    ``eps`` shared by all samples and all calls, seeded from
    ``random_state`` at fit.

    ``fit`` computes the training scores of every score type in one pass and
    keeps a threshold for each, computed as ``score_samples`` computes the
    scores, so ``set_params(score_type=...)`` after fit changes
    ``score_samples``, ``decision_function`` and ``predict`` together. The
    Monte-Carlo types (``"iwae"``, ``"reconstruction_probability"``) are the
    exception: their training scores cost ``n_samples`` decoder passes per
    sample (about a quarter of the default fit), so their thresholds exist
    only when fit ran with one of them; otherwise ``decision_function`` and
    ``predict`` raise and ask for a refit, while ``score_samples`` works.

    ``score(X)`` is the mean ELBO whatever ``score_type`` is: it is the
    unsupervised model-selection criterion, so ``GridSearchCV`` compares
    models (``latent_dim``, ``beta``, ...) on one scale without labels. It
    cannot choose ``score_type``, which does not change the model; compare
    score types on labelled data, e.g. with ``scoring="roc_auc"`` and a
    ``PredefinedSplit``.

    uint8 input is scaled by 1/255 in every method.

    References
    ----------
    .. [1] Kingma, D. P. & Welling, M. (2014). Auto-Encoding Variational
       Bayes. ICLR. :arxiv:`1312.6114`
    .. [2] An, J. & Cho, S. (2015). Variational autoencoder based anomaly
       detection using reconstruction probability. SNU Data Mining Center.
    .. [3] Burda, Y., Grosse, R. & Salakhutdinov, R. (2016). Importance
       Weighted Autoencoders. ICLR. :arxiv:`1509.00519`

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
        "score_type": [StrOptions(set(SCORE_TYPES))],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
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
        likelihood="gaussian",
        decoder_var="learned",
        beta=1.0,
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
        contamination="auto",
        score_type="elbo_mahalanobis",
        n_samples=16,
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
            warm_start=warm_start,
        )
        self.contamination = contamination
        self.score_type = score_type
        self.n_samples = n_samples

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
        seed = self._fit_vae(X)
        # The Monte-Carlo draws get their own stream, derived from the
        # training seed so that random_state fixes them too.
        self._noise_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        # One pass over the training data gives the latent statistics, the
        # standardisation of the combined score and every threshold.
        outputs = self._module_outputs(X, self.score_type in MONTE_CARLO_SCORES)
        self.latent_mean_, self.latent_covariance_ = latent_gaussian(
            outputs["latent_means"]
        )
        train_scores = self._scores_from_outputs(outputs)
        self._standardization = {
            name: _mean_and_std(train_scores[name]) for name in COMBINED_PARTS
        }
        train_scores["elbo_mahalanobis"] = self._combined_score(train_scores)
        self._offsets = {
            score_type: self._threshold(scores)
            for score_type, scores in train_scores.items()
        }
        self._offsets_n_samples = self.n_samples
        return self

    @property
    def offset_(self):
        """Threshold on ``score_samples`` of the current ``score_type``.

        ``fit`` sets one threshold per score type from the training scores
        (a Monte-Carlo type's only when it is the ``score_type`` of the fit:
        its training scores cost ``n_samples`` decoder passes per sample), so
        ``set_params(score_type=...)`` after fit keeps ``predict`` consistent
        with ``contamination``.
        """
        offsets = getattr(self, "_offsets", None)
        if offsets is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call "
                "fit before using offset_."
            )
        stale_draws = (
            self.score_type in MONTE_CARLO_SCORES
            and self.n_samples != self._offsets_n_samples
        )
        if self.score_type not in offsets or stale_draws:
            raise NotFittedError(
                f"No threshold for score_type={self.score_type!r} with "
                f"n_samples={self.n_samples}: the Monte-Carlo scores' training "
                "scores are only computed when fit runs with that score_type "
                "(they cost n_samples decoder passes per sample). Refit with "
                f"score_type={self.score_type!r}; score_samples works without "
                "a refit."
            )
        return offsets[self.score_type]

    def _threshold(self, train_scores):
        if self.contamination == "auto":
            q1, q3 = np.percentile(train_scores, [25, 75])
            return float(q1 - 1.5 * (q3 - q1))
        return float(np.percentile(train_scores, 100.0 * self.contamination))

    def score_samples(self, X):
        """Per-sample anomaly score chosen by ``score_type``; lower is more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples; images may be ``(n, H, W)`` or ``(n, C, H, W)``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The score of each sample (nats for all but
            ``"latent_mahalanobis"`` and ``"elbo_mahalanobis"``); higher means
            more typical of the training data.
        """
        check_is_fitted(self)
        return self._score_samples(self._validate_input(X, reset=False))

    def _score_samples(self, X):
        """Private version of score_samples without input validation."""
        outputs = self._module_outputs(X, self.score_type in MONTE_CARLO_SCORES)
        scores = self._scores_from_outputs(outputs)
        if self.score_type == "elbo_mahalanobis":
            return self._combined_score(scores)
        return scores[self.score_type]

    def _module_outputs(self, X, monte_carlo):
        """One pass of the module over validated rows ``X``.

        With ``monte_carlo``, the pass also draws ``n_samples`` posterior
        samples for the Monte-Carlo scores.
        """
        noise = None
        if monte_carlo:
            noise = latent_noise(self.n_samples, self.latent_dim, self._noise_seed)
        return self._map_module(per_sample_outputs, X, noise=noise)

    def _scores_from_outputs(self, outputs):
        """Every single score type the module ``outputs`` allow, by name."""
        scores = {
            "elbo": outputs["elbo"],
            "reconstruction": outputs["reconstruction"],
            "latent_mahalanobis": mahalanobis_scores(
                outputs["latent_means"], self.latent_mean_, self.latent_covariance_
            ),
        }
        scores.update(
            {name: outputs[name] for name in MONTE_CARLO_SCORES if name in outputs}
        )
        return scores

    def _combined_score(self, scores):
        """``"elbo_mahalanobis"``: the sum of its parts' training z-scores."""
        total = np.zeros(len(scores["elbo"]))
        for name in COMBINED_PARTS:
            mean, std = self._standardization[name]
            total += (scores[name] - mean) / std
        return total

    def score(self, X, y=None):
        """Mean per-sample ELBO of ``X``, whatever ``score_type`` is; higher is better.

        This is the unsupervised model-selection criterion: it lets
        ``GridSearchCV`` compare settings without labels.

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
        check_is_fitted(self)
        return float(np.mean(self._module_scores(self._validate_input(X, reset=False))))

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
