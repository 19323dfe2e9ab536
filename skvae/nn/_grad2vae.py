"""Grad2VAE: a VAE whose decoder is guided by the curvature of its latent code.

Abukmeil et al. (2022) fuse an attention built from the second derivatives of
the latent code with respect to the first encoder layer ``L_e1`` into the
decoder's penultimate layer, and train it with an extra loss,
``||x - theta_grad(z, L_e1)||^2`` (their equation 3).

Two facts keep this affordable on a CPU:

- A weighted sum of the units' Hessian diagonals is the Hessian diagonal of
  the weighted sum of the units, ``sum_i w_i diag(H[mu_i]) = diag(H[w . mu])``.
  So the sum, the mean and a learned weighting over the units each need the
  Hessian diagonal of ONE scalar function, not of ``latent_dim`` of them.
- Between ``L_e1`` and the code sits a single non-linearity (the paper's one
  stride-2 stage): ``mu = M silu(C a) + b`` with ``C`` the stride-2
  convolution. Its exact Hessian diagonal is then
  ``d^2 s / d a_j^2 = sum_k g_k silu''(v_k) C_kj^2`` with ``g = M^T w`` and
  ``v = C a``: the backward pass of the convolution with squared weights.
  It costs about one backward pass, needs no double back-propagation, and
  works with gradients off (scoring).

The activation after the stride-2 convolution is SiLU, which has a second
derivative everywhere; a LeakyReLU there would make every second derivative
zero almost everywhere.
"""

import math

import torch
from torch import nn

from ._blocks import Dense, PointwiseConv2d, mlp
from ._conv import _output_padding, downsampled_sides
from ._vae import VAE, VAEOutput

AGGREGATIONS = ("conv", "sum", "mean")


def silu_second_derivative(v):
    """``d^2/dv^2 [v * sigmoid(v)]``, elementwise."""
    s = torch.sigmoid(v)
    return s * (1 - s) * (2 + v * (1 - 2 * s))


class Grad2VAEEncoder(nn.Module):
    """Encoder of Grad2VAE: ``L_e1`` at full resolution, one stride-2 stage, heads.

    ``features[0]`` is a stride-1 convolution with LeakyReLU (its output is
    ``L_e1``, of the input's H x W), ``features[1]`` the stride-2 convolution
    with SiLU; ``mu`` and ``logvar`` are linear in the flattened result. The
    layout (``features``, ``mu``) is that of :class:`ConvEncoder`, so the
    maps of :mod:`skvae.explain` read it the same way.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images.
    latent_dim : int
        Size of the latent code.
    channels : tuple of two int
        Channels of ``L_e1`` and of the stride-2 stage.
    kernel_size : int
        Odd kernel size of both convolutions.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import Grad2VAEEncoder
    >>> encoder = Grad2VAEEncoder((1, 8, 8), 2, channels=(4, 8))
    >>> mu, logvar = encoder(torch.rand(3, 1, 8, 8))
    >>> tuple(mu.shape)
    (3, 2)
    """

    def __init__(self, image_shape, latent_dim, channels=(32, 64), kernel_size=3):
        super().__init__()
        c, h, w = image_shape
        first, second = _two_channels(channels)
        padding = kernel_size // 2
        self.features = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(c, first, kernel_size, padding=padding), nn.LeakyReLU(0.2)
            ),
            nn.Sequential(
                nn.Conv2d(first, second, kernel_size, stride=2, padding=padding),
                nn.SiLU(),
            ),
        )
        self.first_layer_shape = (first, h, w)
        n_flat = second * math.prod(
            side[-1] for side in (downsampled_sides(h, 1), downsampled_sides(w, 1))
        )
        self.mu = Dense(n_flat, latent_dim)
        self.logvar = Dense(n_flat, latent_dim)

    def forward(self, x):
        """Return ``(mu, logvar)`` of the Gaussian posterior q(z|x)."""
        mu, logvar, _, _ = self.forward_with_first_layer(x)
        return mu, logvar

    def forward_with_first_layer(self, x):
        """Return ``(mu, logvar, a, v)``: ``a`` is ``L_e1``, ``v`` its stride-2 conv."""
        a = self.features[0](x)
        v = self.features[1][0](a)
        h = self.features[1][1](v).flatten(start_dim=1)
        return self.mu(h), self.logvar(h), a, v

    def mean_hessian_diagonal(self, a, v, unit_weights):
        """Exact ``diag d^2 (w . mu) / d a^2`` for each unit weighting ``w``.

        Parameters
        ----------
        a : tensor of shape (n, K, H, W)
            ``L_e1``, as returned by :meth:`forward_with_first_layer`.
        v : tensor of shape (n, K2, h, w)
            The stride-2 pre-activation of the same call.
        unit_weights : tensor of shape (m, latent_dim)
            ``m`` weightings of the latent units (one-hot rows give each
            unit's own diagonal).

        Returns
        -------
        diagonals : tensor of shape (n, m, K, H, W)
        """
        conv = self.features[1][0]
        n, m = len(a), len(unit_weights)
        # g = M^T w: the gradient of w . mu with respect to silu(v).
        upstream = (unit_weights @ self.mu.weight).view(1, m, *v.shape[1:])
        curvature = (upstream * silu_second_derivative(v).unsqueeze(1)).flatten(0, 1)
        diagonals = torch.nn.grad.conv2d_input(
            (n * m, *a.shape[1:]),
            conv.weight.pow(2),
            curvature,
            stride=conv.stride,
            padding=conv.padding,
        )
        return diagonals.view(n, m, *a.shape[1:])


def _two_channels(channels):
    channels = tuple(int(c) for c in channels)
    if len(channels) != 2:
        raise ValueError(
            f"architecture='grad2vae' takes hidden_dims of two channel counts "
            f"(the first layer's and the stride-2 stage's), got {channels}; "
            "e.g. hidden_dims=(32, 64)."
        )
    return channels


class CurvatureAttention(nn.Module):
    """Aggregate the units' Hessian diagonals into the attention and its image.

    The aggregate is ``diag d^2 (w . mu) / d L_e1^2`` for unit weights ``w``:
    learned (initialised to the mean) and followed by a learned convolution
    for ``aggregation="conv"``, the paper's best; fixed to ones or to
    ``1 / latent_dim`` for ``"sum"`` and ``"mean"``. The attention (``K``
    channels, like ``L_e1``) is added to the decoder's penultimate layer; a
    1x1 convolution maps it to an image, ``theta_grad(z, L_e1)``, which the
    second loss compares with ``x``.

    Parameters
    ----------
    latent_dim : int
        Size of the latent code.
    channels : int
        Channels ``K`` of ``L_e1``.
    image_channels : int
        Channels of the images.
    aggregation : {"conv", "sum", "mean"}, default="conv"
        How the units' diagonals are combined.
    kernel_size : int, default=3
        Kernel size of the learned aggregation's convolution.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import CurvatureAttention
    >>> attention = CurvatureAttention(latent_dim=2, channels=4, image_channels=1)
    >>> maps, image = attention(torch.rand(3, 4, 8, 8))  # Hessian diagonals of L_e1
    >>> tuple(maps.shape), tuple(image.shape)
    ((3, 4, 8, 8), (3, 1, 8, 8))
    """

    def __init__(
        self, latent_dim, channels, image_channels, aggregation="conv", kernel_size=3
    ):
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"aggregation={aggregation!r} must be one of {AGGREGATIONS}."
            )
        self.aggregation = aggregation
        weights = torch.full((1, latent_dim), 1.0 / latent_dim)
        if aggregation == "sum":
            weights = torch.ones(1, latent_dim)
        if aggregation == "conv":
            self.unit_weights = nn.Parameter(weights)
            self.aggregate = nn.Conv2d(
                channels, channels, kernel_size, padding=kernel_size // 2
            )
        else:
            self.register_buffer("unit_weights", weights)
            self.aggregate = nn.Identity()
        self.to_image = PointwiseConv2d(channels, image_channels)

    def forward(self, diagonal):
        """Return ``(attention, image)`` for Hessian diagonals ``(n, K, H, W)``."""
        attention = self.aggregate(diagonal)
        return attention, self.to_image(attention)


class Grad2VAEDecoder(nn.Module):
    """Decoder of Grad2VAE: one stride-2 up-sampling, then two full-size layers.

    ``z`` goes through a linear layer to the stride-2 stage's feature map, a
    stride-2 transposed convolution to the penultimate layer ``L_dn-1``
    (``K`` channels of H x W, LeakyReLU), where the attention is added, and a
    stride-1 convolution to the likelihood parameters.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the images to reconstruct.
    latent_dim : int
        Size of the latent code.
    channels : tuple of two int
        The encoder's channels, ``(K, K2)``.
    kernel_size : int
        Odd kernel size of both convolutions.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import Grad2VAEDecoder
    >>> decoder = Grad2VAEDecoder((1, 8, 8), 2, channels=(4, 8))
    >>> tuple(decoder(torch.zeros(3, 2)).shape)
    (3, 1, 8, 8)
    """

    def __init__(self, image_shape, latent_dim, channels=(32, 64), kernel_size=3):
        super().__init__()
        c, h, w = image_shape
        first, second = _two_channels(channels)
        (h, h_half), (w, w_half) = downsampled_sides(h, 1), downsampled_sides(w, 1)
        self.start_shape = (second, h_half, w_half)
        self.project = mlp([latent_dim, math.prod(self.start_shape)])
        padding = kernel_size // 2
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(
                second,
                first,
                kernel_size,
                stride=2,
                padding=padding,
                output_padding=(
                    _output_padding(h_half, h, kernel_size),
                    _output_padding(w_half, w, kernel_size),
                ),
            ),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Conv2d(first, c, kernel_size, padding=padding)

    def forward(self, z, attention=None):
        """Return the likelihood parameters; ``attention`` joins ``L_dn-1`` if given."""
        h = self.upsample(self.project(z).view(-1, *self.start_shape))
        if attention is not None:
            h = h + attention
        return self.out(h)


class Grad2VAE(VAE):
    """The Grad2VAE of Abukmeil et al. (2022): a VAE with online curvature attention.

    The forward pass encodes ``x``, computes the attention from the exact
    Hessian diagonal of the latent mean with respect to ``L_e1``
    (:meth:`Grad2VAEEncoder.mean_hessian_diagonal`), decodes the (sampled)
    code with the attention added to the penultimate layer, and returns the
    second loss of the paper's equation 3, ``attention_weight *
    ||x - theta_grad||^2`` per sample, as the output's ``auxiliary_loss``.

    The decoder sees ``x`` through the attention, so ``p(x | z)`` here is
    ``p(x | z, L_e1(x))`` and the ELBO is no bound on ``log p(x)`` in the
    strict sense; decoding a code alone (:meth:`decode` without context, as
    sampling does) leaves the attention out.

    Parameters
    ----------
    encoder : Grad2VAEEncoder
    decoder : Grad2VAEDecoder
    attention : CurvatureAttention
    likelihood : nn.Module
    attention_weight : float, default=1.0
        Weight of the second loss (1 in the paper).

    Examples
    --------
    ``make_vae(architecture="grad2vae")`` builds one, as the estimators do:

    >>> import torch
    >>> from skvae.nn import Grad2VAE, make_vae
    >>> vae = make_vae((1, 8, 8), 2, hidden_dims=(4, 8), architecture="grad2vae")
    >>> isinstance(vae, Grad2VAE)
    True
    >>> tuple(vae(torch.rand(3, 1, 8, 8)).params.shape)
    (3, 1, 8, 8)
    """

    def __init__(self, encoder, decoder, attention, likelihood, attention_weight=1.0):
        super().__init__(encoder, decoder, likelihood)
        self.attention = attention
        self.attention_weight = attention_weight

    def _attention(self, a, v):
        diagonal = self.encoder.mean_hessian_diagonal(
            a, v, self.attention.unit_weights
        )[:, 0]
        return self.attention(diagonal)

    def decoder_context(self, x):
        """Return the attention of ``x``, which :meth:`decode` adds to ``L_dn-1``."""
        _, _, a, v = self.encoder.forward_with_first_layer(x)
        return self._attention(a, v)[0]

    def reconstruction_params(self, x):
        """Return the parameters decoded from the posterior mean, in one pass."""
        mu, _, a, v = self.encoder.forward_with_first_layer(x)
        return self.decoder(mu, self._attention(a, v)[0])

    def decode(self, z, context=None):
        """Return the likelihood parameters of ``z``, plus attention ``context``."""
        return self.decoder(z, context)

    def attention_images(self, x):
        """Return ``theta_grad(z, L_e1)``, the attention as images ``(n, C, H, W)``."""
        _, _, a, v = self.encoder.forward_with_first_layer(x)
        return self._attention(a, v)[1]

    def forward(self, x):
        """Return a :class:`VAEOutput` whose ``auxiliary_loss`` is the second loss."""
        mu, logvar, a, v = self.encoder.forward_with_first_layer(x)
        logvar = logvar.clamp(*self.logvar_range)
        attention, image = self._attention(a, v)
        params = self.decoder(self.reparameterize(mu, logvar), attention)
        second_loss = (x - image).pow(2).flatten(start_dim=1).sum(dim=1)
        return VAEOutput(
            params, mu, logvar, auxiliary_loss=self.attention_weight * second_loss
        )
