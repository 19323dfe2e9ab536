"""Explanations of a fitted skvae estimator: where an image is anomalous, and why.

Three maps, each a function of a fitted estimator (:class:`~skvae.VAEOutlierDetector`,
:class:`~skvae.VAETransformer` or :class:`~skvae.VAEClassifier`) and input ``X``:

- :func:`anomaly_map`: the per-pixel negative log-likelihood of the
  reconstruction at the posterior mean. It sums to minus the
  ``"reconstruction"`` score, so it shows exactly where that score comes from.
- :func:`gradient_attention_map`: the first-order attention map of Liu et al.
  (2020), Grad-CAM applied to the latent code.
- :func:`grad2vae_map`: the second-order map of Grad2VAE (Abukmeil et al.
  2022), the curvature of the latent code with respect to the first encoder
  layer.
- :func:`online_attention_map`: the learned attention of a model fitted with
  ``architecture="grad2vae"``, the one its decoder uses.

All maps are computed in eval mode with the latent code at the posterior mean,
so they are deterministic, and an image's map does not depend on the other
images it is computed with. :func:`reconstruct` returns the reconstructions the
maps refer to.
"""

import math
import warnings
from functools import partial

import numpy as np
import torch
from torch.func import jacrev, jvp, vmap
from torch.nn import functional as F

from .nn import ConvEncoder, Grad2VAE, Grad2VAEEncoder
from .scoring import map_batches
from .utils._sklearn import check_is_fitted

__all__ = [
    "anomaly_map",
    "grad2vae_map",
    "gradient_attention_map",
    "online_attention_map",
    "reconstruct",
]

# Floats held at once by one chunk of Hessian-vector products in grad2vae_map.
HVP_CHUNK_FLOATS = 2**23


def _validated(estimator, X):
    """Check ``estimator`` is fitted and return ``(module, X rows, kwargs)``."""
    check_is_fitted(estimator, "net_")
    X = estimator._validate_input(X, reset=False)
    kwargs = {"input_shape": estimator.input_shape_, "device": estimator.net_.device}
    return estimator.net_.module_, X, kwargs


def reconstruct(estimator, X, *, batch_size=256):
    """Reconstruct ``X``: the decoder mean E[x|z] at the posterior mean of z.

    Parameters
    ----------
    estimator : fitted skvae estimator
        A fitted :class:`~skvae.VAEOutlierDetector`,
        :class:`~skvae.VAETransformer` or :class:`~skvae.VAEClassifier`.
    X : array-like of shape (n_samples, n_features) or image array
        Samples, as accepted by the estimator.
    batch_size : int, default=256
        Samples per forward pass; affects memory, not the result.

    Returns
    -------
    X_rec : ndarray of shape ``(n_samples, *input_shape_)``
        Reconstructions: ``(n, C, H, W)`` for the convolutional architecture,
        ``(n, n_features)`` for the dense one.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.explain import reconstruct
    >>> reconstruct(det, X[:4]).shape  # 64 features were read as 8x8 images
    (4, 1, 8, 8)
    """
    module, X, kwargs = _validated(estimator, X)

    def batch_reconstruct(module, x):
        return module.likelihood.mean(module.reconstruction_params(x))

    return map_batches(batch_reconstruct, module, X, batch_size=batch_size, **kwargs)


def anomaly_map(estimator, X, *, batch_size=256):
    """Per-pixel anomaly map: -log p(x|z) of each pixel at the posterior mean.

    With z the posterior mean of x, the map holds each feature's negative
    log-likelihood under the decoder:

    - Gaussian likelihood with variance ``var`` (shared or per pixel):
      ``0.5 * ((x - mean)**2 / var + log(2 * pi * var))``;
    - Bernoulli likelihood: the binary cross-entropy of x with the decoder's
      logits.

    The map sums to minus the ``"reconstruction"`` score of
    :class:`~skvae.VAEOutlierDetector` (``log p(x|z=mu)``), and the ELBO is
    that score minus the KL term, so the map shows which pixels make an image
    score low. For a shared Gaussian variance it is the squared
    reconstruction error, scaled and shifted by constants; the constant shift
    makes its values negative when the learned variance is small, so compare
    maps on one colour scale rather than reading their sign.

    Parameters
    ----------
    estimator : fitted skvae estimator
        A fitted :class:`~skvae.VAEOutlierDetector`,
        :class:`~skvae.VAETransformer` or :class:`~skvae.VAEClassifier`,
        with either architecture.
    X : array-like of shape (n_samples, n_features) or image array
        Samples, as accepted by the estimator.
    batch_size : int, default=256
        Samples per forward pass; affects memory, not the result.

    Returns
    -------
    maps : ndarray of shape ``(n_samples, *input_shape_)``
        ``(n, C, H, W)`` for the convolutional architecture,
        ``(n, n_features)`` for the dense one; in nats.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.explain import anomaly_map
    >>> X = np.random.RandomState(0).uniform(size=(32, 8, 8)).astype(np.float32)
    >>> det = VAEOutlierDetector(latent_dim=2, hidden_dims=(4, 8), max_epochs=2,
    ...                          random_state=0).fit(X)
    >>> anomaly_map(det, X[:3]).shape
    (3, 1, 8, 8)
    """
    module, X, kwargs = _validated(estimator, X)

    def batch_map(module, x):
        params = module.reconstruction_params(x)
        return -module.likelihood.log_prob_per_feature(x, params)

    return map_batches(batch_map, module, X, batch_size=batch_size, **kwargs)


# -- gradient maps -------------------------------------------------------------


def _conv_encoder(estimator, name):
    """Return the fitted ConvEncoder, or raise for the dense architecture."""
    encoder = estimator.net_.module_.encoder
    if not isinstance(encoder, ConvEncoder | Grad2VAEEncoder):
        raise ValueError(
            f"{name}: attention maps need the convolutional architecture, but "
            f"{type(estimator).__name__} was fitted with the dense (MLP) one "
            f"on input_shape_={estimator.input_shape_}. Fit it on image "
            "arrays, with image_shape, or with architecture='conv'; "
            "anomaly_map works for both architectures."
        )
    return encoder


def _smooth_leaky_relu(x, negative_slope, beta):
    """LeakyReLU with its kink replaced by a softplus of sharpness ``beta``.

    ``s * x + (1 - s) * softplus(beta * x) / beta`` tends to LeakyReLU(x)
    with slope ``s`` as ``beta`` grows, and has a second derivative.
    """
    return negative_slope * x + (1 - negative_slope) * F.softplus(x, beta=beta)


def _apply(layer, h, smoothing):
    """Run ``layer`` on ``h``, with LeakyReLUs smoothed when ``smoothing`` is set."""
    if isinstance(layer, torch.nn.Sequential):
        for sub in layer:
            h = _apply(sub, h, smoothing)
        return h
    if smoothing is not None and isinstance(layer, torch.nn.LeakyReLU):
        return _smooth_leaky_relu(h, layer.negative_slope, smoothing)
    return layer(h)


def _encoder_tail(encoder, start, smoothing=None):
    """Return ``f(a) -> mu``: the encoder after block ``start``, for ONE sample.

    ``a`` is the output of ``encoder.features[start]`` for a single image,
    shape ``(K, h, w)``; ``f`` returns the posterior mean, shape
    ``(latent_dim,)``, and works under :func:`torch.func.vmap`.
    """

    def tail(a):
        h = a.unsqueeze(0)
        for block in encoder.features[start + 1 :]:
            h = _apply(block, h, smoothing)
        return encoder.mu(h.flatten(start_dim=1))[0]

    return tail


def _map_images(fn, estimator, X, batch_size):
    """Apply ``fn(batch) -> (n, H', W')`` in eval mode with gradients on.

    Batches never exceed ``len(X)`` rows: the zero rows that pad the last
    batch would cost as many derivatives as real images.
    """
    return map_batches(
        lambda module, x: fn(x),
        estimator.net_.module_,
        X,
        input_shape=estimator.input_shape_,
        batch_size=max(1, min(batch_size, len(X))),
        device=estimator.net_.device,
        gradients=True,
    )


def _upsample(maps, size):
    """Bilinearly resize ``(n, h, w)`` maps to ``size = (H, W)``."""
    return F.interpolate(
        maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False
    )[:, 0]


def _check_layer(encoder, layer):
    n_blocks = len(encoder.features)
    if not isinstance(layer, int | np.integer) or not -n_blocks <= layer < n_blocks:
        raise ValueError(
            f"layer={layer!r} must be an int indexing the encoder's "
            f"{n_blocks} convolution blocks (from {-n_blocks} to {n_blocks - 1})."
        )
    return int(layer) % n_blocks


def _check_latent_unit(latent_unit, latent_dim):
    if latent_unit is None:
        return None
    if not isinstance(latent_unit, int | np.integer) or not (
        0 <= latent_unit < latent_dim
    ):
        raise ValueError(
            f"latent_unit={latent_unit!r} must be None or an int in "
            f"[0, {latent_dim}) (latent_dim={latent_dim})."
        )
    return int(latent_unit)


def gradient_attention_map(estimator, X, *, layer=-1, latent_unit=None, batch_size=64):
    """First-order attention map of the latent code (Liu et al. 2020).

    Grad-CAM for a VAE's encoder. With ``A`` the feature map of encoder block
    ``layer`` (K channels of h x w) and ``mu_i`` the i-th posterior mean:

    1. channel weights ``alpha_ik = mean_{p,q} d mu_i / d A_kpq`` (the
       gradient, global-average-pooled over space);
    2. the unit's map ``M_i = ReLU(sum_k alpha_ik * A_k)``;
    3. the image's map ``M = mean_i M_i`` over the latent units (or ``M_i``
       for one ``latent_unit``), resized bilinearly to the input's H x W.

    Bright regions are the ones whose features push the latent code, i.e.
    the parts of the image the encoder bases its description on. The maps
    are in the units of the activations; they are comparable between images
    of one model, not between models.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Fitted with the convolutional architecture.
    X : array-like of shape (n_samples, n_features) or image array
        Samples, as accepted by the estimator.
    layer : int, default=-1
        Index of the encoder's convolution block whose output is ``A``;
        ``-1`` is the last one (coarsest, most semantic), as in Grad-CAM.
    latent_unit : int, default=None
        Explain only this latent unit; ``None`` averages the maps of all.
    batch_size : int, default=64
        Images per pass; bounds memory, does not change the result beyond
        float rounding.

    Returns
    -------
    maps : ndarray of shape (n_samples, H, W)
        One non-negative map per image.

    Raises
    ------
    ValueError
        If the estimator uses the dense (MLP) architecture.

    References
    ----------
    .. [1] Liu, W., Li, R., Zheng, M., Karanam, S., Wu, Z., Bhanu, B.,
       Radke, R. J. & Camps, O. (2020). Towards Visually Explaining
       Variational Autoencoders. CVPR. :arxiv:`1911.07389`

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.explain import gradient_attention_map
    >>> gradient_attention_map(det, X[:4], layer=0).shape  # one map per image
    (4, 8, 8)
    """
    check_is_fitted(estimator, "net_")
    encoder = _conv_encoder(estimator, "gradient_attention_map")
    layer = _check_layer(encoder, layer)
    unit = _check_latent_unit(latent_unit, encoder.mu.out_features)
    _, X, _ = _validated(estimator, X)
    tail = _encoder_tail(encoder, layer)
    size = estimator.input_shape_[1:]

    def batch_map(x):
        a = encoder.features[: layer + 1](x).detach()
        jacobian = vmap(jacrev(tail))(a)  # (n, latent_dim, K, h, w)
        if unit is not None:
            jacobian = jacobian[:, unit : unit + 1]
        alpha = jacobian.mean(dim=(3, 4))  # (n, units, K)
        maps = F.relu(torch.einsum("nuk,nkhw->nuhw", alpha, a)).mean(dim=1)
        return _upsample(maps, size)

    return _map_images(batch_map, estimator, X, batch_size)


def _hessian_diagonals(tail, a, tangents):
    """Sum over tangents v of ``v * (H_i v)`` for every latent unit i.

    ``a`` is ``(n, K, h, w)``, ``tangents`` ``(m, K, h, w)``; returns
    ``(n, latent_dim, K, h, w)``. One ``jvp`` of ``jacrev(tail)`` gives the
    Hessian-vector products of all latent units at once.
    """

    def hvp(a_one, v):
        return jvp(jacrev(tail), (a_one,), (v,))[1]

    with warnings.catch_warnings():
        # torch's first forward-mode call loads its decompositions with the
        # deprecated torch.jit.script; nothing for users to act on.
        warnings.filterwarnings(
            "ignore", message=".*torch.jit.script", category=DeprecationWarning
        )
        products = vmap(vmap(hvp, in_dims=(None, 0)), in_dims=(0, None))(a, tangents)
    return (products * tangents[None, :, None]).sum(dim=1)


def _grad2vae_tangents(feature_shape, n_probes, random_state, chunk_size):
    """Return chunks of tangents whose ``sum v * Hv`` estimates diag(H).

    One-hot vectors (``n_probes=None``) give the exact diagonal; Rademacher
    probes (scaled by 1/sqrt(n_probes), so no division is needed afterwards)
    give Hutchinson's unbiased estimate.
    """
    n_dims = math.prod(feature_shape)
    if n_probes is None:
        tangents = torch.eye(n_dims).view(n_dims, *feature_shape)
    else:
        generator = torch.Generator().manual_seed(int(random_state))
        signs = torch.randint(0, 2, (n_probes, *feature_shape), generator=generator)
        tangents = (2.0 * signs - 1.0) / math.sqrt(n_probes)
    return tangents.split(chunk_size)


def grad2vae_map(
    estimator,
    X,
    *,
    smoothing=10.0,
    n_probes=None,
    random_state=0,
    batch_size=16,
):
    """Second-order (curvature) attention map of the latent code (Grad2VAE).

    Following Abukmeil et al. (2022), the map is built from second
    derivatives of each latent unit with respect to the activations of the
    FIRST encoder layer. With ``A`` the output of the first convolution block
    (K channels of h x w, at half the input resolution) and ``mu_i`` the
    i-th posterior mean, the map of an image is::

        M[p, q] = (1 / L) * sum_i sum_k | d^2 mu_i / d A_kpq^2 |

    the absolute diagonal of the Hessian of each of the L latent units,
    summed over channels and averaged over units, then resized bilinearly to
    the input's H x W. It is large where the latent code responds
    non-linearly to the local features, e.g. on the strokes and edges that
    switch the encoder's units on or off.

    Two choices make this well defined and tractable:

    - **Smoothing.** The encoder is piecewise linear (convolutions and
      LeakyReLUs), so its exact second derivatives are zero almost
      everywhere. The derivatives are taken of the same network with every
      activation after the first block replaced by a softplus-smoothed copy,
      ``s * x + (1 - s) * softplus(beta * x) / beta`` (slope ``s``,
      ``beta = smoothing``), which tends to the network itself as ``beta``
      grows (the device of Dombrowski et al. 2019); the value of ``A`` is
      that of the unmodified network.
    - **Only the diagonal.** The full Hessian of one unit has ``(K h w)^2``
      entries. Its diagonal is ``sum_v v * (H v)`` over the ``K h w``
      one-hot vectors v, and a Hessian-vector product never forms H: one
      forward-over-reverse pass, ``torch.func.jvp(torch.func.jacrev(f))``,
      gives ``H_i v`` for all L units at once, at about the cost of L
      backward passes. The tangents are processed in chunks (vectorised with
      ``torch.func.vmap``) sized so that the products of one chunk take
      about 2**23 floats (32 MB), so memory stays bounded for any image
      size. The exact
      diagonal costs ``K h w`` such products per image; with ``n_probes``
      it costs that many instead, using Hutchinson's unbiased estimate
      ``diag(H) ~ mean_v v * (H v)`` over Rademacher vectors v.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Fitted with the convolutional architecture.
    X : array-like of shape (n_samples, n_features) or image array
        Samples, as accepted by the estimator.
    smoothing : float, default=10.0
        Sharpness ``beta`` of the softplus that replaces each LeakyReLU's
        kink, in units of 1 / activation. Larger values follow the network
        more closely but concentrate the curvature on units near their kink.
    n_probes : int, default=None
        Number of Rademacher probes of Hutchinson's estimator. ``None``
        computes the exact diagonal (``K * h * w`` products per image): use
        probes for large first layers.
    random_state : int, default=0
        Seed of the probes. The same probes serve every image, so the maps
        stay deterministic and independent of the batch. Ignored when
        ``n_probes=None``.
    batch_size : int, default=16
        Images per pass; bounds memory, does not change the result beyond
        float rounding.

    Returns
    -------
    maps : ndarray of shape (n_samples, H, W)
        One non-negative map per image.

    Raises
    ------
    ValueError
        If the estimator uses the dense (MLP) architecture.

    Notes
    -----
    Cost: on 8x8 digits with ``hidden_dims=(8, 16)`` the exact map takes
    about 30 ms per image; on 28x28 images with the default channels
    (K h w = 32 x 14 x 14 = 6272, 16 latent units) about 80 s per image on
    one CPU core, against about 1 s with ``n_probes=64`` (noisier: the
    estimate's error grows with the off-diagonal Hessian entries).

    An encoder with a single convolution block maps ``A`` linearly to the
    latent code, so its map is zero everywhere.

    For a model fitted with ``architecture="grad2vae"`` the map is computed
    exactly from the closed form of
    :meth:`skvae.nn.Grad2VAEEncoder.mean_hessian_diagonal` (its only
    activation after ``A`` is SiLU, smooth already), at about the cost of one
    backward pass per latent unit; ``smoothing`` and ``n_probes`` are then
    ignored.

    References
    ----------
    .. [1] Abukmeil, M., Ferrari, S., Genovese, A., Piuri, V. & Scotti, F.
       (2022). Grad2VAE: An Explainable Variational Autoencoder Model Based
       on Online Attentions Preserving Curvatures of Representations. ICIAP.
    .. [2] Dombrowski, A.-K. et al. (2019). Explanations can be manipulated
       and geometry is to blame. NeurIPS. :arxiv:`1906.07983`

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> digits = load_digits()
    >>> X, is_zero = digits.data / 16.0, (digits.target == 0).astype(int)
    >>> det = VAEOutlierDetector(hidden_dims=(8, 16), max_epochs=3, random_state=0)
    >>> det = det.fit(X[is_zero == 1])
    >>> from skvae.explain import grad2vae_map
    >>> maps = grad2vae_map(det, X[:4])
    >>> maps.shape, bool((maps >= 0).all())
    ((4, 8, 8), True)
    """
    check_is_fitted(estimator, "net_")
    encoder = _conv_encoder(estimator, "grad2vae_map")
    if not smoothing > 0:
        raise ValueError(f"smoothing={smoothing!r} must be a positive float.")
    if n_probes is not None and not (
        isinstance(n_probes, int | np.integer) and n_probes >= 1
    ):
        raise ValueError(f"n_probes={n_probes!r} must be None or a positive int.")
    _, X, _ = _validated(estimator, X)
    tail = _encoder_tail(encoder, 0, smoothing=float(smoothing))
    size = estimator.input_shape_[1:]
    tangents = None

    if isinstance(encoder, Grad2VAEEncoder):
        return _map_images(
            partial(_grad2vae_model_map, encoder, size), estimator, X, batch_size
        )

    def batch_map(x):
        nonlocal tangents
        a = encoder.features[0](x).detach()
        if tangents is None:
            # Each chunk holds (batch, chunk, latent_dim, K, h, w) products.
            per_tangent = len(a) * encoder.mu.out_features * a[0].numel()
            chunk_size = max(1, HVP_CHUNK_FLOATS // per_tangent)
            tangents = _grad2vae_tangents(
                a.shape[1:], n_probes, random_state, chunk_size
            )
        diagonal = 0.0
        for chunk in tangents:
            diagonal = diagonal + _hessian_diagonals(tail, a, chunk.to(a.device))
        maps = diagonal.abs().sum(dim=2).mean(dim=1)  # (n, h, w)
        return _upsample(maps, size)

    return _map_images(batch_map, estimator, X, batch_size)


def _grad2vae_model_map(encoder, size, x):
    """:func:`grad2vae_map` of a Grad2VAE encoder, from its exact closed form."""
    _, _, a, v = encoder.forward_with_first_layer(x)
    units = torch.eye(encoder.mu.out_features, dtype=a.dtype, device=a.device)
    diagonal = encoder.mean_hessian_diagonal(a, v, units)
    return _upsample(diagonal.abs().sum(dim=2).mean(dim=1), size)


def online_attention_map(estimator, X, *, batch_size=64):
    """Return the learned attention of a Grad2VAE model, in image space.

    This is ``theta_grad(z, L_e1)`` of Abukmeil et al. (2022): the aggregated
    curvature of the latent code with respect to the first encoder layer,
    after the model's learned aggregation, mapped to the image by the
    attention's output layer, the map that the model's second loss fits to
    ``x`` (their figure 4a). :func:`grad2vae_map` gives the raw curvature
    instead, unit by unit, before any learned weighting.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Fitted with ``architecture="grad2vae"``.
    X : array-like of shape (n_samples, n_features) or image array
        Samples, as accepted by the estimator.
    batch_size : int, default=64
        Images per pass; does not change the result beyond float rounding.

    Returns
    -------
    maps : ndarray of shape (n_samples, H, W)
        One map per image, averaged over the image channels.

    Raises
    ------
    ValueError
        If the estimator was not fitted with ``architecture="grad2vae"``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.explain import online_attention_map
    >>> X = load_digits().images / 16.0
    >>> det = VAEOutlierDetector(architecture="grad2vae", hidden_dims=(4, 8),
    ...                          latent_dim=2, max_epochs=1, transformations=None,
    ...                          random_state=0).fit(X[:100])
    >>> online_attention_map(det, X[:3]).shape
    (3, 8, 8)
    """
    check_is_fitted(estimator, "net_")
    module = estimator.net_.module_
    if not isinstance(module, Grad2VAE):
        raise ValueError(
            f"online_attention_map needs a model fitted with "
            f"architecture='grad2vae'; {type(estimator).__name__} has "
            f"architecture={estimator.architecture!r}. grad2vae_map computes "
            "the curvature map of any convolutional model post hoc."
        )
    _, X, kwargs = _validated(estimator, X)

    def batch_map(module, x):
        return module.attention_images(x).mean(dim=1)

    return map_batches(batch_map, module, X, batch_size=batch_size, **kwargs)
