"""Copies of fitted modules made for scoring, cached while the module is unchanged.

A scoring pass may run a fitted module through a copy laid out for speed
(channels-last convolutions, another precision) without changing the
fitted module, which goes on training, pickling and exporting as it was.
"""

import weakref
from copy import deepcopy

import torch

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
    """Return a channels-last copy of ``module`` for scoring on the CPU.

    oneDNN runs convolutions and transposed convolutions on channels-last
    images without reordering them on the way in and out: the default
    VAE's scoring pass ran 1.1x faster, with scores that differ by
    rounding alone (about 1e-7 of their scale; docs/performance.md,
    "Channels-last scoring passes"). A module without convolutions, or
    on another device, is returned as it is.
    """
    device = next(module.parameters()).device
    if device.type != "cpu" or not any(p.ndim == 4 for p in module.parameters()):
        return module
    return cached_copy(module, "channels_last", _to_channels_last)


def _to_channels_last(module):
    return deepcopy(module).to(memory_format=torch.channels_last)


def _state(module):
    yield from module.parameters()
    yield from module.buffers()
