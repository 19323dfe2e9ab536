"""Layer factories shared by the encoders and decoders."""

import functools

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


def run_conv_block(block, x):
    """Run ``block`` on ``x``, as one oneDNN call where it can be fused.

    A :func:`conv_block` of a convolution and its activation (no batch
    normalisation) on float32 CPU input without gradients runs as oneDNN's
    convolution with the activation applied to its output on the way out
    (the fused kernel PyTorch's compiler uses), which saves a pass over the
    output (docs/performance.md, "Fused convolutions in float32"). The bits are those
    of the two layers one after the other. Not in bfloat16: there the fused
    kernel rounds an image differently by its place in the pass, so a
    score would depend on the other images scored with it. Anything else
    (training, gradients, other dtypes, blocks or devices, a PyTorch
    without the kernel, a dispatch mode such as torch's FLOP counter) runs
    ``block(x)``.
    """
    fused = _fused_form(block, x)
    if fused is None:
        return block(x)
    conv, activation, scalars = fused
    return torch.ops.mkldnn._convolution_pointwise(
        x,
        conv.weight,
        conv.bias,
        conv.padding,
        conv.stride,
        conv.dilation,
        conv.groups,
        activation,
        scalars,
        "",
    )


def _fused_form(block, x):
    """``(conv, activation, scalars)`` if ``block`` can run fused, else None."""
    if not (
        isinstance(block, nn.Sequential)
        and len(block) == 2
        and type(block[0]) is nn.Conv2d
        and block[0].padding_mode == "zeros"
        and not isinstance(block[0].padding, str)
        and not block.training
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and _fused_kernel_available()
        and not _needs_gradients(block[0], x)
        and not under_dispatch_mode()
    ):
        return None
    activation = block[1]
    if type(activation) is nn.LeakyReLU:
        return block[0], "leaky_relu", [activation.negative_slope]
    if type(activation) is nn.ReLU:
        return block[0], "relu", []
    return None


def _needs_gradients(conv, x):
    # The fused kernel has no backward.
    return torch.is_grad_enabled() and (
        x.requires_grad or any(p.requires_grad for p in conv.parameters())
    )


def under_dispatch_mode():
    """Whether a dispatch mode (torch's FLOP counter, fake tensors) is active.

    Such modes know the standard layers' operators, not the fused oneDNN or
    im2col kernels scoring runs on (torch's FLOP counter fails on the
    im2col ones and does not count the fused ones): under one, layers run
    their standard forward.
    """
    stack_depth = getattr(torch._C, "_len_torch_dispatch_stack", None)
    return stack_depth is not None and stack_depth() > 0


@functools.cache
def _fused_kernel_available():
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise"
    )


def mlp(sizes, *, final_activation=True, activation="leaky_relu"):
    """Return ``Linear`` layers through ``sizes``, activations between them."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense(n_in, n_out))
        if final_activation or i < len(sizes) - 2:
            layers.append(activation_layer(activation))
    return nn.Sequential(*layers)
