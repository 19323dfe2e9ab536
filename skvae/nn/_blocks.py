"""Layer factories shared by the encoders and decoders."""

from torch import nn


def conv_block(
    in_channels,
    out_channels,
    kernel_size,
    *,
    transpose=False,
    output_padding=0,
    activation=True,
):
    """Return a stride-2 convolution (or transposed convolution) block.

    Padding is ``kernel_size // 2`` so that, for an odd kernel, a stride-2
    convolution maps a side ``h`` to ``ceil(h / 2)``; the transposed block
    undoes that exactly when given the matching ``output_padding``.
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
    if not activation:
        return layer
    return nn.Sequential(layer, nn.LeakyReLU(0.2))


def mlp(sizes, *, final_activation=True):
    """Return ``Linear`` layers through ``sizes``, LeakyReLU between them."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)
