"""The VAE module: encoder, reparameterised latent, decoder and likelihood."""

from typing import NamedTuple

import torch
from torch import nn

from ._losses import kl_standard_normal


class VAEOutput(NamedTuple):
    """What a VAE's forward pass returns, by name.

    Readers take fields by name (``output.mu``), so a module that adds an
    output never shifts another. Fields a module does not compute are None.

    Attributes
    ----------
    params : tensor
        Likelihood parameters of p(x|z) for the (sampled) latent code.
    mu, logvar : tensor of shape (n, latent_dim)
        Mean and log-variance of the posterior q(z|x).
    logits : tensor of shape (n, n_classes) or None
        Class logits of a classifier head, from the (sampled) latent code.
    logits_at_mean : tensor of shape (n, n_classes) or None
        Class logits from the posterior mean (the teacher of pseudo-labels).
    adversarial : tensor of shape (n,) or None
        Per-row virtual adversarial divergence of the head (training only).
    background_params : tensor or None
        Likelihood parameters of the pooled background target of a
        :class:`~skvae.nn.DualVAE`.
    auxiliary_loss : tensor of shape (n,) or None
        Per-sample loss the module adds to the training objective, outside
        the ELBO (the attention loss of a :class:`~skvae.nn.Grad2VAE`).

    Examples
    --------
    >>> from skvae.nn import make_vae
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)  # a batch of 3 8x8 images in [0, 1]
    >>> out = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(8,))(x)
    >>> tuple(out.mu.shape), tuple(out.logvar.shape), out.logits is None
    ((3, 2), (3, 2), True)
    """

    params: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    logits: torch.Tensor | None = None
    logits_at_mean: torch.Tensor | None = None
    adversarial: torch.Tensor | None = None
    background_params: torch.Tensor | None = None
    auxiliary_loss: torch.Tensor | None = None


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

    Examples
    --------
    :func:`make_vae` assembles one; the estimators train it as ``module_``.

    >>> from skvae.nn import make_vae
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)  # a batch of 3 8x8 images in [0, 1]
    >>> vae = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(8, 16))
    >>> out = vae(x)  # a VAEOutput
    >>> tuple(out.mu.shape), tuple(out.params.shape)
    ((3, 2), (3, 1, 8, 8))
    >>> log_px, kl = vae.elbo_terms(x, out)
    >>> tuple(log_px.shape), bool((kl >= 0).all())
    ((3,), True)
    """

    def __init__(self, encoder, decoder, likelihood):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood

    logvar_range = (-30.0, 20.0)

    def encode(self, x):
        """Return ``(mu, logvar)`` of the posterior q(z|x).

        The log-variance is clipped to ``logvar_range`` so that an unusual
        input cannot overflow ``exp(logvar)`` into an infinite score.
        """
        mu, logvar = self.encoder(x)
        return mu, logvar.clamp(*self.logvar_range)

    def encode_mean(self, x):
        """Return the posterior mean ``mu`` of q(z|x): :meth:`encode`'s first half.

        Encoders with a ``mean`` method (the convolutional and MLP ones) skip
        the log-variance head, about a tenth of an image encoder's work,
        with the same bits; others, and subclasses with their own
        :meth:`encode`, run :meth:`encode`.
        """
        mean = getattr(self.encoder, "mean", None)
        # A subclass's own encode may change mu: it is then the way.
        if mean is None or type(self).encode is not VAE.encode:
            return self.encode(x)[0]
        return mean(x)

    def decoder_context(self, x):
        """Return what the decoder takes from ``x`` besides its code (None here).

        Scoring functions that decode a code of ``x`` themselves pass this to
        :meth:`decode`, so a decoder with a skip from the encoder (such as
        :class:`~skvae.nn.Grad2VAE`'s attention) scores as in training.
        """
        return None

    def decode(self, z, context=None):
        """Return the likelihood parameters for latent codes ``z``.

        ``context`` is :meth:`decoder_context` of the encoded input; a plain
        VAE ignores it.
        """
        return self.decoder(z)

    def reconstruction_params(self, x):
        """Likelihood parameters of ``x`` decoded from its posterior mean."""
        return self.decode(self.encode_mean(x), self.decoder_context(x))

    def reparameterize(self, mu, logvar):
        """Sample z ~ q(z|x) in training mode; return ``mu`` in eval mode."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x):
        """Return a :class:`VAEOutput`: likelihood parameters and posterior."""
        mu, logvar = self.encode(x)
        return VAEOutput(self.decode(self.reparameterize(mu, logvar)), mu, logvar)

    def elbo_terms(self, x, output):
        """Per-sample ``(log p(x|z), KL(q(z|x) || p(z)))`` for a forward ``output``.

        ``output`` is the :class:`VAEOutput` of ``self(x)``.
        """
        return (
            self.likelihood.log_prob(x, output.params),
            kl_standard_normal(output.mu, output.logvar),
        )
