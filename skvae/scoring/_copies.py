"""Copies of fitted modules made for scoring, cached while the module is unchanged.

A scoring pass may run a fitted module through a copy laid out for speed
(channels-last convolutions, another precision) without changing the
fitted module, which goes on training, pickling and exporting as it was.
"""

import weakref
from copy import deepcopy

import torch
from torch import nn

# A fitted module -> {kind: (its state's versions, the copy)}. Weak keys: the
# copies go when the estimator does.
_COPIES = weakref.WeakKeyDictionary()


def cached_copy(module, kind, make):
    """Return ``make(module)``, cached per module and ``kind``.

    The copy is made again when the module's parameters or buffers change
    in place (a warm-started fit trains the same module further; loading a
    state dict copies into it).
    """
    versions = tuple(tensor._version for tensor in _state(module))
    copies = _COPIES.setdefault(module, {})
    cached = copies.get(kind)
    if cached is None or cached[0] != versions:
        cached = (versions, make(module))
        copies[kind] = cached
    return cached[1]


def channels_last_copy(module):
    """Return a copy of ``module`` whose transposed convolutions run channels-last.

    For scoring on the CPU. oneDNN runs transposed convolutions (a
    convolutional decoder's) on channels-last images without reordering
    them on the way in and out: the default VAE's ELBO pass ran 1.1x
    faster, with the same scores to the bit on the machine measured
    (docs/performance.md, "Channels-last decoders"). The other
    convolutions keep their layout: an encoder gained nothing from it,
    and its rounding would change. A module without transposed
    convolutions, or on another device, is returned as it is.
    """
    layers = _transposed_convolutions(module)
    if not layers or layers[0].weight.device.type != "cpu":
        return module
    return cached_copy(module, "channels_last", _decoder_in_channels_last)


def _transposed_convolutions(module):
    return [m for m in _submodules(module) if isinstance(m, nn.ConvTranspose2d)]


def _decoder_in_channels_last(module):
    twin = deepcopy(module)
    for layer in _transposed_convolutions(twin):
        layer.to(memory_format=torch.channels_last)
    return twin


def _state(module):
    """Yield every parameter and buffer of ``module``, in a fixed order."""
    for submodule in _submodules(module):
        for tensor in (*submodule._parameters.values(), *submodule._buffers.values()):
            if tensor is not None:
                yield tensor


def _submodules(module):
    """Yield ``module`` and every module under it, depth first.

    Each scoring call checks its copies through this walk: ``Module.modules``
    builds every submodule's qualified name on the way, which made the check
    of a VAE's copy 0.05 ms of a lone row's 1.4 ms score (this walk: 0.02).
    A module held twice is visited twice, which changes no check.
    """
    stack = [module]
    while stack:
        submodule = stack.pop()
        yield submodule
        children = [child for child in submodule._modules.values() if child is not None]
        stack.extend(reversed(children))
