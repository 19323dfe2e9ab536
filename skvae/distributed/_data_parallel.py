"""Data-parallel training on several local processes with torch's launcher."""

import mmap
import multiprocessing
import os
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import torch
from torch import distributed as dist
from torch.distributed.launcher.api import LaunchConfig, elastic_launch


def fit_data_parallel(
    estimator, X, y=None, *, n_processes=2, backend=None, threads_per_process=None
):
    """Fit an skvae estimator with DistributedDataParallel on local processes.

    Starts ``n_processes`` worker processes through torch's elastic launcher
    (the engine behind ``torchrun``) on the loopback interface; each joins
    one process group, trains its share of every mini-batch with
    :class:`~torch.nn.parallel.DistributedDataParallel` and gradients are
    averaged after each step. ``batch_size`` is the global batch, so the
    estimator's settings mean the same as on one process. To train across
    several machines, run your own script under ``torchrun`` instead (see
    the "Past one machine" section of the performance guide): ``fit`` is
    data-parallel whenever it runs inside an initialized process group.

    Parameters
    ----------
    estimator : skvae estimator
        An unfitted (or ``warm_start``) ``VAEOutlierDetector``,
        ``VAETransformer`` or ``VAEClassifier``. Set ``random_state`` to an
        int to make the run reproducible; the processes agree on one seed
        either way. With ``device="cuda"``, process ``i`` uses GPU ``i``.
    X : array-like
        Training data, as for ``estimator.fit``. Every process memory-maps
        it (NumPy arrays are shared, not copied) and reads its own shard of
        each epoch: a contiguous ``numpy.memmap`` (or a view of one) from
        its own file, anything else from one copy written to a temporary
        file.
    y : array-like, default=None
        Targets, as for ``estimator.fit``.
    n_processes : int, default=2
        Processes to train on (GPUs when ``device="cuda"``).
    backend : {"gloo", "nccl"} or None, default=None
        ``torch.distributed`` backend; ``None`` picks NCCL for CUDA and gloo
        for the CPU.
    threads_per_process : int or None, default=None
        torch threads in each process; ``None`` shares the CPU cores evenly,
        since more threads than cores slows every process down.

    Returns
    -------
    estimator : skvae estimator
        The fitted estimator of process 0 (all processes end with the same
        weights); ``estimator`` itself is not modified.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.distributed import fit_data_parallel
    >>> X = load_digits().images[:400]
    >>> detector = VAEOutlierDetector(max_epochs=2, random_state=0)
    >>> detector = fit_data_parallel(detector, X, n_processes=2)  # doctest: +SKIP
    >>> detector.predict(X).shape  # doctest: +SKIP
    (400,)
    """
    if not isinstance(n_processes, int) or n_processes < 1:
        raise ValueError(f"n_processes must be a positive int, got {n_processes!r}.")
    _check_not_starting_a_worker()
    cuda = torch.device(estimator.device).type == "cuda"
    if backend is None:
        backend = "nccl" if cuda else "gloo"
    if threads_per_process is None:
        threads_per_process = max(1, (os.cpu_count() or 1) // n_processes)
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=n_processes,
        run_id=f"skvae-{uuid.uuid4().hex}",
        # c10d rendezvous on port 0: a free loopback port, as torchrun
        # --standalone does; nothing is opened beyond this machine.
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        local_addr="127.0.0.1",
        max_restarts=0,
        start_method="spawn",
    )
    with tempfile.TemporaryDirectory(prefix="skvae-fit-") as folder:
        # The workers memory-map one copy of the data instead of each
        # unpickling its own from the launch pipe, which would also block
        # the launch for good if a worker died before reading it.
        data_file = _write_shared_data(X, y, Path(folder))
        outputs = elastic_launch(config, _fit_worker)(
            estimator, data_file, backend, threads_per_process
        )
    fitted, error, caught = outputs[0]
    # The worker's warnings and errors surface here as if fit ran locally.
    for message in caught:
        warnings.warn_explicit(
            message.message, message.category, message.filename, message.lineno
        )
    if error is not None:
        raise error
    return fitted


def _check_not_starting_a_worker():
    """Refuse to run while a spawned worker imports the caller's script.

    Each worker starts by importing the ``__main__`` module; a script that
    calls :func:`fit_data_parallel` at its top level would start a launcher
    inside every worker, and the launch would wait for workers that never
    join. ``_inheriting`` is the flag the standard library's own check reads
    (``multiprocessing.spawn``).
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise RuntimeError(
            "fit_data_parallel was called while one of its worker processes "
            "was importing your script: each worker starts by importing the "
            '__main__ module. Call it under `if __name__ == "__main__":` '
            "in a script."
        )


def _fit_worker(estimator, data_file, backend, threads_per_process):
    """One process of :func:`fit_data_parallel`: join the group and fit.

    Returns ``(estimator, error, warnings)`` from process 0 (the others
    return None): an exception raised in a worker would reach the caller
    only as the launcher's generic ``ChildFailedError``.
    """
    torch.set_num_threads(threads_per_process)
    X, y = _read_shared_data(data_file)
    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.device(estimator.device).type == "cuda":
        estimator.set_params(device=f"cuda:{local_rank}")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend)
    error = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                estimator.fit(X) if y is None else estimator.fit(X, y)
            except Exception as exception:  # re-raised by the caller
                error = exception
    finally:
        dist.destroy_process_group()
    if int(os.environ["RANK"]) != 0:
        return None
    return (None if error else estimator), error, caught


@dataclass(frozen=True)
class _MappedArray:
    """Where a memory-mapped array's bytes lie in its file."""

    filename: str
    offset: int
    dtype: np.dtype
    shape: tuple
    order: str

    def open(self):
        return np.memmap(
            self.filename,
            dtype=self.dtype,
            mode="r",
            offset=self.offset,
            shape=self.shape,
            order=self.order,
        )


def _mapped_array(X):
    """Locate ``X`` in its file: a :class:`_MappedArray`, or None.

    ``X`` qualifies when it is a contiguous view of a file mapped with
    ``mode`` "r", "r+" or "w+" (what the workers open shows what ``X``
    holds: shared mappings see the same pages); a copy-on-write map
    (``mode="c"``), a strided view or an in-memory array does not.
    """
    if not isinstance(X, np.ndarray) or X.size == 0:
        return None
    if X.flags.c_contiguous:
        order = "C"
    elif X.flags.f_contiguous:
        order = "F"
    else:
        return None
    file_map, mapping = None, X
    while isinstance(mapping, np.ndarray):
        if file_map is None and isinstance(mapping, np.memmap):
            file_map = mapping
        mapping = mapping.base
    if not isinstance(mapping, mmap.mmap) or file_map is None:
        return None
    if file_map.filename is None or file_map.mode == "c":
        return None
    # np.memmap maps from the allocation boundary at or before its offset.
    mapped_from = file_map.offset - file_map.offset % mmap.ALLOCATIONGRANULARITY
    start = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    offset = mapped_from + X.ctypes.data - start
    return _MappedArray(file_map.filename, offset, X.dtype, X.shape, order)


def _write_shared_data(X, y, folder):
    """Write what the workers read ``(X, y)`` from into ``folder``; its path.

    A memory-mapped ``X`` stays in its own file (the workers map it again)
    instead of being copied: 200,000 28x28 float32 images are 630 MB, and a
    temporary folder may live in memory (tmpfs).
    """
    data_file = folder / "fit_data.joblib"
    mapped = _mapped_array(X)
    joblib.dump((X if mapped is None else mapped, y), data_file)
    return data_file


def _read_shared_data(data_file):
    """``(X, y)`` as :func:`_write_shared_data` left them, memory-mapped."""
    X, y = joblib.load(data_file, mmap_mode="r")
    return (X.open() if isinstance(X, _MappedArray) else X), y
