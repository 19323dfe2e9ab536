"""Convolutions for scoring on the CPU: fast, and an image's bits whatever its pass.

PyTorch picks a convolution's kernel by the batch: a single image of a
small layer goes through its own im2col code, two or more through oneDNN,
and the two round differently, so a lone image's score would differ from
the same image's score among others unless every pass is padded to several
images (:data:`skvae.scoring._batches.BLOCK_GRANULARITY`). A padded pass of
4 images costs a lone row about three times a pass of one.

:class:`InferenceConvolution` takes the choice away from the batch size.
A convolution with a single channel on one side (a grayscale image's first
layer, a decoder's last) runs as im2col and one matrix product per image,
which is the same arithmetic for an image in any pass, and 3-4 times
faster than oneDNN on such layers, whose vector lanes run across channels
and stay mostly idle with one (docs/performance.md, "Single-channel
convolutions as matrix products"). Every other convolution runs through
oneDNN at every batch size, one image included, where oneDNN keeps an
image's bits whatever the batch; transposed ones channels-last, which
oneDNN runs without reordering (1.1x faster).
"""

import functools

import torch
from torch import nn

from ._blocks import Dense, under_dispatch_mode
from ._conv import ConvDecoder, ConvEncoder
from ._likelihoods import BernoulliLikelihood, GaussianLikelihood
from ._mlp import MLPDecoder, MLPEncoder
from ._vae import VAE

# The layers it wraps (exact types: a subclass may convolve otherwise).
CONVOLUTION_TYPES = (nn.Conv2d, nn.ConvTranspose2d)

# Modules whose own computation (their children aside) treats a row the
# same in a pass of any size, one row included: elementwise layers,
# containers, row-wise products (Dense) and sums over a row's own features
# (the likelihoods, the KL term). Exact types: a subclass may compute
# otherwise (Grad2VAE's curvature map runs a convolution of its own, which
# PyTorch runs on other kernels for a lone image).
_ROW_WISE = (
    nn.Sequential,
    nn.LeakyReLU,
    nn.ReLU,
    nn.Identity,
    nn.Flatten,
    Dense,
    VAE,
    ConvEncoder,
    ConvDecoder,
    MLPEncoder,
    MLPDecoder,
    GaussianLikelihood,
    BernoulliLikelihood,
)


def keeps_row_bits_at_any_pass_size(module):
    """Whether ``module`` gives a row the same bits in a pass of any size.

    True when every convolution in it is an :class:`InferenceConvolution`
    with a kernel of its own and every other submodule is of a kind known
    to treat rows alike (skvae's VAE parts, dense layers, activations,
    containers); otherwise a pass must be padded to several rows. On one
    torch thread, as scoring passes run.
    """
    stack = [module]
    while stack:
        submodule = stack.pop()
        if isinstance(submodule, InferenceConvolution):
            if not submodule.keeps_bits_at_any_pass_size:
                return False
            continue  # its layer runs on the kernel it chose
        if type(submodule) not in _ROW_WISE:
            return False
        stack.extend(
            child for child in submodule._modules.values() if child is not None
        )
    return True


class InferenceConvolution(nn.Module):
    """A fitted ``nn.Conv2d`` or ``nn.ConvTranspose2d``, run for scoring.

    Float32 input on the CPU without gradients runs on a kernel chosen by
    the layer's shape alone, never by the batch: im2col and a matrix
    product per image for a layer with one input or output channel,
    oneDNN otherwise. An image's output is then the same bits in a pass of
    any size on one torch thread, as scoring passes run (on several,
    oneDNN may split a lone image's sums between them). Anything else
    (training, gradients, other dtypes or devices, grouped layers, dilated
    single-channel ones, a PyTorch without the kernels, operators
    intercepted by a dispatch mode such as torch's FLOP counter) runs the
    layer as it is; :attr:`keeps_bits_at_any_pass_size` says which.

    Parameters
    ----------
    layer : nn.Conv2d or nn.ConvTranspose2d
        The fitted layer; it is used, not copied (scoring copies are made
        by :func:`skvae.scoring._copies.scoring_copy`), and a transposed
        one run through oneDNN is laid out channels-last.
    """

    def __init__(self, layer):
        super().__init__()
        if type(layer) not in CONVOLUTION_TYPES:
            raise TypeError(
                f"InferenceConvolution wraps nn.Conv2d or nn.ConvTranspose2d, "
                f"got {type(layer).__name__}."
            )
        self.layer = layer
        self.train(layer.training)  # a wrapper in an eval-mode module stays in it
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        self.kernel = _kernel(layer)
        if self.kernel == "onednn" and self.transposed:
            layer.to(memory_format=torch.channels_last)

    def __getattr__(self, name):
        # The layer's attributes (weight, stride, ...) read through the
        # wrapper: modules that read them (Grad2VAE's closed-form map) run
        # on a scoring copy unchanged.
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["layer"], name)

    @property
    def keeps_bits_at_any_pass_size(self):
        """Whether float32 CPU input runs on a kernel the batch size does not pick."""
        return self.kernel is not None

    def forward(self, x):
        if not self._runs_own_kernel(x):
            return self.layer(x)
        if self.kernel == "matmul":
            return self._per_image_matmul(x)
        return self._onednn(x)

    def _runs_own_kernel(self, x):
        return (
            self.kernel is not None
            and not self.training
            and x.ndim == 4
            and x.device.type == "cpu"
            and x.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or self._trainable()))
            and not under_dispatch_mode()
        )

    def _trainable(self):
        return any(p.requires_grad for p in self.layer.parameters())

    def _per_image_matmul(self, x):
        layer = self.layer
        # PyTorch's own im2col kernels, which multiply image by image.
        arguments = (
            x.contiguous(),
            layer.weight.contiguous(),
            layer.kernel_size,
            layer.bias,
            layer.stride,
            layer.padding,
        )
        if self.transposed:
            return torch._C._nn.slow_conv_transpose2d(
                *arguments, layer.output_padding, layer.dilation
            )
        return torch._C._nn.thnn_conv2d(*arguments)

    def _onednn(self, x):
        layer = self.layer
        if self.transposed:
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x.contiguous(memory_format=torch.channels_last),
                layer.weight,
                layer.bias,
                layer.padding,
                layer.output_padding,
                layer.stride,
                layer.dilation,
                layer.groups,
                "none",
                [],
                "",
            )
        return torch.ops.mkldnn._convolution_pointwise(
            x,
            layer.weight,
            layer.bias,
            layer.padding,
            layer.stride,
            layer.dilation,
            layer.groups,
            "none",
            [],
            "",
        )


def _kernel(layer):
    """``"matmul"``, ``"onednn"`` or None (the layer's own forward) for ``layer``."""
    if not (
        layer.padding_mode == "zeros"
        and not isinstance(layer.padding, str)
        and layer.groups == 1
        and _kernels_available()
    ):
        return None
    if min(layer.in_channels, layer.out_channels) == 1:
        # thnn_conv2d has no dilation; slow_conv_transpose2d has.
        if layer.transposed or all(d == 1 for d in layer.dilation):
            return "matmul"
        return None
    return "onednn"


@functools.cache
def _kernels_available():
    mkldnn = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_convolution_pointwise")
        and hasattr(mkldnn, "_convolution_transpose_pointwise")
        and hasattr(torch._C._nn, "thnn_conv2d")
        and hasattr(torch._C._nn, "slow_conv_transpose2d")
    )
