"""The VAE module: encoder, reparameterised latent, decoder and likelihood."""

import math

import torch
from torch import nn

from ._conv import ConvDecoder, ConvEncoder
from ._likelihoods import make_likelihood
from ._losses import kl_standard_normal
from ._mlp import MLPDecoder, MLPEncoder


class VAE(nn.Module):
    """A variational autoencoder assembled from an encoder, a decoder and a likelihood.

    In training mode the latent code is sampled with the reparameterisation
    trick; in eval mode it is the posterior mean, so evaluation is
    deterministic and each sample's output depends on that sample alone.

    Parameters
    ----------
    encoder : nn.Module
        Maps x to ``(mu, logvar)`` of q(z|x).
    decoder : nn.Module
        Maps z to the likelihood parameters.
    likelihood : nn.Module
        Has ``log_prob(x, params)`` (per sample) and ``mean(params)``.
    """

    def __init__(self, encoder, decoder, likelihood):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood

    def encode(self, x):
        """Return ``(mu, logvar)`` of the posterior q(z|x)."""
        return self.encoder(x)

    def decode(self, z):
        """Return the likelihood parameters for latent codes ``z``."""
        return self.decoder(z)

    def reparameterize(self, mu, logvar):
        """Sample z ~ q(z|x) in training mode; return ``mu`` in eval mode."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x):
        """Return ``(params, mu, logvar)``: likelihood parameters and posterior."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def elbo_terms(self, x, output):
        """Per-sample ``(log p(x|z), KL(q(z|x) || p(z)))`` for a forward ``output``."""
        params, mu, logvar = output
        return self.likelihood.log_prob(x, params), kl_standard_normal(mu, logvar)


def make_vae(
    input_shape,
    latent_dim,
    *,
    hidden_dims,
    kernel_size=3,
    likelihood="gaussian",
    decoder_var=1.0,
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
    """
    lik = make_likelihood(likelihood, decoder_var)
    if len(input_shape) == 3:
        encoder = ConvEncoder(input_shape, latent_dim, hidden_dims, kernel_size)
        decoder = ConvDecoder(
            input_shape, latent_dim, hidden_dims, kernel_size, n_outputs=lik.n_outputs
        )
    else:
        n_features = math.prod(input_shape)
        encoder = MLPEncoder(n_features, latent_dim, hidden_dims)
        decoder = MLPDecoder(
            n_features, latent_dim, hidden_dims, n_outputs=lik.n_outputs
        )
    return VAE(encoder, decoder, lik)
