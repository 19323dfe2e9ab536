"""The 8x8 digits bundled with scikit-learn, as [0, 1] images with a fixed split."""

from numbers import Integral

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

__all__ = ["load_digit_images"]

# The digits' pixels count set bits in 4x4 blocks of a 32x32 bitmap: 0 to 16.
MAX_PIXEL = 16.0

DESCR_HEADER = """\
skvae's view of the digits: pixels divided by 16 into [0, 1] as float32, and
for subset="train" or "test" a stratified split with a fixed random_state, so
the two subsets are disjoint and reproducible. scikit-learn's description
follows.

"""


def load_digit_images(
    *, subset="all", test_size=0.25, random_state=0, return_X_y=False
):
    """Load scikit-learn's 8x8 digit images scaled to [0, 1], optionally split.

    The digits ship with scikit-learn, so no file or download is needed: this
    is skvae's default data for tests, examples and benchmarks. Unlike
    :func:`sklearn.datasets.load_digits`, the pixels are divided by 16 into
    [0, 1] as float32 (ready for ``likelihood="bernoulli"``), and
    ``subset="train"`` or ``"test"`` returns one side of a stratified split.
    Both sides come from the same split when given the same ``test_size`` and
    ``random_state``, so they never overlap, and every class keeps its share.

    =================   ==============
    Classes                         10
    Samples per class             ~180
    Samples total                 1797
    Dimensionality            64 (8x8)
    Features            float32, 0 - 1
    =================   ==============

    Parameters
    ----------
    subset : {"all", "train", "test"}, default="all"
        All 1797 images in their original order, or one side of the split.
    test_size : float or int, default=0.25
        Share (float in (0, 1)) or number (int) of images in the test subset,
        as in :func:`sklearn.model_selection.train_test_split`. Ignored when
        ``subset="all"``.
    random_state : int, default=0
        Seed of the split. Only an int is accepted: a ``RandomState`` or
        ``None`` would draw a different split for the train and the test call,
        and the two subsets would overlap. Ignored when ``subset="all"``.
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 64), dtype float32
            The flattened images, values in [0, 1].
        images : ndarray of shape (n_samples, 8, 8), dtype float32
            The same pixels as ``data`` (a view of it), as images.
        target : ndarray of shape (n_samples,), dtype int64
            The digit of each image.
        target_names : ndarray of shape (10,)
            The digits 0-9.
        DESCR : str
            The description of the data set.

    (data, target) : tuple if ``return_X_y`` is True
        The flattened images of shape (n_samples, 64) and the labels.

    See Also
    --------
    one_class_split : Build the one-class benchmark protocol from the subsets.
    load_fashion_mnist : The 28x28 benchmark images, read from local files.

    Examples
    --------
    >>> from skvae.datasets import load_digit_images
    >>> digits = load_digit_images()
    >>> digits.images.shape, digits.images.dtype
    ((1797, 8, 8), dtype('float32'))
    >>> float(digits.data.min()), float(digits.data.max())
    (0.0, 1.0)
    >>> X_train, y_train = load_digit_images(subset="train", return_X_y=True)
    >>> X_test, y_test = load_digit_images(subset="test", return_X_y=True)
    >>> X_train.shape, X_test.shape
    ((1347, 64), (450, 64))
    """
    if subset not in ("all", "train", "test"):
        raise ValueError(
            "The 'subset' parameter of load_digit_images must be a str among "
            f"{{'all', 'train', 'test'}}. Got {subset!r} instead."
        )
    if not isinstance(random_state, Integral) or isinstance(random_state, bool):
        raise TypeError(
            "The 'random_state' parameter of load_digit_images must be an int, "
            f"so that the train and test subsets come from one split. Got "
            f"{random_state!r} instead."
        )
    digits = load_digits()
    data = (digits.data / MAX_PIXEL).astype(np.float32)
    target = digits.target
    if subset != "all":
        train, test = train_test_split(
            np.arange(len(target)),
            test_size=test_size,
            random_state=random_state,
            stratify=target,
        )
        rows = train if subset == "train" else test
        data, target = data[rows], target[rows]
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data.reshape(-1, 8, 8),
        target=target,
        target_names=digits.target_names,
        DESCR=DESCR_HEADER + digits.DESCR,
    )
