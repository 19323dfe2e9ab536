"""Apply a fitted estimator to a Dask array block by block."""

import numpy as np

# Methods whose output has one row per sample and nothing that couples rows,
# so that mapping them over row blocks gives the in-memory result.
ROW_WISE_METHODS = (
    "decision_function",
    "score_samples",
    "predict",
    "predict_proba",
    "transform",
    "inverse_transform",
)


def map_blocks(estimator, X, method="decision_function"):
    """Lazily apply a fitted estimator's row-wise method to a Dask array.

    Each block of rows is sent to a Dask worker together with the estimator
    and computed there, so data larger than memory can be scored on a
    cluster (or a ``LocalCluster`` on one machine). skvae's outputs do not
    depend on how samples are grouped into batches, so the result is
    identical to calling ``getattr(estimator, method)(X.compute())``.

    Parameters
    ----------
    estimator : fitted skvae estimator
        Any fitted estimator that has ``method``; it is pickled once into
        the task graph.
    X : dask.array.Array of shape (n_samples, ...)
        Samples in any input shape the estimator accepts (flat rows,
        ``(n, H, W)`` or ``(n, C, H, W)`` images). Chunks may split the
        rows; chunks along the other axes are merged.
    method : str, default="decision_function"
        One of ``"decision_function"``, ``"score_samples"``, ``"predict"``,
        ``"predict_proba"``, ``"transform"``, ``"inverse_transform"``.

    Returns
    -------
    out : dask.array.Array
        Lazy result with the rows chunked like ``X``; call ``.compute()``
        or store it (``dask.array.to_zarr``, ``to_npy_stack``) to run it.

    Raises
    ------
    ValueError
        If ``method`` is not row-wise, or ``X`` is not a Dask array.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.distributed import map_blocks
    >>> X = da.from_array(np.random.RandomState(0).rand(600, 8), chunks=200)
    >>> detector = VAEOutlierDetector(latent_dim=2, max_epochs=2, random_state=0)
    >>> detector = detector.fit(X[:200].compute())
    >>> scores = map_blocks(detector, X, "decision_function")
    >>> scores.shape, scores.chunks
    ((600,), ((200, 200, 200),))
    """
    import dask.array as da

    if method not in ROW_WISE_METHODS:
        raise ValueError(
            f"method={method!r} cannot be mapped block by block; use one of "
            f"{ROW_WISE_METHODS}."
        )
    if not isinstance(X, da.Array):
        raise ValueError(
            f"X must be a dask.array.Array, got {type(X).__name__}; call the "
            f"estimator's {method} directly on in-memory data."
        )
    # Only whole samples can be scored: keep every non-row axis in one chunk.
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    # A one-sample probe (computed locally, not on the cluster) tells the
    # output's shape per row and its dtype.
    probe = getattr(estimator, method)(np.zeros((1, *X.shape[1:]), dtype=X.dtype))
    row_shape = probe.shape[1:]
    return da.map_blocks(
        _apply,
        X,
        estimator=estimator,
        method=method,
        dtype=probe.dtype,
        chunks=(X.chunks[0], *((size,) for size in row_shape)),
        drop_axis=list(range(1 + len(row_shape), X.ndim)),
        new_axis=list(range(X.ndim, 1 + len(row_shape))),
        meta=np.empty((0, *row_shape), dtype=probe.dtype),
    )


def _apply(block, *, estimator, method):
    return getattr(estimator, method)(block)
