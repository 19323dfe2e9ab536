"""Assemble a VAE for an input shape from the building blocks."""

import math

from ._conv import ConvDecoder, ConvEncoder
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
    """
    lik = make_likelihood(likelihood, decoder_var, input_shape)
    if len(input_shape) == 3:
        encoder = ConvEncoder(input_shape, latent_dim, hidden_dims, kernel_size)
        decoder = ConvDecoder(input_shape, latent_dim, hidden_dims, kernel_size)
    else:
        n_features = math.prod(input_shape)
        encoder = MLPEncoder(n_features, latent_dim, hidden_dims)
        decoder = MLPDecoder(n_features, latent_dim, hidden_dims)
    if n_classes is None:
        return VAE(encoder, decoder, lik)
    return SemiSupervisedVAE(
        encoder, decoder, lik, n_classes, latent_dim, vat_eps=vat_eps
    )
