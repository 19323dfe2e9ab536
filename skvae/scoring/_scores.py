"""Per-sample scores of a fitted VAE module: plain functions of a module and rows.

The module runs in eval mode (latent code = posterior mean), so scores are
deterministic, and a sample's score does not depend on the rest of its batch.

The Monte-Carlo scores (:func:`iwae_scores`,
:func:`reconstruction_probability_scores`) keep both properties by reusing one
set of standard-normal draws ``eps`` of shape ``(n_draws, latent_dim)``, made
once by :func:`latent_noise`, for every sample: the k-th posterior sample of x
is ``z_k = mu(x) + sigma(x) * eps_k``. A sample's score is then a fixed
function of that sample, whatever it is scored with and however often.
"""

import math

import numpy as np
import torch
from sklearn.covariance import LedoitWolf

from ..nn import elbo
from ..utils._torch import evaluating
from ._batches import map_batches, score_block_rows

# The per-sample outputs of per_sample_outputs, by what gives them: the VAE's
# pass, the posterior draws (``noise``) and the transformation classifier.
# Score terms (skvae.terms) name the outputs they read from these.
VAE_OUTPUTS = ("elbo", "reconstruction", "latent_means")
# The VAE outputs that need the decoder: without them a pass runs the
# encoder alone.
DECODED_OUTPUTS = ("elbo", "reconstruction")
MONTE_CARLO_OUTPUTS = ("iwae", "reconstruction_probability")
TRANSFORMATION_OUTPUTS = ("transformation", "orientation", "transformation_features")
# The input rows themselves, flattened, for terms that compare inputs; given
# only when asked for, since they are as large as the input.
INPUT_OUTPUTS = ("inputs",)


def elbo_scores(module, X, **kwargs):
    """Per-sample ELBO (beta = 1) at the posterior mean, shape ``(n_samples,)``.

    ``log p(x|z=mu) - KL(q(z|x) || p(z))``; higher means more typical.
    Keyword arguments go to :func:`map_batches`.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE, e.g. a fitted estimator's ``module_``.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    **kwargs
        ``input_shape`` (the estimator's ``input_shape_``), ``batch_size``
        and ``device``, passed to :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The ELBO of each sample, in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import elbo_scores
    >>> elbo_scores(module, X, input_shape=(1, 8, 8)).shape
    (5,)
    """

    def batch_elbo(module, x):
        return elbo(*module.elbo_terms(x, module(x)))

    return map_batches(batch_elbo, module, X, **kwargs)


def per_sample_outputs(
    module,
    X,
    *,
    noise=None,
    transformation_module=None,
    inputs=False,
    decoded=True,
    **kwargs,
):
    """Everything the scores need from a sample, in one pass over ``X``.

    Returns a dict of arrays with one row per sample:

    - ``"elbo"``: :func:`elbo_scores`;
    - ``"reconstruction"``: :func:`reconstruction_scores` (in eval mode the
      ELBO's reconstruction term is taken at the posterior mean);
    - ``"latent_means"``: :func:`latent_means`, shape ``(n, latent_dim)``;
    - with ``noise``, also ``"iwae"`` and ``"reconstruction_probability"``
      (:func:`iwae_scores`, :func:`reconstruction_probability_scores`), from
      the same posterior draws;
    - with a ``transformation_module`` (a fitted
      :class:`~skvae.nn.TransformationClassifier` on the same device), also
      its outputs, as :func:`transformation_outputs` returns them;
    - with ``inputs=True``, also ``"inputs"``: the rows themselves, flattened
      to ``(n, n_features)``.

    With ``decoded=False`` the pass runs the encoder alone and leaves out
    ``"elbo"`` and ``"reconstruction"`` (about half the VAE's work, for
    scores that read neither). Keyword arguments go to :func:`map_batches`;
    with a ``transformation_module`` the passes are by default those of
    :func:`score_block_rows` for its transformed copies (shorter: each image
    goes through the classifier several times).
    """

    def batch_outputs(module, x):
        return batch_score_outputs(
            module,
            x,
            noise=noise,
            transformation_module=transformation_module,
            inputs=inputs,
            decoded=decoded,
        )

    if transformation_module is None:
        return map_batches(batch_outputs, module, X, **kwargs)
    kwargs = _copies_pass(transformation_module, kwargs)
    with evaluating(transformation_module):
        return map_batches(batch_outputs, module, X, **kwargs)


def _copies_pass(transformation_module, kwargs):
    """``kwargs`` with the pass length of passes of transformed copies as default."""
    if kwargs.get("batch_size") is not None or "input_shape" not in kwargs:
        return kwargs
    batch_size = score_block_rows(
        kwargs["input_shape"],
        kwargs.get("device", "cpu"),
        copies=transformation_module.n_copies,
    )
    return {**kwargs, "batch_size": batch_size}


def batch_score_outputs(
    module, x, *, noise=None, transformation_module=None, inputs=False, decoded=True
):
    """Compute the tensors :func:`per_sample_outputs` returns, for one batch ``x``.

    Exposed for :mod:`skvae.export`, whose scorer runs the same code.
    """
    if decoded:
        output = module(x)
        log_px, kl = module.elbo_terms(x, output)
        outputs = {
            "elbo": elbo(log_px, kl),
            "reconstruction": log_px,
            "latent_means": output.mu,
        }
    else:
        # In eval mode the forward pass encodes to the same posterior mean.
        outputs = {"latent_means": module.encode_mean(x)}
    if noise is not None:
        draws = list(_posterior_draws(module, x, noise))
        log_px_k = torch.stack([log_px_k for log_px_k, _ in draws], dim=1)
        ratio_k = torch.stack([ratio for _, ratio in draws], dim=1)
        outputs["iwae"] = _log_mean_exp(log_px_k + ratio_k)
        outputs["reconstruction_probability"] = log_px_k.mean(dim=1)
    if transformation_module is not None:
        outputs.update(_transformation_batch_outputs(transformation_module, x))
    if inputs:
        outputs["inputs"] = x.flatten(start_dim=1)
    return outputs


def _log_mean_exp(log_w):
    """Row-wise ``log(mean(exp(log_w)))``, computed stably."""
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def latent_means(module, X, **kwargs):
    """Posterior means ``mu`` of q(z|x), shape ``(n_samples, latent_dim)``.

    Keyword arguments go to :func:`map_batches`.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE, e.g. a fitted estimator's ``module_``.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    **kwargs
        ``input_shape`` (the estimator's ``input_shape_``), ``batch_size``
        and ``device``, passed to :func:`map_batches`.

    Returns
    -------
    Z : ndarray of shape (n_samples, latent_dim)
        The posterior mean of each sample.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import latent_means
    >>> latent_means(module, X, input_shape=(1, 8, 8)).shape
    (5, 2)
    """
    return map_batches(lambda module, x: module.encode_mean(x), module, X, **kwargs)


def decoded_means(module, Z, **kwargs):
    """Return the decoder means E[x|z] of latent codes ``Z``, one flat row each.

    Keyword arguments go to :func:`map_batches`.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE, e.g. a fitted estimator's ``module_``.
    Z : ndarray of shape (n_samples, latent_dim)
        Latent codes.
    **kwargs
        ``batch_size`` and ``device``, passed to :func:`map_batches`.

    Returns
    -------
    X_decoded : ndarray of shape (n_samples, n_features)
        The decoder mean of each code, flattened.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> from skvae.scoring import decoded_means
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))
    >>> decoded_means(module, np.zeros((3, 2), dtype=np.float32)).shape
    (3, 64)
    """

    def decode_mean(module, z):
        return module.likelihood.mean(module.decode(z)).reshape(len(z), -1)

    return map_batches(decode_mean, module, Z, input_shape=(Z.shape[1],), **kwargs)


def reconstruction_scores(module, X, **kwargs):
    """Per-sample reconstruction log-likelihood ``log p(x|z=mu)``, in nats.

    The decoder's log-likelihood of x with the latent code at the posterior
    mean; higher means better reconstructed, i.e. more typical. For a
    Gaussian decoder with one shared variance it is a decreasing affine
    function of the squared reconstruction error, so it ranks samples exactly
    as the negative squared error does; for a Bernoulli decoder it is the
    negative binary cross-entropy. Keyword arguments go to
    :func:`map_batches`.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE, e.g. a fitted estimator's ``module_``.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    **kwargs
        ``input_shape`` (the estimator's ``input_shape_``), ``batch_size``
        and ``device``, passed to :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        ``log p(x|z=mu)`` of each sample, in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import reconstruction_scores
    >>> reconstruction_scores(module, X, input_shape=(1, 8, 8)).shape
    (5,)
    """

    def batch_log_px(module, x):
        return module.likelihood.log_prob(x, module.reconstruction_params(x))

    return map_batches(batch_log_px, module, X, **kwargs)


def latent_noise(n_draws, latent_dim, seed):
    """Standard-normal draws ``eps``, shape ``(n_draws, latent_dim)``, float32.

    Drawn from a fresh ``torch.Generator`` seeded with ``seed``, on the CPU,
    so the same arguments give the same draws on every machine and device.
    The Monte-Carlo scores use row ``k`` for the k-th posterior sample of
    every input: ``z_k = mu + sigma * eps_k``.

    Parameters
    ----------
    n_draws : int
        Number of draws K.
    latent_dim : int
        Size of the latent code.
    seed : int
        Seed of the generator.

    Returns
    -------
    noise : torch.Tensor of shape (n_draws, latent_dim)
        The draws, float32, on the CPU.

    Examples
    --------
    >>> from skvae.scoring import latent_noise
    >>> noise = latent_noise(16, 2, seed=0)
    >>> tuple(noise.shape), bool((noise == latent_noise(16, 2, seed=0)).all())
    ((16, 2), True)
    """
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((n_draws, latent_dim), generator=generator)


def _posterior_draws(module, x, noise, log_prob=None):
    """Yield ``(log p(x|z_k), log p(z_k) - log q(z_k|x))`` for each draw k.

    One decoder pass per draw: memory stays at one batch of reconstructions
    however many draws there are. ``log_prob(x, params)`` replaces the
    likelihood's ``log_prob`` (e.g. by its discretised probability).
    """
    if log_prob is None:
        log_prob = module.likelihood.log_prob
    mu, logvar = module.encode(x)
    noise = torch.as_tensor(noise, dtype=mu.dtype).to(mu.device)
    if noise.ndim != 2 or noise.shape[1] != mu.shape[1]:
        raise ValueError(
            f"noise must have shape (n_draws, latent_dim={mu.shape[1]}); "
            f"got {tuple(noise.shape)}."
        )
    sigma = torch.exp(0.5 * logvar)
    context = module.decoder_context(x)
    for eps in noise:
        z = mu + sigma * eps
        # log N(z; 0, I) - log N(z; mu, sigma^2): the 2*pi terms cancel, and
        # (z - mu) / sigma is eps itself.
        log_prior_ratio = -0.5 * (z.pow(2) - eps.pow(2) - logvar).sum(dim=1)
        params = module.decode(z, context)
        yield log_prob(x, params), log_prior_ratio


def iwae_scores(module, X, *, noise, **kwargs):
    """Per-sample importance-weighted bound on log p(x) (IWAE), in nats.

    ``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)`` with ``z_k = mu + sigma *
    eps_k`` for the K rows of ``noise`` (Burda et al. 2016), computed with a
    log-sum-exp. It is a lower bound on log p(x) in expectation over the
    draws, no looser than the ELBO and tighter as K grows; with K = 1 it is
    the single-sample Monte-Carlo ELBO. Higher means more typical.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    noise : tensor or ndarray of shape (n_draws, latent_dim)
        Standard-normal draws shared by every sample, e.g. from
        :func:`latent_noise`.
    **kwargs
        ``input_shape``, ``batch_size`` and ``device``, passed to
        :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The IWAE bound of each sample.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import elbo_scores, iwae_scores, latent_noise
    >>> noise = latent_noise(64, 2, seed=0)
    >>> iwae = iwae_scores(module, X, noise=noise, input_shape=(1, 8, 8))
    >>> iwae.shape
    (5,)
    """
    return per_sample_outputs(module, X, noise=noise, **kwargs)["iwae"]


def discrete_iwae_scores(module, X, *, noise, levels=256, **kwargs):
    """IWAE bound on the log-probability of each sample's quantised values, in nats.

    Like :func:`iwae_scores`, but ``p(x|z)`` is the probability mass the
    decoder's Gaussian puts on the quantisation cell of each value
    (:meth:`~skvae.nn.GaussianLikelihood.log_prob_discrete`), not its
    density at the value: for data quantised to ``levels`` values
    ``k / (levels - 1)`` (8-bit pixels scaled by 1/255, as skvae scales uint8
    input), the result is a lower bound on ``log P(x)`` of the discrete
    data, which is never positive. ``-score / (D ln 2)`` is then the bits
    per dimension, with no dequantisation noise and no point approximation
    (:func:`bits_per_dim` with ``discretization=None``).

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE with a Gaussian likelihood.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows, on the grid ``k / (levels - 1)``.
    noise : tensor or ndarray of shape (n_draws, latent_dim)
        Standard-normal draws shared by every sample (:func:`latent_noise`).
    levels : int, default=256
        Number of quantisation levels of the data.
    **kwargs
        ``input_shape``, ``batch_size`` and ``device``, passed to
        :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The bound on ``log P(x)`` of each sample.

    Examples
    --------
    Bits per dimension of 8-bit images:

    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> from skvae.scoring import bits_per_dim, discrete_iwae_scores, latent_noise
    >>> module = make_vae((1, 8, 8), 2, hidden_dims=(4,), decoder_var="learned")
    >>> pixels = np.random.RandomState(0).randint(0, 256, size=(5, 64))
    >>> X = (pixels / 255).astype(np.float32)  # the values k / 255
    >>> log_p = discrete_iwae_scores(
    ...     module, X, noise=latent_noise(16, 2, seed=0), input_shape=(1, 8, 8)
    ... )
    >>> bool((bits_per_dim(log_p, 64) > 0).all())  # a probability: never below 0
    True
    """
    if not hasattr(module.likelihood, "log_prob_discrete"):
        raise ValueError(
            "discrete_iwae_scores needs a Gaussian likelihood; the module's "
            f"likelihood is {type(module.likelihood).__name__}."
        )

    def log_prob(x, params):
        return module.likelihood.log_prob_discrete(x, params, levels)

    def batch_bound(module, x):
        draws = list(_posterior_draws(module, x, noise, log_prob))
        log_w = torch.stack([log_px + ratio for log_px, ratio in draws], dim=1)
        return _log_mean_exp(log_w)

    return map_batches(batch_bound, module, X, **kwargs)


def reconstruction_probability_scores(module, X, *, noise, **kwargs):
    """Per-sample Monte-Carlo mean of ``log p(x|z_k)`` over posterior draws.

    The reconstruction probability of An & Cho (2015), in log space:
    ``(1/K) sum_k log p(x|z_k)`` with ``z_k = mu + sigma * eps_k`` for the K
    rows of ``noise``. It estimates the expected reconstruction term
    ``E_q[log p(x|z)]`` of the ELBO, so unlike :func:`reconstruction_scores`
    it also accounts for the posterior's spread: a sample whose
    reconstruction breaks down under small moves of z scores low. (An & Cho
    average the densities p(x|z_k) themselves; in high dimension that mean is
    dominated by the single best draw, so the mean of the logs is used, as in
    most implementations.) Higher means more typical.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    noise : tensor or ndarray of shape (n_draws, latent_dim)
        Standard-normal draws shared by every sample, e.g. from
        :func:`latent_noise`.
    **kwargs
        ``input_shape``, ``batch_size`` and ``device``, passed to
        :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        The mean reconstruction log-likelihood of each sample, in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import latent_noise, reconstruction_probability_scores
    >>> noise = latent_noise(8, 2, seed=0)
    >>> reconstruction_probability_scores(
    ...     module, X, noise=noise, input_shape=(1, 8, 8)
    ... ).shape
    (5,)
    """
    return per_sample_outputs(module, X, noise=noise, **kwargs)[
        "reconstruction_probability"
    ]


def latent_gaussian(Z, *, ridge=1e-6):
    """Mean and regularised covariance of latent codes ``Z``.

    The covariance is the Ledoit-Wolf shrinkage estimate plus ``ridge`` times
    the identity. Shrinkage keeps it well conditioned when some latent
    dimensions are unused (posterior collapse leaves their means nearly
    constant, so their empirical variance is almost zero); the ridge, in
    units of the prior's unit variance, keeps it invertible even when all of
    them are, or when there is a single code.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, latent_dim)
        Latent codes, e.g. the posterior means of the training data.
    ridge : float, default=1e-6
        Added to the diagonal of the covariance.

    Returns
    -------
    mean : ndarray of shape (latent_dim,)
    covariance : ndarray of shape (latent_dim, latent_dim)

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.scoring import latent_gaussian
    >>> Z = np.random.RandomState(0).normal(size=(200, 3))
    >>> mean, covariance = latent_gaussian(Z)
    >>> mean.shape, covariance.shape
    ((3,), (3, 3))
    """
    Z = np.asarray(Z, dtype=np.float64)
    if len(Z) > 1:
        covariance = LedoitWolf().fit(Z).covariance_
    else:
        covariance = np.zeros((Z.shape[1], Z.shape[1]))
    return Z.mean(axis=0), covariance + ridge * np.eye(Z.shape[1])


def latent_mahalanobis_scores(module, X, *, mean, covariance, **kwargs):
    """Per-sample negative Mahalanobis distance of the posterior mean.

    ``-sqrt((mu - mean)^T covariance^-1 (mu - mean))``, where ``mu`` is the
    posterior mean of x and ``mean`` and ``covariance`` describe the
    training codes (see :func:`latent_gaussian`). It measures how far a
    sample's code lies from the training codes, ignoring how well it is
    reconstructed; 0 at the centre, more negative further out. Higher means
    more typical.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    mean : ndarray of shape (latent_dim,)
        Centre of the training codes.
    covariance : ndarray of shape (latent_dim, latent_dim)
        Covariance of the training codes; must be invertible.
    **kwargs
        ``input_shape``, ``batch_size`` and ``device``, passed to
        :func:`map_batches`.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Minus the Mahalanobis distance of each sample's code.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import latent_gaussian, latent_mahalanobis_scores
    >>> from skvae.scoring import latent_means
    >>> Z = latent_means(module, X, input_shape=(1, 8, 8))
    >>> mean, covariance = latent_gaussian(Z)
    >>> scores = latent_mahalanobis_scores(
    ...     module, X, mean=mean, covariance=covariance, input_shape=(1, 8, 8)
    ... )
    >>> bool((scores <= 0).all())
    True
    """
    return mahalanobis_scores(latent_means(module, X, **kwargs), mean, covariance)


def mahalanobis_scores(Z, mean, covariance):
    """Minus the Mahalanobis distance of each row of ``Z`` to ``mean``.

    The computation behind :func:`latent_mahalanobis_scores`, for codes
    already computed; each distance depends on its own row alone.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, latent_dim)
        The codes to score.
    mean : ndarray of shape (latent_dim,)
        Centre of the training codes.
    covariance : ndarray of shape (latent_dim, latent_dim)
        Covariance of the training codes; must be invertible.

    Returns
    -------
    scores : ndarray of shape (n_samples,)
        Minus the Mahalanobis distance of each row; 0 at ``mean``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.scoring import mahalanobis_scores
    >>> mahalanobis_scores([[0.0, 0.0], [3.0, 4.0]], np.zeros(2), np.eye(2))
    array([-0., -5.])
    """
    precision = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
    centred = np.asarray(Z, dtype=np.float64) - mean
    # einsum without ``optimize`` loops in C instead of calling BLAS, whose
    # kernels can round a row differently depending on its position in the
    # matrix; this way each distance depends on its own row alone.
    squared = (np.einsum("ij,jk->ik", centred, precision) * centred).sum(axis=1)
    return -np.sqrt(np.maximum(squared, 0.0))


def transformation_outputs(module, X, **kwargs):
    """Per-sample outputs of a fitted transformation classifier, in one pass.

    Parameters
    ----------
    module : skvae.nn.TransformationClassifier
        A fitted transformation classifier.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    **kwargs
        ``input_shape``, ``batch_size`` and ``device``, passed to
        :func:`map_batches`; ``batch_size`` defaults to
        :func:`score_block_rows` for the transformed copies.

    Returns
    -------
    outputs : dict of ndarray
        ``"transformation"``: the mean log-probability the classifier gives
        the right transformation over every transformed copy of the sample
        (higher = more typical); ``"orientation"``: the same for the right
        transformation or its mirror image (which way up, whether mirrored
        or not); ``"transformation_features"``: the mean of
        the pooled features of the transformed copies, shape
        ``(n_samples, width)``.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import TransformationClassifier
    >>> from skvae.scoring import transformation_outputs
    >>> classifier = TransformationClassifier((1, 8, 8), channels=(4, 8))
    >>> X = np.random.RandomState(0).uniform(size=(3, 64)).astype(np.float32)
    >>> out = transformation_outputs(classifier, X, input_shape=(1, 8, 8))
    >>> sorted(out), out["transformation"].shape
    (['orientation', 'transformation', 'transformation_features'], (3,))
    """
    kwargs = _copies_pass(module, kwargs)
    return map_batches(_transformation_batch_outputs, module, X, **kwargs)


def _transformation_batch_outputs(module, x):
    scores = module.score_copies(x)
    return {
        "transformation": scores.transformation,
        "orientation": scores.orientation,
        "transformation_features": scores.features,
    }


def bits_per_dim(log_likelihood, n_dims, *, discretization=None):
    """Convert log-likelihoods in nats per sample to bits per dimension.

    Parameters
    ----------
    log_likelihood : float or array-like
        ``log p(x)`` of each sample in nats, e.g. from :func:`iwae_scores`
        (a lower bound, so the result is an upper bound on the true value).
    n_dims : int
        Number of dimensions D of one sample (pixels times channels).
    discretization : int, default=None
        Number of levels per dimension the data was quantised to before
        being scaled to [0, 1], e.g. 256 for 8-bit pixels.

        - If None, the bits per dimension of the continuous density:
          ``-log p(x) / (D ln 2)``, which may be negative.
        - If an int L, the bits per dimension of the discrete data: the
          density on [0, 1]^D puts mass about ``p(x) / L^D`` on the cell of
          side 1/L that holds x, so ``BPD = -(log p(x) - D log L) / (D ln 2)
          = -log p(x) / (D ln 2) + log2(L)``.

    Returns
    -------
    bpd : float or ndarray
        Bits per dimension; lower means more likely.

    Notes
    -----
    This is the convention of the deep generative modelling literature
    (RealNVP, Glow, Dai & Wipf 2019): 8-bit pixels ``k`` in 0..255 become
    ``y = k / 255`` (as skvae does with uint8 input) or, with uniform
    dequantisation, ``y = (k + u) / 256`` with u ~ U[0, 1). Either way y lies
    in the k-th of 256 cells ``[k/256, (k+1)/256)`` that tile [0, 1]
    (``k/255`` does, for k < 255; ``k = 255`` gives its right edge, 1), so
    the discrete probability of the image is the density's mass on its cell,
    ``P(k)``, the integral of p over the cell, about ``p(y) / 256^D``, and
    ``-log2 P(k) / D = -log p(y) / (D ln 2) + 8``. With dequantisation,
    ``E_u[log p(y)] - D log 256`` is a lower bound on ``log P(k)``
    (Theis et al. 2016), so the BPD is an upper bound; with ``k / 255`` it
    is the usual point approximation, which a density much narrower than a
    cell (e.g. a Gaussian decoder with a tiny learned variance) can push
    below the true value, even below 0. A uniform density on [0, 1]^D gives
    exactly 8 bits per dimension.

    :func:`discrete_iwae_scores` avoids both approximations for a Gaussian
    decoder: it bounds ``log P(k)`` with the decoder's mass on each cell,
    so ``bits_per_dim(discrete_iwae_scores(...), D)`` (no
    ``discretization``) is the BPD of the discrete data, never negative.

    Examples
    --------
    A uniform density on [0, 1] has log-density 0: 8 bits per 8-bit pixel.

    >>> from skvae.scoring import bits_per_dim
    >>> float(bits_per_dim(0.0, n_dims=784, discretization=256))
    8.0
    """
    bpd = -np.asarray(log_likelihood, dtype=np.float64) / (n_dims * math.log(2))
    if discretization is not None:
        bpd = bpd + math.log2(discretization)
    return bpd
