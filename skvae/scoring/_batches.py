"""The batching engine of the scoring layer: rows in fixed blocks.

Every per-sample function of a module runs through :func:`map_batches`,
which pads each forward pass to a fixed block of rows, so that a sample's
result does not depend on the other samples it is passed with.
"""

import math

import numpy as np
import torch

from ..utils._torch import evaluating

# Rows per forward pass when scoring (see score_block_rows). Each pass has
# exactly that many rows, the last one padded, so that a row's result never
# depends on the rest of X; a lone row costs a whole block. On the CPU a
# block of 4 images costs about as much per image as one of 256 and a lone
# image about twice its unpadded pass; dense nets' rows are cheaper, so
# their blocks are longer (benchmarks/latency.py, docs/performance.md). On
# an accelerator, a pass costs about the same for any block up to 256.
CPU_IMAGE_BLOCK_ROWS = 4
CPU_FLAT_BLOCK_ROWS = 32
ACCELERATOR_BLOCK_ROWS = 256


def iter_batches(X, batch_size, input_shape, device):
    """Yield ``(batch, n_rows)``: consecutive rows of ``X`` as a float32 tensor.

    The BLAS kernels round a row's result differently depending on the batch
    size and on where the row sits in memory, so two measures keep outputs
    bit-identical however the samples are grouped: every batch has exactly
    ``batch_size`` rows (the last one zero-padded; ``n_rows`` says how many
    are real), and each flat row starts on a 64-byte boundary (a row stride
    rounded up to 16 floats). Only one batch is converted and moved to
    ``device`` at a time, so memory stays bounded however many rows ``X`` has.
    """
    n_features = math.prod(input_shape)
    stride = n_features if len(input_shape) > 1 else -(-n_features // 16) * 16
    for start in range(0, len(X), batch_size):
        rows = np.asarray(X[start : start + batch_size], dtype=np.float32)
        buffer = torch.zeros((batch_size, stride), dtype=torch.float32)
        # Copy through NumPy: read-only input (a memory map) needs no torch view.
        buffer.numpy()[: len(rows), :n_features] = rows.reshape(len(rows), -1)
        batch = buffer[:, :n_features].view(batch_size, *input_shape)
        yield batch.to(device), len(rows)


def score_block_rows(input_shape, device="cpu"):
    """Rows per forward pass with which :func:`map_batches` scores by default.

    Fixed by the sample shape and the device alone, so that a sample's
    scores are the same bits whatever it is scored with.
    """
    if torch.device(device).type != "cpu":
        return ACCELERATOR_BLOCK_ROWS
    return CPU_IMAGE_BLOCK_ROWS if len(input_shape) > 1 else CPU_FLAT_BLOCK_ROWS


def map_batches(
    fn,
    module,
    X,
    *,
    input_shape,
    batch_size=None,
    device="cpu",
    gradients=False,
):
    """Apply ``fn(module, batch)`` to ``X`` in batches and stack the results.

    Parameters
    ----------
    fn : callable
        Maps the module and a batch tensor of ``input_shape`` to a tensor
        with one row per sample.
    module : torch.nn.Module
        A fitted module; it runs in eval mode without gradients.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    input_shape : tuple of int
        Shape of one sample as the module expects it.
    batch_size : int, default=None
        Rows per forward pass; affects memory and speed. Results are the
        same bits for every grouping of the rows of ``X`` at one
        ``batch_size``; another size may round differently in the last bits.
        ``None`` means :func:`score_block_rows`.
    device : str or torch.device, default="cpu"
        Where the module lives.
    gradients : bool, default=False
        Let ``fn`` take gradients (explanation maps differentiate the
        module); the module still runs in eval mode.

    Returns
    -------
    out : ndarray of shape (n_samples, ...) or dict of them
        The stacked outputs, as float64 on the CPU; a dict of such arrays
        when ``fn`` returns a dict of tensors.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.nn import make_vae
    >>> module = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,))  # or est.module_
    >>> X = np.random.RandomState(0).uniform(size=(5, 64)).astype(np.float32)
    >>> from skvae.scoring import map_batches
    >>> first_latent_mean = lambda module, x: module.encode(x)[0][:, 0]
    >>> map_batches(first_latent_mean, module, X, input_shape=(1, 8, 8)).shape
    (5,)
    """
    if batch_size is None:
        batch_size = score_block_rows(input_shape, device)
    out = None
    batches = zip(
        range(0, len(X), batch_size),
        iter_batches(X, batch_size, input_shape, device),
        strict=True,
    )
    with evaluating(module, gradients=gradients):
        for start, (x, n_rows) in batches:
            values = fn(module, x)
            if out is None:
                out = _empty_like_rows(values, len(X))
            for key, value in _as_dict(values).items():
                rows = value[:n_rows].detach().cpu().numpy()
                _as_dict(out)[key][start : start + n_rows] = rows
    return out


def _as_dict(values):
    """View one output or a dict of outputs as a dict."""
    return values if isinstance(values, dict) else {None: values}


def _empty_like_rows(values, n_rows):
    """float64 arrays of ``n_rows`` rows shaped like one batch's ``values``."""
    out = {
        key: np.empty((n_rows, *value.shape[1:]), dtype=np.float64)
        for key, value in _as_dict(values).items()
    }
    return out if isinstance(values, dict) else out[None]
