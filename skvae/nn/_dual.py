"""The dual ("double ELBO") VAE: a sharp foreground and a blurry background code.

Eichen's thesis (section 2.9) splits an image into local foreground signal
and large-scale background signal with two VAEs that share one input: a
foreground encoder with a small receptive field and a background encoder with
a large one; one dense layer mixes the two codes before the decoders; the
foreground decoder reconstructs the whole image and the background decoder a
pooled, squashed copy of it, which keeps mostly the background. The loss is
``ELBO_1 + w * ELBO_2``.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import Dense, PointwiseConv2d
from ._losses import kl_standard_normal
from ._vae import VAE, VAEOutput

MIXING_MODES = ("full", "into_foreground")


def _window_count(side, window, stride):
    """Windows of ``window`` pixels every ``stride`` needed to cover ``side``."""
    return max(1, math.ceil((side - window) / stride) + 1)


class ReceptiveFieldEncoder(nn.Module):
    """Encoder whose every feature sees one window of ``receptive_field`` pixels.

    A convolution with a ``receptive_field``-sized kernel and half that
    stride, then 1x1 convolutions (which do not widen the field), then
    linear heads for the posterior mean and log-variance. The input is
    zero-padded at the bottom and right so the windows cover every pixel.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images.
    latent_dim : int
        Size of the latent code.
    channels : tuple of int
        Output channels of the window convolution, then of each 1x1 one.
    receptive_field : int
        Side of the window each feature sees; clipped to the image sides.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import ReceptiveFieldEncoder
    >>> encoder = ReceptiveFieldEncoder(
    ...     (1, 60, 60), 4, channels=(8,), receptive_field=6
    ... )
    >>> mu, logvar = encoder(torch.rand(2, 1, 60, 60))
    >>> tuple(mu.shape)
    (2, 4)
    """

    def __init__(self, image_shape, latent_dim, channels, receptive_field):
        super().__init__()
        c, h, w = image_shape
        kernel = (min(receptive_field, h), min(receptive_field, w))
        stride = tuple(max(1, k // 2) for k in kernel)
        counts = [
            _window_count(side, k, s)
            for side, k, s in zip((h, w), kernel, stride, strict=True)
        ]
        pad_h, pad_w = (
            (n - 1) * s + k - side
            for n, s, k, side in zip(counts, stride, kernel, (h, w), strict=True)
        )
        layers = [
            nn.ZeroPad2d((0, pad_w, 0, pad_h)),
            nn.Conv2d(c, channels[0], kernel, stride=stride),
            nn.LeakyReLU(0.2),
        ]
        for n_in, n_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [PointwiseConv2d(n_in, n_out), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        n_flat = channels[-1] * counts[0] * counts[1]
        self.mu = Dense(n_flat, latent_dim)
        self.logvar = Dense(n_flat, latent_dim)

    def forward(self, x):
        """Return ``(mu, logvar)`` of the Gaussian posterior."""
        h = self.features(x).flatten(start_dim=1)
        return self.mu(h), self.logvar(h)


def pooled_shape(image_shape, pool_size):
    """Return the ``(C, h, w)`` of an image's pooled target g(x).

    Windows are clipped to the image sides; a last, partial window counts.
    """
    c, h, w = image_shape
    return (c, math.ceil(h / min(pool_size, h)), math.ceil(w / min(pool_size, w)))


class PooledTarget(nn.Module):
    """The background decoder's target g(x): pooled, then squashed to (0, 1).

    Mean pooling over ``pool_size`` windows (stride ``pool_size``) keeps the
    large-scale signal; ``sigmoid(slope * (mean - center))`` (the thesis'
    equation 3.1, slope 12, center 0.5) sharpens it into "active or not".

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images.
    pool_size : int
        Side of the pooling windows; clipped to the image sides. A last,
        partial window averages the pixels it has.
    slope, center : float
        Of the squashing sigmoid.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import PooledTarget
    >>> target = PooledTarget((1, 60, 60), pool_size=30)
    >>> tuple(target(torch.rand(2, 1, 60, 60)).shape)  # one value per 30x30 window
    (2, 1, 2, 2)
    """

    def __init__(self, image_shape, pool_size, slope=12.0, center=0.5):
        super().__init__()
        c, h, w = image_shape
        self.kernel = (min(pool_size, h), min(pool_size, w))
        self.slope = slope
        self.center = center
        self.output_shape = pooled_shape(image_shape, pool_size)

    def forward(self, x):
        """Return g(x), shape ``(n, *output_shape)``."""
        pooled = F.avg_pool2d(x, self.kernel, ceil_mode=True)
        return torch.sigmoid(self.slope * (pooled - self.center))


class LatentMixing(nn.Module):
    """The dense layer between the two codes and the two decoders.

    ``"full"`` (the thesis): one linear layer maps ``(z1, z2)`` to
    ``(z1~, z2~)``, so each decoder sees both codes. ``"into_foreground"``:
    the foreground decoder sees both (``z1~`` from a linear layer of
    ``(z1, z2)``) but the background decoder sees ``z2`` alone, so the
    background code must carry everything the pooled target needs. The
    layers start as the identity, i.e. as two separate VAEs.

    Parameters
    ----------
    foreground_dim, background_dim : int
        Sizes of the two codes.
    mode : {"full", "into_foreground"}
        Which decoder sees which code.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import LatentMixing
    >>> z1, z2 = LatentMixing(foreground_dim=4, background_dim=1)(torch.zeros(3, 5))
    >>> tuple(z1.shape), tuple(z2.shape)
    ((3, 4), (3, 1))
    """

    def __init__(self, foreground_dim, background_dim, mode="full"):
        super().__init__()
        if mode not in MIXING_MODES:
            raise ValueError(f"mode={mode!r} must be one of {MIXING_MODES}.")
        total = foreground_dim + background_dim
        self.foreground_dim = foreground_dim
        self.mode = mode
        self.linear = Dense(total, total if mode == "full" else foreground_dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(*self.linear.weight.shape))
            self.linear.bias.zero_()

    def forward(self, z):
        """Return ``(z1~, z2~)`` for the concatenated code ``z = (z1, z2)``."""
        mixed = self.linear(z)
        if self.mode == "full":
            return mixed[:, : self.foreground_dim], mixed[:, self.foreground_dim :]
        return mixed, z[:, self.foreground_dim :]


class _ConcatenatedEncoder(nn.Module):
    """Run two encoders on one input and concatenate their posteriors."""

    def __init__(self, foreground, background):
        super().__init__()
        self.foreground = foreground
        self.background = background

    def forward(self, x):
        mu1, logvar1 = self.foreground(x)
        mu2, logvar2 = self.background(x)
        return torch.cat([mu1, mu2], dim=1), torch.cat([logvar1, logvar2], dim=1)


class DualVAE(VAE):
    """Two VAEs on one image: a foreground code ``z1`` and a background code ``z2``.

    The foreground decoder reconstructs the whole image from ``z1~``, the
    background decoder the pooled target g(x) from ``z2~``, where
    ``(z1~, z2~)`` comes from the :class:`LatentMixing` layer. The latent
    code, as :meth:`encode` returns it and :meth:`decode` takes it, is
    ``(z1, z2)`` concatenated, background last.

    The model's ELBO is ``ELBO_1 + w * ELBO_2`` with
    ``w = background_weight``: the thesis' training objective, in which
    each pooled value counts like ``w`` pixels (it stands for many). With
    ``weight_background_kl=False`` only the log-likelihood of g(x) is
    weighted and the background KL counts once. A beta-VAE weight applies
    to both KL terms.

    Parameters
    ----------
    foreground_encoder, background_encoder : nn.Module
        Map x to ``(mu, logvar)`` of q(z1|x) and s(z2|x).
    mixing : LatentMixing
        Maps ``(z1, z2)`` to the decoders' inputs.
    foreground_decoder : nn.Module
        Maps ``z1~`` to the likelihood parameters of x.
    background_decoder : nn.Module
        Maps ``z2~`` to the flat likelihood parameters of g(x).
    likelihood, background_likelihood : nn.Module
        The distributions of x and of g(x).
    background_target : PooledTarget
        The function g.
    background_weight : float
        The weight ``w`` of the background ELBO.
    weight_background_kl : bool, default=True
        Whether ``w`` weighs the background KL term too (the thesis weighs
        all of ``ELBO_2``), or the log-likelihood of g(x) alone.

    Examples
    --------
    :func:`make_dual_vae` builds one, as ``DualVAETransformer`` does:

    >>> import torch
    >>> from skvae.nn import DualVAE, make_dual_vae
    >>> dual = make_dual_vae((1, 60, 60), 4, hidden_dims=(8,))
    >>> isinstance(dual, DualVAE), dual.foreground_dim
    (True, 4)
    >>> out = dual(torch.rand(2, 1, 60, 60))
    >>> tuple(out.params.shape), tuple(out.background_params.shape)  # x and g(x)
    ((2, 1, 60, 60), (2, 1, 2, 2))
    """

    def __init__(
        self,
        foreground_encoder,
        background_encoder,
        mixing,
        foreground_decoder,
        background_decoder,
        likelihood,
        background_likelihood,
        background_target,
        background_weight,
        weight_background_kl=True,
    ):
        super().__init__(
            _ConcatenatedEncoder(foreground_encoder, background_encoder),
            foreground_decoder,
            likelihood,
        )
        self.mixing = mixing
        self.background_decoder = background_decoder
        self.background_likelihood = background_likelihood
        self.background_target = background_target
        self.background_weight = float(background_weight)
        self.weight_background_kl = bool(weight_background_kl)

    @property
    def foreground_dim(self):
        """Size of the foreground code, the first columns of the latent code."""
        return self.mixing.foreground_dim

    def decode(self, z, context=None):
        """Return the likelihood parameters of x for codes ``z = (z1, z2)``."""
        return self.decoder(self.mixing(z)[0])

    def decode_background(self, z):
        """Background decoder's parameters of g(x), shaped like the pooled target."""
        return self._background_params(self.mixing(z)[1])

    def _background_params(self, z2_mixed):
        params = self.background_decoder(z2_mixed)
        return params.view(-1, *self.background_target.output_shape)

    def forward(self, x):
        """Return a :class:`VAEOutput` with ``background_params`` filled."""
        mu, logvar = self.encode(x)
        z1_mixed, z2_mixed = self.mixing(self.reparameterize(mu, logvar))
        return VAEOutput(
            self.decoder(z1_mixed),
            mu,
            logvar,
            background_params=self._background_params(z2_mixed),
        )

    def elbo_terms(self, x, output):
        """Per-sample ``(log-likelihood, KL)`` of ``ELBO_1 + w * ELBO_2``."""
        d, w = self.foreground_dim, self.background_weight
        log_px = self.likelihood.log_prob(x, output.params)
        log_pg = self.background_likelihood.log_prob(
            self.background_target(x), output.background_params
        )
        kl_foreground = kl_standard_normal(output.mu[:, :d], output.logvar[:, :d])
        kl_background = kl_standard_normal(output.mu[:, d:], output.logvar[:, d:])
        kl_weight = w if self.weight_background_kl else 1.0
        return log_px + w * log_pg, kl_foreground + kl_weight * kl_background
