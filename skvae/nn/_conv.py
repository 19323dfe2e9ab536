"""Convolutional encoder and decoder sized from an image shape."""

import math

from torch import nn
from torch.nn import functional as F

from ._blocks import Dense, conv_block, mlp


def downsampled_sides(side, n_layers):
    """Spatial sides after each of ``n_layers`` stride-2 convolutions.

    Returns a list of ``n_layers + 1`` sides, starting with ``side``.
    """
    sides = [side]
    for _ in range(n_layers):
        sides.append(math.ceil(sides[-1] / 2))
    return sides


class ConvEncoder(nn.Module):
    """Stride-2 convolutions, then linear heads for the posterior mean and log-variance.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images.
    latent_dim : int
        Size of the latent code.
    channels : tuple of int
        Output channels of each stride-2 convolution; each halves H and W
        (rounding up).
    kernel_size : int
        Odd kernel size of every convolution.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Activation after each convolution.
    batch_norm : bool, default=False
        Whether a ``BatchNorm2d`` precedes each activation.
    pad_to : tuple of int, default=None
        ``(H', W')`` to zero-pad the images to (centred) before the first
        convolution; the layers are sized for the padded images.

    Examples
    --------
    >>> from skvae.nn import ConvEncoder
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)  # a batch of 3 8x8 images in [0, 1]
    >>> mu, logvar = ConvEncoder((1, 8, 8), latent_dim=2, channels=(8, 16))(x)
    >>> tuple(mu.shape), tuple(logvar.shape)
    ((3, 2), (3, 2))
    """

    def __init__(
        self,
        image_shape,
        latent_dim,
        channels=(32, 64),
        kernel_size=3,
        *,
        activation="leaky_relu",
        batch_norm=False,
        pad_to=None,
    ):
        super().__init__()
        self.padding = image_padding(image_shape, pad_to)
        c, h, w = padded_shape(image_shape, pad_to)
        widths = (c, *channels)
        self.features = nn.Sequential(
            *[
                conv_block(
                    n_in,
                    n_out,
                    kernel_size,
                    activation=activation,
                    batch_norm=batch_norm,
                )
                for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
            ]
        )
        h_out = downsampled_sides(h, len(channels))[-1]
        w_out = downsampled_sides(w, len(channels))[-1]
        n_flat = channels[-1] * h_out * w_out
        self.mu = Dense(n_flat, latent_dim)
        self.logvar = Dense(n_flat, latent_dim)

    def forward(self, x):
        """Return ``(mu, logvar)`` of the Gaussian posterior q(z|x)."""
        h = self._hidden(x)
        return self.mu(h), self.logvar(h)

    def mean(self, x):
        """Return the posterior mean ``mu`` alone, without the log-variance head."""
        return self.mu(self._hidden(x))

    def _hidden(self, x):
        if self.padding is not None:
            x = F.pad(x, self.padding)
        return self.features(x).flatten(start_dim=1)


class ConvDecoder(nn.Module):
    """Linear layer to a small feature map, then stride-2 transposed convolutions.

    The output padding of each transposed convolution is chosen so that the
    output lands exactly on ``image_shape``, for any H and W.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the images to reconstruct.
    latent_dim : int
        Size of the latent code.
    channels : tuple of int
        Channels of the encoder, in encoder order; the decoder mirrors them.
    kernel_size : int
        Odd kernel size of every transposed convolution.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Activation after the linear layer and each hidden transposed
        convolution.
    batch_norm : bool, default=False
        Whether a ``BatchNorm2d`` precedes the activation of each hidden
        transposed convolution (the linear layer has none, as a batch of one
        could not be normalised).
    pad_to : tuple of int, default=None
        ``(H', W')`` the encoder pads to: the layers produce images of that
        size, and the centre crop of ``image_shape`` is returned.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import ConvDecoder
    >>> decoder = ConvDecoder((1, 28, 28), latent_dim=2, channels=(8, 16))
    >>> tuple(decoder(torch.zeros(3, 2)).shape)  # lands exactly on 28x28
    (3, 1, 28, 28)
    """

    def __init__(
        self,
        image_shape,
        latent_dim,
        channels=(32, 64),
        kernel_size=3,
        *,
        activation="leaky_relu",
        batch_norm=False,
        pad_to=None,
    ):
        super().__init__()
        self.padding = image_padding(image_shape, pad_to)
        c, h, w = padded_shape(image_shape, pad_to)
        h_sides = downsampled_sides(h, len(channels))
        w_sides = downsampled_sides(w, len(channels))
        self.start_shape = (channels[-1], h_sides[-1], w_sides[-1])
        self.project = mlp(
            [latent_dim, math.prod(self.start_shape)], activation=activation
        )
        widths = (*channels[::-1], c)
        n_layers = len(channels)
        blocks = []
        for i in range(n_layers):
            # Target sides of this layer, walking the encoder's sides backwards.
            h_in, h_target = h_sides[n_layers - i], h_sides[n_layers - i - 1]
            w_in, w_target = w_sides[n_layers - i], w_sides[n_layers - i - 1]
            blocks.append(
                conv_block(
                    widths[i],
                    widths[i + 1],
                    kernel_size,
                    transpose=True,
                    output_padding=(
                        _output_padding(h_in, h_target, kernel_size),
                        _output_padding(w_in, w_target, kernel_size),
                    ),
                    activation=activation if i < n_layers - 1 else None,
                    batch_norm=batch_norm,
                )
            )
        self.features = nn.Sequential(*blocks)

    def forward(self, z):
        """Return the likelihood parameters, shape ``(n, C, H, W)``."""
        h = self.project(z).view(-1, *self.start_shape)
        out = self.features(h)
        if self.padding is None:
            return out
        left, right, top, bottom = self.padding
        return out[..., top : out.shape[-2] - bottom, left : out.shape[-1] - right]


def padded_shape(image_shape, pad_to):
    """``image_shape`` ``(C, H, W)`` with H and W replaced by ``pad_to``, if given."""
    if pad_to is None:
        return tuple(image_shape)
    return (image_shape[0], *pad_to)


def image_padding(image_shape, pad_to):
    """``(left, right, top, bottom)`` zeros that centre an image in ``pad_to``.

    ``None`` when there is nothing to pad. An odd difference puts the extra
    row (column) at the bottom (right).
    """
    if pad_to is None or tuple(pad_to) == tuple(image_shape[1:]):
        return None
    (_, h, w), (h_to, w_to) = image_shape, pad_to
    if h_to < h or w_to < w:
        raise ValueError(
            f"pad_to={tuple(pad_to)} is smaller than the images ({h}, {w}); "
            "pass a size at least as large as the images, or None."
        )
    top, left = (h_to - h) // 2, (w_to - w) // 2
    return (left, w_to - w - left, top, h_to - h - top)


def _output_padding(side_in, side_target, kernel_size):
    padding = kernel_size // 2
    natural = (side_in - 1) * 2 - 2 * padding + kernel_size
    return side_target - natural
