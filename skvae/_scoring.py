"""Per-sample outputs of a fitted VAE module, computed batch by batch.

Plain functions of a module and an array, shared by every estimator. The
module runs in eval mode (latent code = posterior mean), so outputs are
deterministic, and a sample's output does not depend on the rest of its batch.
"""

import numpy as np
import torch

from .nn import elbo
from .utils._torch import evaluating

SCORE_BATCH_SIZE = 256


def iter_batches(X, batch_size, input_shape, device):
    """Yield ``(batch, n_rows)``: consecutive rows of ``X`` as a float32 tensor.

    Every batch has exactly ``batch_size`` rows; the last one is padded with
    zeros and ``n_rows`` says how many are real. A fixed shape keeps outputs
    bit-identical however the samples are grouped: the BLAS kernels round
    differently for different batch sizes. Only one batch is converted and
    moved to ``device`` at a time, so memory stays bounded however many rows
    ``X`` has.
    """
    for start in range(0, len(X), batch_size):
        rows = np.asarray(X[start : start + batch_size], dtype=np.float32)
        batch = torch.zeros((batch_size, *input_shape), dtype=torch.float32)
        batch[: len(rows)] = torch.from_numpy(rows).reshape(-1, *input_shape)
        yield batch.to(device), len(rows)


def map_batches(
    fn, module, X, *, input_shape, batch_size=SCORE_BATCH_SIZE, device="cpu"
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
    batch_size : int, default=256
        Rows per forward pass; affects memory and speed, never the result.
    device : str or torch.device, default="cpu"
        Where the module lives.

    Returns
    -------
    out : ndarray of shape (n_samples, ...)
        The stacked outputs, as float64 on the CPU.
    """
    out = None
    with evaluating(module):
        for start, (x, n_rows) in zip(
            range(0, len(X), batch_size),
            iter_batches(X, batch_size, input_shape, device),
            strict=True,
        ):
            values = fn(module, x)[:n_rows].cpu().numpy()
            if out is None:
                out = np.empty((len(X), *values.shape[1:]), dtype=np.float64)
            out[start : start + n_rows] = values
    return out


def elbo_scores(module, X, **kwargs):
    """Per-sample ELBO (beta = 1) at the posterior mean, shape ``(n_samples,)``.

    ``log p(x|z=mu) - KL(q(z|x) || p(z))``; higher means more typical.
    Keyword arguments go to :func:`map_batches`.
    """

    def batch_elbo(module, x):
        return elbo(*module.elbo_terms(x, module(x)))

    return map_batches(batch_elbo, module, X, **kwargs)


def latent_means(module, X, **kwargs):
    """Posterior means ``mu`` of q(z|x), shape ``(n_samples, latent_dim)``.

    Keyword arguments go to :func:`map_batches`.
    """
    return map_batches(lambda module, x: module.encode(x)[0], module, X, **kwargs)


def decoded_means(module, Z, **kwargs):
    """Return the decoder means E[x|z] of latent codes ``Z``, one flat row each.

    Keyword arguments go to :func:`map_batches`.
    """

    def decode_mean(module, z):
        return module.likelihood.mean(module.decode(z)).reshape(len(z), -1)

    return map_batches(decode_mean, module, Z, input_shape=(Z.shape[1],), **kwargs)
