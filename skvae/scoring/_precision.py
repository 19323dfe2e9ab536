"""The arithmetic of the transformation classifier's scoring passes.

The classifier's convolutions are most of the default detector's scoring
work. On CPUs with AMX, oneDNN runs them about 2.4x faster in bfloat16 than
in float32, and the detector's ROC-AUC moved by at most 0.04 on every
benchmark split (docs/performance.md, "The classifier in bfloat16"). The
fitted classifier stays float32; scoring reads a copy of it in the
precision asked (channels-last; in float32 each convolution fused with its
activation), made once per fitted module and kept while its weights are
unchanged.
"""

import torch

from ._copies import cached_copy

PRECISIONS = ("auto", "float32", "bfloat16")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def native_bfloat16():
    """Whether this CPU multiplies bfloat16 matrices in hardware (AMX-BF16).

    Where it does not, oneDNN converts bfloat16 to float32 on the way and
    gains nothing; CPUs with AVX512-BF16 alone were not measured.
    """
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:  # torch before 2.8 does not say
        return False
    return bool(get_capabilities().get("amx_bf16", False))


def resolve_precision(precision, device="cpu"):
    """Return the arithmetic a ``transformation_precision`` means on ``device``.

    Parameters
    ----------
    precision : {"auto", "float32", "bfloat16"}
        A :class:`~skvae.VAEOutlierDetector`'s ``transformation_precision``.
    device : str or torch.device, default="cpu"
        Where the transformation classifier lives.

    Returns
    -------
    precision : {"float32", "bfloat16"}
        ``"auto"`` is ``"bfloat16"`` on a CPU with AMX-BF16 (Intel Xeon
        since Sapphire Rapids) and ``"float32"`` elsewhere, accelerators
        included, whose float32 convolutions are fast already; the others
        mean themselves.

    Examples
    --------
    >>> from skvae.scoring import resolve_precision
    >>> resolve_precision("float32")
    'float32'
    >>> resolve_precision("auto") in {"float32", "bfloat16"}  # this machine's
    True
    """
    if precision != "auto":
        return precision
    if torch.device(device).type == "cpu" and native_bfloat16():
        return "bfloat16"
    return "float32"


def classifier_in_precision(module, precision):
    """Return the copy of ``module`` that scores in ``precision`` (``in_dtype``).

    On the CPU both precisions score through a channels-last copy (in
    float32 each convolution fused with its activation, about 1.2x faster
    than the module itself); on an accelerator float32 is the module
    itself. The copies
    are cached per module and precision, and made again when the module's
    weights change in place (a warm-started fit trains the same module
    further).
    """
    device = next(module.parameters()).device
    if precision == "float32" and device.type != "cpu":
        return module
    dtype = _DTYPES[precision]
    return cached_copy(module, precision, lambda m: m.in_dtype(dtype).eval())
