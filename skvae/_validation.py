"""Input checks that need the data: image shapes and value ranges."""

import math

import numpy as np

MIN_CONV_SIDE = 8


def split_image_shape(X):
    """Flatten an image array to 2-D, returning it with its ``(C, H, W)`` shape.

    Arrays of rank 3 ``(n, H, W)`` and rank 4 ``(n, C, H, W)`` are images; any
    other input is returned as it is, with ``None`` for the shape, and left to
    scikit-learn's ``validate_data`` (which rejects ranks other than 2).
    """
    ndim = getattr(X, "ndim", None)
    if ndim not in (3, 4) or not hasattr(X, "reshape"):
        return X, None
    if ndim == 4:
        check_channels_first(X.shape)
    image_shape = tuple(X.shape[1:]) if ndim == 4 else (1, *X.shape[1:])
    return X.reshape(len(X), -1), image_shape


def is_uint8(X):
    """Whether ``X`` holds 8-bit pixels: a uint8 array, or only uint8 columns.

    The same rule for every container, so that the same pixels are scaled
    alike in an array, a memmap or a pandas DataFrame.
    """
    dtypes = getattr(X, "dtypes", None)  # pandas: one dtype per column
    if dtypes is not None and not isinstance(dtypes, np.dtype):
        return len(dtypes) > 0 and all(dtype == np.uint8 for dtype in dtypes)
    return getattr(X, "dtype", None) == np.uint8


def plain_rows(X, n_features):
    """``X`` as float32 rows if scikit-learn would take it as it is, else ``None``.

    A plain 2-D NumPy array of real numbers with ``n_features`` columns, at
    least one row and only finite values is what ``validate_data`` accepts
    without a warning or an error; converting it directly costs a tenth of
    the full check, which dominates when scoring one row. Anything else
    returns ``None``, for ``validate_data`` to convert, warn or raise
    exactly as scikit-learn does. The caller handles feature names.
    """
    if (
        type(X) is not np.ndarray
        or X.ndim != 2
        or X.dtype.kind not in "fiu"
        or X.shape[0] < 1
        or X.shape[1] < 1
        or X.shape[1] != n_features
    ):
        return None
    # A finite sum means finite values; an infinite one (a NaN, an infinity,
    # a value beyond float32, or an overflow of large finite values) goes to
    # the full check, which raises or not as scikit-learn does.
    with np.errstate(over="ignore", invalid="ignore"):
        X = X.astype(np.float32, copy=False)
        if X.dtype.kind == "f" and not np.isfinite(X.sum()):
            return None
    return X


IMAGE_CHANNELS = (1, 3, 4)  # grayscale, RGB, RGBA


def check_channels_first(shape):
    """Raise for an ``(n, H, W, C)`` array, which would read as C-wide images.

    Most image libraries (PIL, OpenCV, matplotlib, TensorFlow) put channels
    last; skvae, like torch, takes ``(n, C, H, W)``. A last axis of 1, 3 or 4
    with a first image axis that is not is taken for channels-last.
    """
    _, first, _, last = shape
    if last in IMAGE_CHANNELS and first not in IMAGE_CHANNELS:
        raise ValueError(
            f"X has shape {tuple(shape)}, which looks channels-last "
            f"(n, H, W, C) with C={last}; skvae takes images as (n, C, H, W). "
            "Convert with np.moveaxis(X, -1, 1). If the array really is "
            f"(n, C, H, W) with {first} channels, pass it flattened, "
            f"X.reshape(len(X), -1), with image_shape={tuple(shape[1:])}."
        )


def resolve_input_shape(
    architecture, image_shape, array_image_shape, n_features, rows=None
):
    """Shape of one sample as the module sees it: ``(C, H, W)`` or ``(n_features,)``.

    Parameters
    ----------
    architecture : {"auto", "conv", "mlp", "grad2vae"}
        The estimator's ``architecture`` parameter. ``"grad2vae"`` reads
        flat rows that are no square image as one-row images
        ``(1, 1, n_features)``.
    image_shape : tuple of int or None
        The estimator's ``image_shape`` parameter, ``(H, W)`` or ``(C, H, W)``.
    array_image_shape : tuple of int or None
        ``(C, H, W)`` when ``X`` came as an image array.
    n_features : int
        Number of features of the flattened input.
    rows : array-like of shape (n_samples, n_features), default=None
        The flat training rows. A square number of features is read as an
        image when they vary as pixels do (:func:`looks_like_images`);
        ``None`` reads every square number as an image.
    """
    if architecture == "mlp":
        return (n_features,)
    if image_shape is not None:
        shape = _as_chw(image_shape)
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={tuple(image_shape)} implies {math.prod(shape)} "
                f"features but X has {n_features}. Pass the (C, H, W) or (H, W) "
                "of one image, or image_shape=None to infer it."
            )
        return shape
    if array_image_shape is not None:
        return array_image_shape
    side = math.isqrt(n_features)
    if side * side == n_features and side >= MIN_CONV_SIDE:
        # An explicit "conv" reads any square as an image; otherwise 256 or
        # 1,024 features of an embedding stay a table.
        if architecture == "conv" or rows is None or looks_like_images(rows, side):
            return (1, side, side)
    if architecture == "grad2vae":
        return (1, 1, n_features)
    if architecture == "conv":
        raise ValueError(
            f"architecture='conv' needs image input, but X has {n_features} "
            "features, which is not a square image of side >= "
            f"{MIN_CONV_SIDE}. Pass image_shape=(C, H, W), an array of shape "
            "(n, H, W) or (n, C, H, W), or use architecture='mlp'."
        )
    return (n_features,)


# Below this many rows the neighbours' correlations are noise: square
# numbers of features stay images, as they were before the test existed.
MIN_ROWS_TO_TELL_IMAGES = 8
# Images measured score 0.26-0.77 (digits and Fashion-MNIST one class at a
# time, photo patches); embeddings, tables with shuffled columns and
# independent noise -0.03-0.06 (docs/benchmark.md, "Embeddings with a square
# number of features").
IMAGE_NEIGHBOUR_EXCESS = 0.1
# At most this many values are read for the test (a few rows of large images).
_IMAGE_TEST_VALUES = 2_000_000


def neighbour_correlation_excess(rows, side):
    """How much more than any two features a square grid's neighbours correlate.

    The mean correlation of the pairs of features that would be neighbours
    in a ``side x side`` grid (left-right and up-down), in excess of the
    mean correlation of all pairs of features, as a share of what that
    leaves to 1: ``(r_neighbours - r_all) / (1 - r_all)``. Pixels of an
    image resemble their neighbours more than distant pixels; features of a
    table or an embedding have no such order, so their excess is about 0
    whatever their correlations. Features that do not vary are left out.
    Evenly spaced rows are read, at most about two million values.
    ``architecture="auto"`` reads flat rows as images from 0.1.

    Parameters
    ----------
    rows : array-like of shape (n_samples, side * side)
        Flat rows, finite.
    side : int
        The side of the square the features would form.

    Returns
    -------
    excess : float
        At most 1; ``nan`` where fewer than two features vary or no
        neighbouring pair does.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from skvae.datasets import neighbour_correlation_excess
    >>> digits = load_digits().data  # 8x8 images, flat
    >>> round(neighbour_correlation_excess(digits, 8), 2)
    0.4
    >>> noise = np.random.RandomState(0).normal(size=(500, 64))
    >>> abs(neighbour_correlation_excess(noise, 8)) < 0.05
    True
    """
    n_rows = len(rows)
    max_rows = max(MIN_ROWS_TO_TELL_IMAGES, _IMAGE_TEST_VALUES // (side * side))
    step = -(-n_rows // max_rows)
    sample = np.asarray(rows[::step], dtype=np.float64)
    std = sample.std(axis=0)
    varying = std > 0
    if varying.sum() < 2:
        return float("nan")
    z = (sample[:, varying] - sample[:, varying].mean(axis=0)) / std[varying]
    # Column of each varying feature in z; -1 for the constant ones.
    column = np.full(side * side, -1)
    column[varying] = np.arange(varying.sum())
    grid = column.reshape(side, side)
    left, right = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    up, down = grid[:-1].ravel(), grid[1:].ravel()
    first, second = np.r_[left, up], np.r_[right, down]
    both = (first >= 0) & (second >= 0)
    if not both.any():
        return float("nan")
    neighbours = np.mean(z[:, first[both]] * z[:, second[both]])
    # The sum of all pairs' correlations from the rows' sums: no k x k matrix.
    k = z.shape[1]
    all_pairs = (np.mean(z.sum(axis=1) ** 2) - k) / (k * (k - 1))
    if all_pairs >= 1:
        return float("nan")
    return float((neighbours - all_pairs) / (1 - all_pairs))


def looks_like_images(rows, side):
    """Whether flat rows of ``side * side`` features vary as images' pixels do.

    True when :func:`neighbour_correlation_excess` is at least 0.1, and
    when it cannot tell: fewer than 8 rows, or too few varying features.

    Parameters
    ----------
    rows : array-like of shape (n_samples, side * side)
        Flat rows, finite.
    side : int
        The side of the square the features would form.

    Returns
    -------
    is_image : bool
    """
    if len(rows) < MIN_ROWS_TO_TELL_IMAGES:
        return True
    excess = neighbour_correlation_excess(rows, side)
    return bool(np.isnan(excess) or excess >= IMAGE_NEIGHBOUR_EXCESS)


def _as_chw(image_shape):
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape
    raise ValueError(
        f"image_shape must be (H, W) or (C, H, W); got {tuple(image_shape)}."
    )


def check_unit_interval(X, likelihood):
    """Raise if ``X`` leaves [0, 1] while the likelihood needs it to stay inside."""
    low, high = float(np.min(X)), float(np.max(X))
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"likelihood={likelihood!r} models values in [0, 1], but X ranges "
            f"from {low:g} to {high:g}. Scale X into [0, 1] (e.g. with "
            "sklearn.preprocessing.MinMaxScaler, or divide 8-bit pixels by 255) "
            "or use likelihood='gaussian'."
        )


def take_rows(X, indices):
    """Return rows ``indices`` of validated ``X`` (ValidatedRows stay unread)."""
    return X.take(indices) if isinstance(X, ValidatedRows) else X[indices]


class ValidatedRows:
    """Rows of a large array, validated and converted one batch at a time.

    Fitting on or scoring a ``numpy.memmap`` of images must not materialise
    a float32 copy of all of it. The scoring loop reads slices (``rows[i:j]``)
    and the training loop reads shuffled batches (``rows[indices]``); each is
    validated and converted by ``validate_rows`` only then, so a non-finite
    value is reported when its batch is reached. :meth:`take` narrows the
    rows to a subset (the calibration split) without copying any.
    ``np.asarray`` still gives the whole validated array where a caller
    needs it.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        The raw rows (any dtype ``validate_rows`` accepts).
    validate_rows : callable
        Maps raw rows of ``X`` to validated float32 rows.
    indices : ndarray of int or None, default=None
        The rows of ``X`` these stand for, in order; None means all.
    sample_shape : tuple of int or None, default=None
        Shape each returned row takes (the module's input shape for
        training batches); None keeps rows flat.
    """

    def __init__(self, X, validate_rows, indices=None, sample_shape=None):
        self.X = X
        self.validate_rows = validate_rows
        self.indices = indices
        self.sample_shape = sample_shape

    def __len__(self):
        return len(self.X) if self.indices is None else len(self.indices)

    @property
    def shape(self):
        return (len(self), *(self.sample_shape or self.X.shape[1:]))

    def __getitem__(self, index):
        if not isinstance(index, slice):
            index = np.asarray(index)
            if index.dtype.kind not in "iu" or index.ndim != 1:
                raise TypeError(
                    "ValidatedRows takes a slice or a 1-D array of row indices."
                )
        return self._shaped(self.validate_rows(self._raw_rows(index)))

    def _raw_rows(self, index):
        """Raw rows of ``X`` at ``index`` (a slice or integers into these rows)."""
        if self.indices is not None:
            index = self.indices[index]
        if isinstance(index, slice):
            return self.X[index]
        # Reading a memmap in ascending order is sequential on disk.
        order = np.argsort(index, kind="stable")
        rows = np.empty((len(index), *self.X.shape[1:]), dtype=self.X.dtype)
        rows[order] = self.X[index[order]]
        return rows

    def _shaped(self, rows):
        if self.sample_shape is None:
            return rows
        return rows.reshape(-1, *self.sample_shape)

    def take(self, indices):
        """Return the rows at ``indices`` (into these rows), still unread."""
        indices = np.asarray(indices, dtype=np.intp)
        if self.indices is not None:
            indices = self.indices[indices]
        return ValidatedRows(self.X, self.validate_rows, indices, self.sample_shape)

    def reshaped(self, sample_shape):
        """Return the same rows, each read in ``sample_shape``."""
        return ValidatedRows(self.X, self.validate_rows, self.indices, sample_shape)

    def check_all(self, chunk_rows):
        """Validate every row, ``chunk_rows`` at a time, keeping none."""
        for start in range(0, len(self), chunk_rows):
            self[start : start + chunk_rows]

    def __array__(self, dtype=None, copy=None):
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype)
