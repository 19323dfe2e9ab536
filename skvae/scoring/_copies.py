"""Copies of fitted modules made for scoring, cached while the module is unchanged.

A scoring pass may run a fitted module through a copy laid out for speed
(channels-last convolutions, another precision) without changing the
fitted module, which goes on training, pickling and exporting as it was.
"""

import weakref
from copy import deepcopy

from ..nn._inference import (
    CONVOLUTION_TYPES,
    InferenceConvolution,
    keeps_row_bits_at_any_pass_size,
)
from ._batches import BLOCK_GRANULARITY

# A fitted module -> {kind: (its state's versions, the copy)}. Weak keys: the
# copies go when the estimator does.
_COPIES = weakref.WeakKeyDictionary()
# Per module, what its structure decides (found by one walk): its plain
# convolutions, and the rows its scoring passes are padded to.
_CONVOLUTIONS = weakref.WeakKeyDictionary()
_GRANULARITIES = weakref.WeakKeyDictionary()


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


def scoring_copy(module):
    """Return a copy of ``module`` for scoring, its convolutions wrapped for it.

    For scoring on the CPU: each convolution runs as an
    :class:`~skvae.nn._inference.InferenceConvolution`, on a kernel chosen
    by its shape rather than by the batch, so an image's outputs are the
    same bits in passes of any size, one image included
    (:func:`pass_granularity`), and faster: single-channel layers as
    matrix products per image, transposed convolutions channels-last
    (docs/performance.md, "Single-channel convolutions as matrix
    products"). A module without convolutions, or on another device, is
    returned as it is.
    """
    layers = _CONVOLUTIONS.get(module)
    if layers is None:
        # A module's layers stay as built: the walk runs once per module.
        layers = _CONVOLUTIONS[module] = _convolutions(module)
    if not layers or layers[0].weight.device.type != "cpu":
        return module
    return cached_copy(module, "inference", _with_inference_convolutions)


def pass_granularity(module):
    """Rows a scoring pass of ``module`` is padded to a multiple of.

    1 for a module that gives a row the same bits in a pass of any size (a
    :func:`scoring_copy` of skvae's VAEs:
    :func:`~skvae.nn._inference.keeps_row_bits_at_any_pass_size`);
    otherwise :data:`~skvae.scoring._batches.BLOCK_GRANULARITY`, as for any
    module: PyTorch convolves a lone image on other kernels than several.
    """
    granularity = _GRANULARITIES.get(module)
    if granularity is None:
        row_wise = keeps_row_bits_at_any_pass_size(module)
        granularity = _GRANULARITIES[module] = 1 if row_wise else BLOCK_GRANULARITY
    return granularity


def _convolutions(module):
    """Return the plain convolutions of ``module``, wrapped or not."""
    return [m for m in _submodules(module) if type(m) in CONVOLUTION_TYPES]


def _with_inference_convolutions(module):
    twin = deepcopy(module)
    for parent in list(_submodules(twin)):
        for name, child in parent._modules.items():
            if child is not None and type(child) in CONVOLUTION_TYPES:
                parent._modules[name] = InferenceConvolution(child)
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
