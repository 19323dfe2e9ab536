"""Assemble a VAE for an input shape from the building blocks."""

import math

from ._conv import ConvDecoder, ConvEncoder
from ._dual import (
    DualVAE,
    LatentMixing,
    PooledTarget,
    ReceptiveFieldEncoder,
)
from ._grad2vae import CurvatureAttention, Grad2VAE, Grad2VAEDecoder, Grad2VAEEncoder
from ._likelihoods import make_likelihood
from ._mlp import MLPDecoder, MLPEncoder
from ._semi import SemiSupervisedVAE
from ._vae import VAE


def make_vae(
    input_shape,
    latent_dim,
    *,
    hidden_dims,
    kernel_size=3,
    likelihood="gaussian",
    decoder_var=1.0,
    n_classes=None,
    vat_eps=0.0,
    architecture="auto",
    aggregation="conv",
    attention_weight=1.0,
    activation="leaky_relu",
    batch_norm=False,
    pad_to=None,
):
    """Build a :class:`VAE` for inputs of ``input_shape``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` builds the convolutional architecture; ``(n_features,)``
        the fully connected one.
    latent_dim : int
        Size of the latent code.
    hidden_dims : tuple of int
        Channels of the stride-2 convolutions, or widths of the dense layers.
    kernel_size : int, default=3
        Odd kernel size of the convolutions (ignored for dense layers).
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        The decoder distribution.
    decoder_var : float or "learned", default=1.0
        Variance of the Gaussian likelihood.
    n_classes : int, default=None
        If given, build a :class:`SemiSupervisedVAE` with a classifier head
        for that many classes.
    vat_eps : float, default=0.0
        Virtual adversarial radius of the :class:`SemiSupervisedVAE` (L2 norm
        over a whole input); ignored without ``n_classes``.
    architecture : {"auto", "grad2vae"}, default="auto"
        ``"grad2vae"`` builds a :class:`Grad2VAE` for images of
        ``input_shape`` (``hidden_dims`` of two channel counts); ``"auto"``
        decides by the rank of ``input_shape`` as above.
    aggregation : {"conv", "sum", "mean"}, default="conv"
        How the Grad2VAE combines the latent units' curvature
        (:class:`CurvatureAttention`); ignored by the other architectures.
    attention_weight : float, default=1.0
        Weight of the Grad2VAE's attention loss; ignored by the others.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Hidden activation of the convolutional and dense architectures (the
        Grad2VAE fixes its own).
    batch_norm : bool, default=False
        Batch normalisation before each hidden convolution's activation
        (convolutional architecture only).
    pad_to : tuple of int, default=None
        ``(H', W')`` the convolutional architecture zero-pads images to
        (see :class:`ConvEncoder`); the likelihood stays on ``input_shape``.

    Returns
    -------
    module : VAE
        An untrained :class:`VAE`; a :class:`SemiSupervisedVAE` with
        ``n_classes``, a :class:`Grad2VAE` for ``architecture="grad2vae"``.

    Examples
    --------
    Dai & Wipf's network for 32x32 images, as the estimators build it:

    >>> import torch
    >>> from skvae.nn import make_vae
    >>> vae = make_vae(
    ...     (1, 32, 32), 16, hidden_dims=(64, 128, 256), kernel_size=5,
    ...     batch_norm=True, activation="relu", decoder_var="learned",
    ... )
    >>> tuple(vae.eval()(torch.rand(2, 1, 32, 32)).params.shape)
    (2, 1, 32, 32)
    """
    if architecture == "grad2vae" and (batch_norm or activation != "leaky_relu"):
        raise ValueError(
            "architecture='grad2vae' has fixed activations and no batch "
            "normalisation; leave activation and batch_norm at their defaults."
        )
    if pad_to is not None and architecture == "grad2vae":
        raise ValueError(
            "pad_to applies to the convolutional architecture only, not to "
            "architecture='grad2vae', which keeps its input's size."
        )
    for name, value in (("pad_to", pad_to), ("batch_norm", batch_norm)):
        if value not in (None, False) and len(input_shape) != 3:
            raise ValueError(
                f"{name} applies to the convolutional architecture only; the "
                f"input shape {tuple(input_shape)} builds dense layers. Leave "
                f"{name} at its default, or give image input (or image_shape=) "
                "with architecture='auto' or 'conv'."
            )
    layers = {"activation": activation, "batch_norm": batch_norm}
    lik = make_likelihood(likelihood, decoder_var, input_shape)
    if architecture == "grad2vae":
        if n_classes is not None:
            raise ValueError(
                "architecture='grad2vae' has no classifier head; use "
                "architecture='conv' for a VAEClassifier."
            )
        return Grad2VAE(
            Grad2VAEEncoder(input_shape, latent_dim, hidden_dims, kernel_size),
            Grad2VAEDecoder(input_shape, latent_dim, hidden_dims, kernel_size),
            CurvatureAttention(
                latent_dim, hidden_dims[0], input_shape[0], aggregation, kernel_size
            ),
            lik,
            attention_weight=attention_weight,
        )
    if len(input_shape) == 3:
        encoder = ConvEncoder(
            input_shape, latent_dim, hidden_dims, kernel_size, pad_to=pad_to, **layers
        )
        decoder = ConvDecoder(
            input_shape, latent_dim, hidden_dims, kernel_size, pad_to=pad_to, **layers
        )
    else:
        n_features = math.prod(input_shape)
        encoder = MLPEncoder(n_features, latent_dim, hidden_dims, activation=activation)
        decoder = MLPDecoder(n_features, latent_dim, hidden_dims, activation=activation)
    if n_classes is None:
        return VAE(encoder, decoder, lik)
    return SemiSupervisedVAE(
        encoder, decoder, lik, n_classes, latent_dim, vat_eps=vat_eps
    )


def make_dual_vae(
    input_shape,
    latent_dim,
    *,
    hidden_dims,
    kernel_size=3,
    likelihood="gaussian",
    decoder_var=1.0,
    background_latent_dim=1,
    foreground_receptive_field=6,
    background_receptive_field=30,
    pool_size=30,
    target_slope=12.0,
    target_center=0.5,
    background_weight=450.0,
    mixing="full",
    weight_background_kl=True,
):
    """Build a :class:`DualVAE` for images of ``input_shape``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(C, H, W)`` of one image.
    latent_dim : int
        Size of the foreground code.
    hidden_dims : tuple of int
        Channels of both encoders (the window convolution, then 1x1 ones)
        and of the foreground decoder's stride-2 transposed convolutions;
        widths of the background decoder's dense layers.
    kernel_size : int, default=3
        Odd kernel size of the foreground decoder's convolutions.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Distribution of x and of the pooled target g(x), each with its own
        variance.
    decoder_var : float or "learned", default=1.0
        Variance of the Gaussian likelihoods.
    background_latent_dim : int, default=1
        Size of the background code.
    foreground_receptive_field, background_receptive_field : int
        Window sides of the two encoders (6 and 30 in the thesis).
    pool_size : int, default=30
        Pooling window of the target g(x).
    target_slope, target_center : float
        Squashing of the pooled target, ``sigmoid(slope * (mean - center))``.
    background_weight : float, default=450.0
        Weight of the background ELBO.
    mixing : {"full", "into_foreground"}, default="full"
        See :class:`LatentMixing`.
    weight_background_kl : bool, default=True
        Whether ``background_weight`` weighs the background KL term too.

    Returns
    -------
    module : DualVAE
        An untrained :class:`DualVAE`.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import make_dual_vae
    >>> dual = make_dual_vae((1, 60, 60), 4, hidden_dims=(8,), pool_size=30)
    >>> out = dual(torch.rand(2, 1, 60, 60))
    >>> tuple(out.mu.shape)  # 4 foreground units, then 1 background unit
    (2, 5)
    """
    target = PooledTarget(input_shape, pool_size, target_slope, target_center)
    n_pooled = math.prod(target.output_shape)
    background_likelihood = make_likelihood(
        likelihood,
        "learned" if decoder_var == "learned_per_feature" else decoder_var,
        target.output_shape,
    )
    return DualVAE(
        ReceptiveFieldEncoder(
            input_shape, latent_dim, hidden_dims, foreground_receptive_field
        ),
        ReceptiveFieldEncoder(
            input_shape, background_latent_dim, hidden_dims, background_receptive_field
        ),
        LatentMixing(latent_dim, background_latent_dim, mixing),
        ConvDecoder(input_shape, latent_dim, hidden_dims, kernel_size),
        MLPDecoder(n_pooled, background_latent_dim, hidden_dims),
        make_likelihood(likelihood, decoder_var, input_shape),
        background_likelihood,
        target,
        background_weight,
        weight_background_kl=weight_background_kl,
    )
