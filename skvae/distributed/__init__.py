"""Past one machine: Dask for data larger than memory, DDP for training.

Both run on existing engines: :func:`map_blocks` maps a fitted estimator
over a ``dask.array`` on any Dask cluster, and :func:`fit_data_parallel`
trains with ``torch.nn.parallel.DistributedDataParallel`` on processes
started by torch's elastic launcher (``torchrun``'s engine). Hyper-parameter
search scales out with joblib's Dask backend and needs nothing from skvae.
"""

from ._dask import map_blocks
from ._data_parallel import fit_data_parallel

__all__ = ["fit_data_parallel", "map_blocks"]
