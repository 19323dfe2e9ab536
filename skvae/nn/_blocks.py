"""Layer factories shared by the encoders and decoders."""

import torch
from torch import nn

ACTIVATIONS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


class Dense(nn.Linear):
    """``nn.Linear`` whose eval-mode output for a row ignores the other rows.

    On some CPUs (seen with AVX-512) the BLAS kernel behind ``nn.Linear``
    rounds odd and even rows of a batch differently, so a sample's score
    would depend on its position in a scoring block. In eval mode each row
    is multiplied on its own, as a batch of 1 x K products: the same bits
    for a row wherever it sits, at 2-3 times the cost of these (small)
    layers; traced for export, the graph does the same with a free batch
    size. Training keeps the one matrix product. The state dict is
    ``nn.Linear``'s.
    """

    def forward(self, x):
        if self.training or x.ndim != 2:
            return super().forward(x)
        n_rows = x.shape[0]  # not len(x): traced graphs keep it dynamic
        weight = self.weight.t().unsqueeze(0).expand(n_rows, -1, -1)
        if self.bias is None:
            return torch.bmm(x.unsqueeze(1), weight).squeeze(1)
        bias = self.bias.expand(n_rows, 1, -1)
        return torch.baddbmm(bias, x.unsqueeze(1), weight).squeeze(1)


class PointwiseConv2d(nn.Conv2d):
    """1x1 ``nn.Conv2d`` whose eval-mode output for an image ignores the other images.

    On one thread PyTorch convolves fewer than 16 images with a 1x1 kernel
    by its own im2col code and 16 or more by oneDNN's, and the two round
    differently, so an image's output would depend on how many images share
    its pass. In eval mode each image's channels are mixed by its own
    ``(out, in) x (in, pixels)`` product, the same bits wherever the image
    sits, as :class:`Dense` does for rows. Training keeps the convolution.
    The state dict is ``nn.Conv2d``'s.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels, kernel_size=1)

    def forward(self, x):
        if self.training or x.ndim != 4:
            return super().forward(x)
        n_images, _, height, width = x.shape
        weight = self.weight.flatten(start_dim=1)
        weight = weight.unsqueeze(0).expand(n_images, -1, -1)
        pixels = x.reshape(n_images, self.in_channels, height * width)
        if self.bias is None:
            mixed = torch.bmm(weight, pixels)
        else:
            bias = self.bias.view(1, -1, 1).expand(n_images, -1, height * width)
            mixed = torch.baddbmm(bias, weight, pixels)
        return mixed.view(n_images, self.out_channels, height, width)


def activation_layer(name):
    """Return a new activation module: ``"leaky_relu"`` (slope 0.2) or ``"relu"``."""
    return ACTIVATIONS[name]()


def conv_block(
    in_channels,
    out_channels,
    kernel_size,
    *,
    transpose=False,
    output_padding=0,
    activation="leaky_relu",
    batch_norm=False,
):
    """Return a stride-2 convolution (or transposed convolution) block.

    Padding is ``kernel_size // 2`` so that, for an odd kernel, a stride-2
    convolution maps a side ``h`` to ``ceil(h / 2)``; the transposed block
    undoes that exactly when given the matching ``output_padding``.
    ``activation=None`` returns the bare (output) layer, without batch
    normalisation; otherwise the layer is followed by ``BatchNorm2d`` if
    ``batch_norm`` and then the activation.
    """
    padding = kernel_size // 2
    if transpose:
        layer = nn.ConvTranspose2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=2,
            padding=padding,
            output_padding=output_padding,
        )
    else:
        layer = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=2, padding=padding
        )
    if activation is None:
        return layer
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return nn.Sequential(layer, *norm, activation_layer(activation))


def mlp(sizes, *, final_activation=True, activation="leaky_relu"):
    """Return ``Linear`` layers through ``sizes``, activations between them."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(n_in, n_out))
        if final_activation or i < len(sizes) - 2:
            layers.append(activation_layer(activation))
    return nn.Sequential(*layers)
