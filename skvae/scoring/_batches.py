"""The batching engine of the scoring layer: rows in passes.

Every per-sample function of a module runs through :func:`map_batches`,
which runs the rows in long passes and pads the last one to a multiple of a
few rows (``BLOCK_GRANULARITY``), so that a sample's result does not depend
on the other samples it is passed with. On the CPU every pass runs on one
torch thread, and the passes run side by side on as many Python threads as
torch had: the results are then also the same bits at every thread count.
"""

import math
from contextlib import contextmanager

import numpy as np
import torch

from ..utils._threads import map_in_order
from ..utils._torch import evaluating, grad_mode, one_torch_thread

# Rows per forward pass when scoring (see score_block_rows): consecutive
# rows of X go through the networks in passes of at most that many rows, and
# the last pass holds what is left, padded up to a multiple of
# BLOCK_GRANULARITY rows (or not at all, for modules that keep a row's bits
# at any pass size: skvae.scoring._copies.pass_granularity). Small passes
# leave the convolution kernels idle (4 images run at a third of the speed
# of 64), so bulk scoring uses long ones. A pass that also runs
# several transformed copies of each image (the transformation classifier
# scores 4) is memory-bound beyond 64 images: with 4 copies 64 / 128 / 256
# took 2.55 / 2.65 / 2.97 s on 10,000 images, as with 8 (benchmarks/speed.py,
# benchmarks/latency.py, docs/performance.md).
CPU_IMAGE_BLOCK_ROWS = 256
CPU_COPIES_BLOCK_ROWS = 64
CPU_FLAT_BLOCK_ROWS = 1024
ACCELERATOR_BLOCK_ROWS = 1024
# Every pass of a module not known to keep a row's bits at any pass size has
# a multiple of this many rows. A pass of one row takes other kernels (im2col
# convolutions, matrix-vector products) than a pass of several, which round
# otherwise: measured on passes of 1 to 256 images.
BLOCK_GRANULARITY = 4


def iter_batches(X, batch_size, input_shape, device, granularity=1):
    """Yield ``(batch, n_rows)``: consecutive rows of ``X`` as a float32 tensor.

    Every batch has ``batch_size`` rows but the last, which has the rows left
    zero-padded up to a multiple of ``granularity`` (``n_rows`` says how
    many are real); see :func:`load_batch`. Only one batch is converted and
    moved to ``device`` at a time, so memory stays bounded however many rows
    ``X`` has.
    """
    for start in range(0, len(X), batch_size):
        rows = X[start : start + batch_size]
        yield load_batch(rows, batch_size, input_shape, device, granularity)


def load_batch(rows, batch_size, input_shape, device, granularity=BLOCK_GRANULARITY):
    """``(batch, n_rows)``: ``rows`` as a float32 tensor of ``input_shape`` rows.

    The rows are zero-padded up to a multiple of ``granularity`` (at most
    ``batch_size``); each flat row starts on a 64-byte boundary (a row
    stride rounded up to 16 floats), as the BLAS kernels round a row
    differently depending on its memory alignment.
    """
    n_features = math.prod(input_shape)
    stride = n_features if len(input_shape) > 1 else _round_up(n_features, 16)
    rows = np.asarray(rows, dtype=np.float32)
    n_padded = min(batch_size, _round_up(len(rows), granularity))
    buffer = torch.zeros((n_padded, stride), dtype=torch.float32)
    # Copy through NumPy: read-only input (a memory map) needs no torch view.
    buffer.numpy()[: len(rows), :n_features] = rows.reshape(len(rows), -1)
    batch = buffer[:, :n_features].view(n_padded, *input_shape)
    return batch.to(device), len(rows)


def _round_up(n, multiple):
    return -(-n // multiple) * multiple


def score_block_rows(input_shape, device="cpu", copies=1):
    """Rows per forward pass with which :func:`map_batches` scores by default.

    Fixed by the sample shape, the device and ``copies``, how many
    transformed copies of each sample a pass runs through a network (the
    transformation classifier's), alone. The results do not depend on it.
    """
    if torch.device(device).type != "cpu":
        return ACCELERATOR_BLOCK_ROWS
    if len(input_shape) == 1:
        return CPU_FLAT_BLOCK_ROWS
    return CPU_IMAGE_BLOCK_ROWS if copies == 1 else CPU_COPIES_BLOCK_ROWS


def map_batches(
    fn,
    module,
    X,
    *,
    input_shape,
    batch_size=None,
    device="cpu",
    gradients=False,
    granularity=None,
):
    """Apply ``fn(module, batch)`` to ``X`` in batches and stack the results.

    Parameters
    ----------
    fn : callable
        Maps the module and a batch tensor of ``input_shape`` to a tensor
        with one row per sample.
    module : torch.nn.Module
        A fitted module; it runs in eval mode without gradients. ``fn`` may
        run on several threads at once, each with its own batch.
    X : ndarray of shape (n_samples, n_features)
        Validated input rows.
    input_shape : tuple of int
        Shape of one sample as the module expects it.
    batch_size : int, default=None
        Rows per forward pass, rounded up to a multiple of 4 (the last pass
        holds what is left, padded to such a multiple); affects memory and
        speed, and not the results, which are the same bits for every
        grouping of the rows of ``X`` and, on the CPU, at every torch thread
        count: each pass runs on one torch thread, and as many passes run at
        once as torch has threads. ``None`` means :func:`score_block_rows`.
    device : str or torch.device, default="cpu"
        Where the module lives.
    gradients : bool, default=False
        Let ``fn`` take gradients (explanation maps differentiate the
        module); the module still runs in eval mode.
    granularity : int, default=None
        Every pass is padded to a multiple of this many rows; ``None``
        means ``BLOCK_GRANULARITY`` (4), which keeps a row's bits through
        any module (PyTorch convolves a lone image on other kernels than
        several). A scoring copy whose kernels keep them at any pass size
        runs with 1 (:func:`skvae.scoring._copies.pass_granularity`), so
        that a lone row costs a pass of one. With ``gradients`` passes are
        always padded.

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
    if granularity is None or gradients:
        # With gradients every layer runs PyTorch's own kernels, which pick
        # another for a lone image.
        granularity = BLOCK_GRANULARITY
    batch_size = _round_up(batch_size, granularity)
    starts = range(0, len(X), batch_size)

    def run_pass(start):
        rows = X[start : start + batch_size]
        x, n_rows = load_batch(rows, batch_size, input_shape, device, granularity)
        with grad_mode(gradients):
            values = fn(module, x)
        return {
            key: value[:n_rows].detach().cpu().numpy()
            for key, value in _as_dict(values).items()
        }

    out = None
    with evaluating(module, gradients=gradients), _pass_threads(device) as n_threads:
        # Each worker thread runs its passes on one torch thread.
        passes = map_in_order(
            run_pass,
            starts,
            n_threads,
            initializer=torch.set_num_threads,
            initargs=(1,),
        )
        for start, values in zip(starts, passes, strict=True):
            if out is None:
                out = _empty_rows(values, len(X))
            for key, value in values.items():
                out[key][start : start + len(value)] = value
    # fn's output was one tensor, not a dict of them.
    return out[None] if out is not None and None in out else out


@contextmanager
def _pass_threads(device):
    """Yield how many passes run at once, each on one torch thread (CPU).

    On an accelerator the passes run one after another on the device.
    """
    if torch.device(device).type != "cpu":
        yield 1
        return
    with one_torch_thread() as n_threads:
        yield n_threads


def _as_dict(values):
    """View one output or a dict of outputs as a dict."""
    return values if isinstance(values, dict) else {None: values}


def _empty_rows(values, n_rows):
    """float64 arrays of ``n_rows`` rows shaped like one pass's ``values``."""
    return {
        key: np.empty((n_rows, *value.shape[1:]), dtype=np.float64)
        for key, value in values.items()
    }
