"""Outlier detection with a variational autoencoder."""

import math
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import OutlierMixin, clone
from sklearn.exceptions import NotFittedError

from ._base import DEFAULT_HIDDEN_DIMS, NetSpec, _BaseVAE, fill_doc, fit_all_or_nothing
from ._validation import take_rows
from .conformal import benjamini_hochberg, conformal_pvalues, conformal_threshold
from .net import TransformationNet
from .nn import TransformationClassifier
from .scoring import latent_noise, per_sample_outputs
from .scoring._precision import PRECISIONS, classifier_in_precision, resolve_precision
from .scoring._scores import (
    DECODED_OUTPUTS,
    INPUT_OUTPUTS,
    MONTE_CARLO_OUTPUTS,
    TRANSFORMATION_OUTPUTS,
)
from .terms import ScoreTerm, StandardizedSum
from .terms._base import name_terms
from .terms._builtin import (
    NEIGHBOR_MAX_POINTS,
    SCORE_NAMES,
    auto_terms,
    build_score,
    check_requires,
)
from .utils._sklearn import Interval, StrOptions, check_is_fitted

__all__ = ["VAEOutlierDetector"]

# Rows scored end to end at a time (the networks' outputs, then the score
# term): the outputs of one chunk, at most a few MiB per output (more for
# the "inputs" of wide rows), bound scoring memory whatever the number of
# rows (docs/performance.md).
SCORE_CHUNK_ROWS = 8192
# Most training rows the score terms fit on (a seeded random subset above
# it): the neighbour index keeps this many points anyway, and more rows move
# the standardisation no further, while each costs a pass of the networks
# and memory for its outputs.
TERM_FIT_MAX_ROWS = NEIGHBOR_MAX_POINTS

# The optimizer steps of max_epochs="auto" (the VAE's and the transformation
# classifier's). Fewer steps learn less of the anomalies in the training
# set: 600 against 900 cost nothing measurable on one Fashion-MNIST class,
# gained on several classes with anomalies in training and lost a little on
# the 8x8 digits, for about 0.7x of the fit (docs/benchmark.md). The
# classifier's default widths (32, 64, 128: the VAE's and one more) did
# better than narrower ones (16, 32, 64).
DETECTOR_TRAINING_STEPS = 600
# beta="auto": the detector's VAE trains with half the KL weight. Its codes
# then hold more of the data, which raised the ELBO and the sums that read
# it on the tables (mean rank 2.16 -> 2.05 clean, 2.39 -> 2.34 with 5%
# anomalies in training; dependency anomalies most) and the 8x8 digits with
# five normal classes (three seeds: +0.7 and +0.2 ROC-AUC), and left
# Fashion-MNIST, scored without the ELBO, where it was (one class -0.02,
# first five +0.05 over three seeds; docs/benchmark.md).
DETECTOR_KL_WEIGHT = 0.5
# The transformation classifier trains on every transformation and scores
# the first 4: of a square image's 8, the quarter turns without the mirror
# images, which halves its scoring work at the same quality on every
# benchmark table (docs/performance.md, "Scoring four copies").
SCORED_TRANSFORMATIONS = 4
# The transformation classifier trains on images shifted by up to one pixel
# per this many of their shorter side (2 of 28, 1 of 14 to 27, none below
# 14), so that it learns which way up the content is rather than where the
# pixels sit: on Fashion-MNIST, with several normal classes and with
# anomalies in the training set, its features then tell more anomalies apart
# (docs/benchmark.md, "Shifted training images"). On 28x28 images that is
# the usual 2-pixel augmentation. Rounding up to 1 pixel on 8x8 images
# (an eighth of the side) lost 8-10 ROC-AUC on synthetic anomalies of flat
# digit rows, which a square number of features makes images.
SIDE_PER_SHIFT_PIXEL = 14


def auto_training_shift(image_shape):
    """Largest shift of the networks' training images of ``(C, H, W)``, in pixels."""
    return min(image_shape[1:]) // SIDE_PER_SHIFT_PIXEL


# The VAE outputs that are likelihoods of the input: a VAE trained on
# shifted images spreads its likelihood over the shifts (the ELBO alone lost
# 2-4 ROC-AUC on Fashion-MNIST), so vae_shift="auto" shifts only for scores
# that read none of them.
LIKELIHOOD_OUTPUTS = (*DECODED_OUTPUTS, *MONTE_CARLO_OUTPUTS)


# Fewest rows left to train on when calibration rows are held out.
MIN_TRAINING_ROWS = 2


@fill_doc
class VAEOutlierDetector(OutlierMixin, _BaseVAE):
    """Unsupervised outlier detection with a variational autoencoder.

    The VAE learns the distribution of the training data. By default
    (``score_type="auto"``) a sample's score sums parts, each standardised
    by its training scores. For rows of features: its evidence lower bound
    (ELBO) on log p(x) and how close the row lies to its nearest training
    rows. For images: how close its latent code lies to its nearest
    training codes, and two scores of a transformation classifier trained
    beside the VAE (which rotation or flip an image went through): how
    surely it recognises the sample's transformations, and how close the
    sample's features lie to the training images'; images under 14 pixels
    of side add the ELBO. Typical samples score high, anomalies low.
    ``score_type`` picks another score of the same models, e.g. the ELBO
    alone. Images (square inputs, image arrays or an explicit
    ``image_shape``) get a convolutional VAE; other inputs a fully connected
    one.

    Scores follow scikit-learn: ``score_samples`` is higher for more normal
    samples, ``decision_function`` is negative for outliers and ``predict``
    returns +1 for inliers and -1 for outliers. (PyOD's convention is the
    opposite: higher = more anomalous.)

    Parameters
    ----------
    %(vae_parameters)s
    contamination : "auto" or float, default="auto"
        How the threshold ``offset_`` is set from the calibration scores
        (see ``calibration_fraction``).

        - If ``"auto"``, the lower Tukey fence ``Q1 - 1.5 * IQR`` of the
          calibration scores: samples far below the bulk of the normal data
          are outliers, with no guess of their share.
        - If a float in (0, 0.5], the share of new normal data flagged: with
          held-out calibration rows, ``predict`` flags exactly the samples
          whose conformal p-value (``score_pvalues``) is at most
          ``contamination``, so a new normal sample is flagged with
          probability at most ``contamination`` (and, for a calibration set
          of n rows, more than ``contamination - 1 / (n + 1)``). With
          ``calibration_fraction=None``, that share of the training data is
          flagged (scikit-learn's convention), which new normal data
          exceeds.

    calibration_fraction : float in (0, 1) or None, default=0.2
        Share of the training rows held out from training, chosen at random
        (seeded by ``random_state``), whose scores set the thresholds and
        the p-values. The networks fit training data more tightly than new
        data, so thresholds from training scores flag more new normal data
        than they promise; held-out scores are exchangeable with new normal
        data, which makes ``contamination`` and ``score_pvalues`` hold as
        stated. ``None`` trains on every row and sets the thresholds from
        the training scores (no p-values). If fewer than 2 rows would be
        left to train on, nothing is held out and a warning says so.

    score_type : str, ScoreTerm or tuple, default="auto"
        The anomaly score of ``score_samples``, higher = more normal for
        all of them (see Notes); ``fit`` trains and calibrates only what it
        needs. A score name, a :class:`skvae.terms.ScoreTerm` of your own,
        or a tuple of names and terms, whose scores are standardised by the
        training scores and summed (a :class:`skvae.terms.StandardizedSum`).
        The names:

        - ``"auto"``: on image input the sum of ``("latent_knn",
          "orientation", "transformation_knn")``, with ``"elbo"`` added
          on images under 14 pixels of shorter side (of ``("elbo",
          "latent_knn")`` with ``transformations=None``); on flat rows of
          ``("elbo", "input_knn")``.
        - ``"elbo"``: ELBO at the posterior mean, in nats.
        - ``"iwae"``: importance-weighted bound on log p(x) with
          ``n_samples`` posterior draws, in nats.
        - ``"reconstruction"``: log p(x|z) at the posterior mean, in nats.
        - ``"reconstruction_probability"``: mean of log p(x|z) over
          ``n_samples`` posterior draws (An & Cho 2015), in nats.
        - ``"latent_mahalanobis"``: minus the Mahalanobis distance of the
          posterior mean to the training codes.
        - ``"latent_knn"``: minus the mean distance of the posterior mean to
          its ``n_neighbors`` nearest training codes (standardised).
        - ``"input_knn"``: minus the mean distance of the input row itself
          to its ``n_neighbors`` nearest training rows (features
          standardised by the training rows).
        - ``"elbo_mahalanobis"``: the sum of ``"elbo"`` and
          ``"latent_mahalanobis"``, each standardised.
        - ``"transformation"``: the mean log-probability the transformation
          classifier gives the right transformation of each transformed copy
          of the sample (image input only).
        - ``"orientation"``: the same for the right transformation or its
          mirror image, which says which way up the sample is but not
          whether it is mirrored (image input only).
        - ``"transformation_knn"``: minus the mean distance of the sample's
          transformation-classifier features (averaged over its transformed
          copies) to those of its ``n_neighbors`` nearest training images
          (image input only).

        A changed ``score_type`` takes a refit: the fitted state
        (``score_term_``, ``offset_``, ``calibration_scores_``) is that of the
        score the fit used, and the scoring methods raise if ``score_type``
        has changed since.

    transformations : "auto" or None, default="auto"
        Whether ``score_type="auto"`` includes the transformation
        classifier's two scores on image input: ``"auto"`` includes them,
        and ``fit`` trains the classifier (8 transformations of square
        images: 4 quarter turns, each with or without a horizontal flip; 4
        of other images: half turns and flips; each training image first
        shifted by up to ``transformation_shift`` pixels, so that the
        classifier reads which way up the content is rather than where its
        pixels sit) as it trains the VAE
        (the same ``max_epochs``, ``batch_size``, ``lr``, early stopping
        and warm start), with the stride-2 convolutions of ``hidden_dims``
        and one more of twice the last width (32, 64 and 128 channels by
        default).
        Scoring classifies the first 4 transformed copies of each image (of
        a square image, its quarter turns). ``None`` leaves them out,
        which saves about two fifths of the fit time of images. A score that
        names a transformation term needs ``"auto"``.

    transformation_shift : "auto" or int, default="auto"
        Largest shift, in pixels along each axis, of the transformation
        classifier's training images (zero-filled, drawn per image; scoring
        never shifts). ``"auto"`` is a pixel per 14 of the shorter side: 2
        pixels of 28x28 images, none of images under 14 pixels. On small
        images whose anomalies are other kinds of object (the 8x8 digits),
        ``1`` scored better, but worse on anomalies made by breaking the
        features' dependencies (docs/detection.md). Must be smaller than
        the shorter side; ignored without the classifier.

    transformation_precision : {"auto", "float32", "bfloat16"}, default="auto"
        Arithmetic of the transformation classifier's convolutions when it
        scores (it always trains in float32). ``"bfloat16"`` classifies
        about 2.4x faster on CPUs with AMX (Intel Xeon since Sapphire
        Rapids), which scores images 1.3-1.4x faster, with the same
        ROC-AUC to 0.04 on every benchmark split; scores differ from
        float32's by about 1e-3 relative. ``"auto"`` is ``"bfloat16"`` on a
        CPU with AMX-BF16 and ``"float32"`` elsewhere, decided where the
        detector scores. Either way a sample's score does not depend on
        the other samples it is scored with. Pick ``"float32"`` to compare
        scores with an ONNX export (which runs float32) or across machines
        to more than three digits. Ignored without the classifier.

    vae_shift : "auto" or int, default="auto"
        Largest shift, in pixels along each axis, of the VAE's training
        images (zero-filled, drawn per image and step; scoring never
        shifts). Shifted, the VAE gives an image and its copy moved by a
        pixel or two nearby codes, so the ``"latent_knn"`` distance
        compares what the images show rather than where their pixels sit;
        but its likelihoods spread over the shifts. ``"auto"`` shifts by a
        pixel per 14 of the shorter side (2 pixels of 28x28 images, none of
        images under 14 pixels) when the score reads the latent codes and
        none of the VAE's likelihoods (``"elbo"``, ``"reconstruction"``,
        ``"iwae"``, ``"reconstruction_probability"``), as the default score
        of such images does; otherwise it does not shift. Must be smaller
        than the shorter side; ignored for rows of features.

    n_neighbors : int or "auto", default="auto"
        Number of nearest training points averaged by the ``"latent_knn"``,
        ``"transformation_knn"`` and ``"input_knn"`` scores. ``"auto"`` takes 3%% of the
        indexed training rows, at least 5
        (:func:`skvae.terms.auto_n_neighbors`): a neighbourhood wider than
        the small clusters that unlabelled anomalies form in the training
        set, so that they do not hide test anomalies like them. On training
        data known to be clean, a small number such as 5 is a little sharper
        (docs/benchmark.md).

    n_samples : int, default=16
        Number of posterior draws of the Monte-Carlo scores (``"iwae"`` and
        ``"reconstruction_probability"``); ignored by the others. Each draw
        costs one decoder pass.

    Attributes
    ----------
    %(vae_attributes)s
    offset_ : float
        Threshold on ``score_samples``: ``decision_function`` is
        ``score_samples - offset_``.
    calibration_indices_ : ndarray of shape (n_calibration,)
        Sorted indices of the rows of ``X`` that ``fit`` held out from
        training to calibrate on; empty when nothing was held out.
    calibration_scores_ : ndarray of shape (n_calibration,)
        Sorted scores of the rows held out by ``calibration_fraction`` (of
        the training rows when nothing was held out, or of a random 20,000
        of them): what ``offset_`` and ``score_pvalues`` come from.
    score_type_ : str, ScoreTerm or tuple
        The ``score_type`` of the fit.
    score_term_ : skvae.terms.ScoreTerm
        The fitted score: one term, or a
        :class:`skvae.terms.StandardizedSum` of several (``score_type="auto"``
        among them), whose ``terms_`` are the fitted parts. It is fitted on
        the training rows, or on a random 20,000 of them when there are more
        (the neighbour index keeps that many points).
    posterior_draws_ : ndarray of shape (n_samples, latent_dim) or None
        The standard-normal draws every sample's Monte-Carlo scores share
        (``"iwae"``, ``"reconstruction_probability"``); ``None`` when the
        score draws none.
    transformation_net_ : skvae.net.TransformationNet or None
        The fitted skorch net of the transformation classifier (its module
        is a :class:`skvae.nn.TransformationClassifier`); ``None`` when the
        score does not use it.

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
    - ``"latent_knn"``: ``-(1/k) sum_j ||u - u_j||`` over the ``k =
      n_neighbors`` training codes ``u_j`` nearest to ``u``, where ``u`` is
      the posterior mean standardised per dimension by the training codes'
      mean and standard deviation. Unlike one Gaussian, it fits training
      data made of several clusters (several normal classes).
    - ``"transformation"``: ``(1/T) sum_t log p(t | t(x))`` over the ``T``
      transformations ``t`` of the transformation classifier (Golan &
      El-Yaniv 2018): a classifier trained to tell which rotation or flip a
      training image went through is less sure of it on an unusual image.
    - ``"orientation"``: ``(1/T) sum_t log(p(t | t(x)) + p(m(t) | t(x)))``,
      ``m(t)`` the transformation ``t`` with its flip toggled: the
      probability of the right turn, mirrored or not. The mirror image of a
      symmetric object looks like the object, so on such normal data the
      classifier cannot tell ``t`` from ``m(t)``, and the transformation's
      own probability tops out near a half while rewarding an asymmetric
      anomaly that the classifier happens to place.
    - ``"transformation_knn"``: the ``"latent_knn"`` computation on the
      classifier's pooled features averaged over the sample's transformed
      copies.
    - ``"auto"`` and every tuple: ``sum_p (x_p - m_p) / s_p`` over the
      parts ``p``, ``x_p`` the part's score, standardised like
      ``"elbo_mahalanobis"``; ``score_parts`` returns the summands.

    The two nearest-neighbour types never count a training point as its
    own neighbour: training points identical to the scored sample are left
    out. A training sample thus scores as an unseen sample at its place
    would, ``fit_predict(X)`` equals ``fit(X).predict(X)``, and thresholds
    set on the training scores hold on new data.

    All scores are deterministic, and a sample's score does not depend on
    the other samples it is scored with. The Monte-Carlo scores draw
    ``z_k = mu + sigma * eps_k`` with one set of standard-normal draws
    ``eps`` shared by all samples and all calls, seeded from
    ``random_state`` at fit.

    ``fit`` trains on all rows but the ``calibration_fraction`` it holds
    out: the VAE always (``score`` is its ELBO), the transformation
    classifier only when the score reads its outputs. It then fits the
    score's statistics (neighbour indexes, latent Gaussian,
    standardisation; ``score_term_``) on one pass over the training rows,
    when the score has any, and scores the held-out rows as new data to set
    ``offset_`` and ``calibration_scores_``. Parameters changed after fit
    take effect at the next fit, as in scikit-learn; a changed
    ``score_type`` makes the scoring methods raise until then. To see which
    term flags a sample, fit with several and read ``score_parts``.

    Thresholds you can trust: held-out scores are exchangeable with the
    scores of new normal data, so ``contamination=alpha`` flags at most a
    share ``alpha`` of new normal samples, ``score_pvalues`` are valid
    conformal p-values, and ``predict_with_fdr`` controls the false-discovery
    rate over a batch (Bates et al. 2023 [5]_). Thresholds from training
    scores (``calibration_fraction=None``) flag more: the networks fit their
    training rows more tightly than new ones (docs/thresholds.md measures
    both). The price is a fifth less training data.

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
    .. [4] Golan, I. & El-Yaniv, R. (2018). Deep Anomaly Detection Using
       Geometric Transformations. NeurIPS. :arxiv:`1805.10917`
    .. [5] Bates, S., Candes, E., Lei, L., Romano, Y. & Sesia, M. (2023).
       Testing for outliers with conformal p-values. Annals of Statistics
       51(1). :arxiv:`2104.08279`

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
        "calibration_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "score_type": [StrOptions(set(SCORE_NAMES)), tuple, list, ScoreTerm],
        "transformations": [StrOptions({"auto"}), None],
        "transformation_shift": [
            StrOptions({"auto"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "transformation_precision": [StrOptions(set(PRECISIONS))],
        "vae_shift": [
            StrOptions({"auto"}),
            Interval(Integral, 0, None, closed="left"),
        ],
        "n_neighbors": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
    }
    _auto_training_steps = DETECTOR_TRAINING_STEPS
    _auto_kl_weight = DETECTOR_KL_WEIGHT
    # Saved before the classifier could score in bfloat16: float32, as fitted.
    _params_of_older_models = {"transformation_precision": "float32"}

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
        contamination="auto",
        calibration_fraction=0.2,
        score_type="auto",
        transformations="auto",
        transformation_shift="auto",
        transformation_precision="auto",
        vae_shift="auto",
        n_neighbors="auto",
        n_samples=16,
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
        self.contamination = contamination
        self.calibration_fraction = calibration_fraction
        self.score_type = score_type
        self.transformations = transformations
        self.transformation_shift = transformation_shift
        self.transformation_precision = transformation_precision
        self.vae_shift = vae_shift
        self.n_neighbors = n_neighbors
        self.n_samples = n_samples

    @fit_all_or_nothing
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
        term = self._build_score_term()
        seed = self._training_seed()
        X_fit, X_calibration = self._split_calibration_rows(X, seed)
        self._fit_networks(term, X_fit, seed)
        self._fit_score(term, X_fit, X_calibration, seed)
        return self

    def _split_calibration_rows(self, X, seed):
        """Set ``calibration_indices_``; return the rows to train on and the others.

        The held-out rows are None when nothing is held out.
        """
        self.calibration_indices_ = self._calibration_indices(len(X), seed)
        if not len(self.calibration_indices_):
            return X, None
        training = np.ones(len(X), dtype=bool)
        training[self.calibration_indices_] = False
        return (
            take_rows(X, np.flatnonzero(training)),
            take_rows(X, self.calibration_indices_),
        )

    def _fit_networks(self, term, X, seed):
        """Train the VAE, and what else ``term`` reads, on validated rows ``X``."""
        self._fit_vae(X, seed=seed)
        # The Monte-Carlo draws and the transformation classifier get their
        # own streams, derived from the training seed so that random_state
        # fixes them too.
        seeds = np.random.SeedSequence([seed, 1]).generate_state(2)
        self.posterior_draws_ = None
        if _reads(term, MONTE_CARLO_OUTPUTS):
            draws = latent_noise(self.n_samples, self.latent_dim, int(seeds[0]))
            self.posterior_draws_ = draws.numpy()
        if _reads(term, TRANSFORMATION_OUTPUTS):
            self._fit_transformation_net(X, int(seeds[1]))
        else:
            self.transformation_net_ = None

    def _fit_score(self, term, X_fit, X_calibration, seed):
        """Fit ``term`` on the training rows; set the threshold from held-out ones.

        Without held-out rows, the training rows' scores set it. Above
        ``TERM_FIT_MAX_ROWS`` training rows, both use a random subset of
        that many, so that this step's time and memory stay bounded.
        """
        train_scores = None
        if term.requires_fit or X_calibration is None:
            rows = self._term_fit_rows(X_fit, seed)
            outputs = self._network_outputs(rows, term)
            fit_score = term.fit_score if term.requires_fit else term.score
            train_scores = fit_score(outputs)
        self.score_term_ = term
        self.score_type_ = clone(self.score_type, safe=False)
        if X_calibration is None:
            calibration_scores = train_scores
        else:
            calibration_scores = self._score_outputs(X_calibration)
        self.calibration_scores_ = np.sort(calibration_scores)
        self.offset_ = self._threshold(self.calibration_scores_)

    @staticmethod
    def _term_fit_rows(X, seed):
        """Return the training rows the score terms fit on: all, or a random subset."""
        if len(X) <= TERM_FIT_MAX_ROWS:
            return X
        # A stream of its own, derived from the training seed.
        subset_seed = np.random.SeedSequence([seed, 3]).generate_state(1)[0]
        rng = np.random.default_rng(subset_seed)
        return take_rows(
            X, np.sort(rng.choice(len(X), TERM_FIT_MAX_ROWS, replace=False))
        )

    def _build_score_term(self):
        """Return the unfitted term of ``score_type``, checked against the input."""
        images = len(self.input_shape_) == 3
        term = build_score(
            self.score_type,
            n_neighbors=self.n_neighbors,
            auto_names=auto_terms(
                self.input_shape_, transformations=self.transformations
            ),
        )
        check_requires(term)
        if _reads(term, TRANSFORMATION_OUTPUTS) and (
            not images or self.transformations is None
        ):
            reason = "the input is not images" if not images else "transformations=None"
            raise ValueError(
                f"score_type={self.score_type!r} needs the transformation "
                f"classifier, which is not trained because {reason}. Pass image "
                "input with transformations='auto', or another score_type."
            )
        # Fail before any training.
        if _reads(term, TRANSFORMATION_OUTPUTS):
            self._training_shift()
        self._vae_training_shift(term)
        return term

    def _training_shift(self):
        """Return the classifier's largest training shift for the fitted input."""
        if self.transformation_shift == "auto":
            return auto_training_shift(self.input_shape_)
        return self._checked_shift("transformation_shift", self.transformation_shift)

    def _vae_training_shift(self, term):
        """Return the VAE's largest training shift for the fitted input and ``term``."""
        if len(self.input_shape_) != 3:
            return 0
        if self.vae_shift != "auto":
            return self._checked_shift("vae_shift", self.vae_shift)
        if _reads(term, LIKELIHOOD_OUTPUTS) or not _reads(term, ("latent_means",)):
            return 0
        return auto_training_shift(self.input_shape_)

    def _checked_shift(self, name, shift):
        """``shift`` (parameter ``name``), if it leaves the images in view."""
        shorter_side = min(self.input_shape_[1:])
        if shift >= shorter_side:
            raise ValueError(
                f"{name}={shift} would move {shorter_side}-pixel images out of "
                f"view. Pass fewer pixels than the shorter side ({shorter_side}), "
                "or 'auto'."
            )
        return shift

    def _calibration_indices(self, n_rows, seed):
        """Sorted indices of the training rows to hold out for calibration.

        Empty when ``calibration_fraction`` is None or too few rows would be
        left to train on (with a warning).
        """
        if self.calibration_fraction is None:
            return np.array([], dtype=np.intp)
        n_calibration = math.ceil(self.calibration_fraction * n_rows)
        if n_rows - n_calibration < MIN_TRAINING_ROWS:
            warnings.warn(
                f"X has {n_rows} samples, too few to hold out "
                f"calibration_fraction={self.calibration_fraction} of them and "
                f"keep {MIN_TRAINING_ROWS} to train on; the thresholds come from "
                "the training scores, which new normal data falls below more "
                "often than contamination says, and score_pvalues is not "
                "available. Pass more samples or calibration_fraction=None.",
                UserWarning,
                stacklevel=4,
            )
            return np.array([], dtype=np.intp)
        # A stream of its own: the split must not move the training seeds.
        split_seed = np.random.SeedSequence([seed, 2]).generate_state(1)[0]
        order = np.random.default_rng(split_seed).permutation(n_rows)
        return np.sort(order[:n_calibration])

    def _fit_transformation_net(self, X, seed):
        """Train the transformation classifier on image rows ``X``.

        Sets ``transformation_net_``. It trains through the VAE's path
        (:meth:`_fit_net`): the same epochs, batches, early stopping,
        divergence guard and warm start.
        """
        spec = self._net_spec("transformation_net_")
        previous = getattr(self, "transformation_net_", None)
        self.transformation_net_ = self._fit_net(spec, previous, X, seed=seed)

    def _net_params(self):
        max_shift = self._vae_training_shift(self._build_score_term())
        return {**super()._net_params(), "max_shift": max_shift}

    def _net_spec(self, attribute):
        """Return the :class:`NetSpec` of a fitted net: the VAE or the classifier."""
        if attribute != "transformation_net_":
            return super()._net_spec(attribute)
        return NetSpec(
            TransformationNet,
            TransformationClassifier,
            {
                "image_shape": self.input_shape_,
                "channels": self._transformation_channels(),
                "kernel_size": self.kernel_size,
                "n_scored": SCORED_TRANSFORMATIONS,
            },
            {"max_shift": self._training_shift()},
            [],
        )

    def _transformation_channels(self):
        """Return the classifier's widths: the VAE's and one of twice the last."""
        channels = tuple(self.hidden_dims or DEFAULT_HIDDEN_DIMS["conv"])
        return (*channels, 2 * channels[-1])

    def _expected_failed_checks(self):
        if self.calibration_fraction is None:
            return {}
        reason = (
            "the check asks that contamination be the share of training "
            "samples flagged; with held-out calibration (calibration_fraction, "
            "the default) it is the share of new normal samples flagged, and "
            "the training samples, fitted more tightly, are flagged less often. "
            "calibration_fraction=None passes the check."
        )
        return {
            "check_outliers_train": reason,
            "check_outliers_train(readonly_memmap=True)": reason,
            "check_outliers_fit_predict": reason,
        }

    def _threshold(self, scores):
        """Return the offset for the calibration ``scores`` of one score type."""
        if self.contamination == "auto":
            q1, q3 = np.percentile(scores, [25, 75])
            return float(q1 - 1.5 * (q3 - q1))
        if len(self.calibration_indices_):
            # Flags exactly the samples whose conformal p-value is at most
            # contamination: a new normal sample with at most that probability.
            return conformal_threshold(scores, self.contamination)
        # Training scores: flag that share of the training data.
        return float(np.percentile(scores, 100.0 * self.contamination))

    def score_samples(self, X):
        """Per-sample anomaly score chosen by ``score_type``; lower is more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples; images may be ``(n, H, W)`` or ``(n, C, H, W)``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The score of each sample (nats for ``"elbo"``, ``"iwae"``,
            ``"reconstruction"`` and ``"reconstruction_probability"``; the
            others are unitless); higher means more typical of the training
            data.
        """
        check_is_fitted(self)
        return self._score_samples(self._validate_input(X, reset=False))

    def _score_samples(self, X):
        """Private version of score_samples without input validation."""
        self._check_score_type_unchanged()
        return self._score_outputs(X)

    def _score_outputs(self, X):
        """Scores of the fitted ``score_term_`` of validated rows ``X``."""
        term = self.score_term_
        return self._map_chunks(
            lambda rows: term.score(self._network_outputs(rows, term)), X
        )

    def _map_chunks(self, score, X):
        """``score(rows)`` of consecutive chunks of validated rows ``X``, stacked.

        Each chunk goes from the networks' outputs to its scores before the
        next is read, so memory does not grow with the number of rows; a
        row's score does not depend on its chunk (the scoring passes and the
        terms treat rows on their own). ``score`` returns an array, or a
        dict of them; each chunk's result is written into output arrays
        allocated once, so the peak holds the outputs only once.
        """
        outputs = None
        for start in range(0, max(len(X), 1), SCORE_CHUNK_ROWS):
            chunk = score(X[start : start + SCORE_CHUNK_ROWS])
            parts = chunk if isinstance(chunk, dict) else {None: chunk}
            if outputs is None:
                outputs = {
                    key: np.empty((len(X), *part.shape[1:]), dtype=part.dtype)
                    for key, part in parts.items()
                }
            for key, part in parts.items():
                outputs[key][start : start + len(part)] = part
        return outputs if isinstance(chunk, dict) else outputs[None]

    def _network_outputs(self, X, term):
        """One pass of the networks over rows ``X``: the outputs ``term`` reads.

        The pass runs the decoder, draws the posterior samples and runs the
        transformation classifier only if the term reads their outputs.
        """
        noise = self.posterior_draws_ if _reads(term, MONTE_CARLO_OUTPUTS) else None
        transformation_module = None
        if _reads(term, TRANSFORMATION_OUTPUTS):
            transformation_module = classifier_in_precision(
                self.transformation_net_.module_,
                resolve_precision(
                    self.transformation_precision, self.transformation_net_.device
                ),
            )
        return self._map_module(
            per_sample_outputs,
            X,
            noise=noise,
            transformation_module=transformation_module,
            inputs=_reads(term, INPUT_OUTPUTS),
            decoded=_reads(term, DECODED_OUTPUTS),
        )

    def _check_score_type_unchanged(self):
        """Raise if ``score_type`` was changed since fit."""
        if _score_key(self.score_type) != _score_key(self.score_type_):
            raise NotFittedError(
                f"This {type(self).__name__} was fitted with score_type="
                f"{self.score_type_!r}, and score_type is now "
                f"{self.score_type!r}. fit trains and calibrates only what its "
                "score needs, so call fit again after changing score_type; to "
                "compare several scores from one fit, fit with a tuple of them "
                "and read score_parts."
            )

    def score_parts(self, X):
        """Each part's contribution to ``score_samples``, by name.

        For a sum of terms (``score_type="auto"`` or a tuple), each part's
        standardised score: the parts add up to ``score_samples``, and the
        lowest part says which term flags a sample most. For a single term,
        its scores under its name.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        parts : dict of str to ndarray of shape (n_samples,)
            The scores of each part, in the order of the sum.

        Examples
        --------
        >>> import numpy as np
        >>> from skvae import VAEOutlierDetector
        >>> X = np.random.RandomState(0).normal(size=(64, 4))
        >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
        >>> parts = det.score_parts(X[:3])
        >>> list(parts)
        ['elbo', 'input_knn']
        >>> bool(np.allclose(sum(parts.values()), det.score_samples(X[:3])))
        True
        """
        check_is_fitted(self)
        X = self._validate_input(X, reset=False)
        self._check_score_type_unchanged()
        term = self.score_term_
        if isinstance(term, StandardizedSum):
            part_scores = term.part_scores
        else:
            score_type = self.score_type_
            names = score_type if isinstance(score_type, tuple | list) else [score_type]
            name = name_terms(names)[0]

            def part_scores(outputs):
                return {name: term.score(outputs)}

        return self._map_chunks(
            lambda rows: part_scores(self._network_outputs(rows, term)), X
        )

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

    def score_pvalues(self, X):
        """Conformal p-value of each sample under the hypothesis that it is normal.

        ``p = (1 + #{calibration scores <= s}) / (n_calibration + 1)`` for
        the sample's ``score_samples`` value ``s``, against the scores of the
        rows that ``fit`` held out (``calibration_scores_``).

        **Guarantee** (split-conformal, Bates et al. 2023): if ``x`` is a
        normal sample exchangeable with the training data, e.g. drawn
        independently from the same distribution, then ``P(p <= alpha) <=
        alpha`` for every ``alpha``, so flagging ``p <= alpha`` flags at most
        a share ``alpha`` of new normal data (in expectation over the
        calibration set; the smallest p-value is ``1 / (n_calibration +
        1)``). Drifting data breaks the assumption, and with it the
        guarantee.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        pvalues : ndarray of shape (n_samples,)
            Values in ``(0, 1]``; small for samples less typical than almost
            every calibration sample.

        Raises
        ------
        NotFittedError
            If ``fit`` held out no calibration rows (``calibration_fraction=None``
            or too few samples): p-values from training scores carry no
            guarantee.
        """
        check_is_fitted(self)
        if not len(self.calibration_indices_):
            raise NotFittedError(
                "score_pvalues needs calibration scores of samples the networks "
                "did not train on, and fit held out none (calibration_fraction="
                f"{self.calibration_fraction}, or too few samples to split). "
                "Refit with calibration_fraction=0.2 (the default)."
            )
        return conformal_pvalues(self.calibration_scores_, self.score_samples(X))

    def predict_with_fdr(self, X, alpha=0.1):
        """Label a batch with the false-discovery rate controlled at ``alpha``.

        Applies the Benjamini-Hochberg procedure to ``score_pvalues(X)``:
        among the samples labelled -1, the expected share of normal ones is
        at most ``alpha`` (Bates et al. 2023; under the assumption of
        ``score_pvalues``). Unlike ``predict``, a sample's label depends on
        the rest of the batch: the more clear outliers it holds, the more
        samples are flagged.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            The batch of samples to test together.
        alpha : float in (0, 1), default=0.1
            The false-discovery rate to control.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            +1 for inliers, -1 for outliers (the discoveries).
        """
        rejected = benjamini_hochberg(self.score_pvalues(X), alpha)
        return np.where(rejected, -1, 1)


def _reads(term, outputs):
    """Whether ``term`` reads any of ``outputs``."""
    return not set(term.requires).isdisjoint(outputs)


def _score_key(score_type):
    """Return a value equal for equal ``score_type`` parameters (terms by params)."""
    if isinstance(score_type, ScoreTerm):
        params = score_type.get_params(deep=False)
        return type(score_type), tuple(
            (name, _score_key(value)) for name, value in sorted(params.items())
        )
    if isinstance(score_type, tuple | list):
        return tuple(_score_key(part) for part in score_type)
    return score_type
