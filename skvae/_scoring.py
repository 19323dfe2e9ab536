"""Per-sample scores of a fitted VAE module, computed batch by batch.

Plain functions of a module and an array, shared by every estimator. The
module runs in eval mode (latent code = posterior mean), so scores are
deterministic and a sample's score does not depend on the rest of its batch.
"""

import numpy as np
import torch

from .nn import elbo
from .utils._torch import evaluating


def iter_batches(X, batch_size, input_shape, device):
    """Yield ``(batch, n_rows)``: consecutive rows of ``X`` as a float32 tensor.

    Every batch has exactly ``batch_size`` rows; the last one is padded with
    zeros and ``n_rows`` says how many are real. A fixed shape keeps scores
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


def elbo_scores(module, X, *, input_shape, batch_size=256, device="cpu"):
    """Per-sample ELBO (beta = 1) at the posterior mean, shape ``(n_samples,)``.

    Parameters
    ----------
    module : skvae.nn.VAE
        A fitted VAE.
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
    scores : ndarray of shape (n_samples,)
        log p(x|z=mu) - KL(q(z|x) || p(z)); higher means more typical.
    """
    scores = np.empty(len(X), dtype=np.float64)
    start = 0
    with evaluating(module):
        for x, n_rows in iter_batches(X, batch_size, input_shape, device):
            log_px, kl = module.elbo_terms(x, module(x))
            scores[start : start + n_rows] = elbo(log_px, kl)[:n_rows].cpu().numpy()
            start += n_rows
    return scores
