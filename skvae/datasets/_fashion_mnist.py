"""Fashion-MNIST, read from its four standard IDX files on disk (never downloaded)."""

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

__all__ = ["DatasetNotFoundError", "load_fashion_mnist"]

# Where Debian's and Ubuntu's ``dataset-fashion-mnist`` package installs the files.
DEFAULT_FOLDER = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "SKVAE_DATA"
SUBFOLDER = "fashion-mnist"
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Type code of unsigned bytes in the third byte of an IDX magic number.
IDX_UBYTE = 0x08

DESCR = """\
Fashion-MNIST
-------------

Grayscale 28x28 images of Zalando's article pictures in 10 classes, meant as
a harder drop-in replacement for MNIST.

:Classes: 10 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt,
          Sneaker, Bag, Ankle boot)
:Samples per class: 6,000 training and 1,000 test images
:Samples total: 70,000 (60,000 training, 10,000 test)
:Dimensionality: 784 (28x28)
:Features: integers 0-255 (uint8); skvae's estimators scale uint8 by 1/255
:License: MIT

Han Xiao, Kashif Rasul and Roland Vollgraf, "Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, 2017.
https://github.com/zalandoresearch/fashion-mnist
"""


class DatasetNotFoundError(FileNotFoundError):
    """No searched folder holds the files of a data set.

    The message lists the folders searched and how to provide the files.
    skvae never downloads data, so this is what a missing data set raises.

    Examples
    --------
    >>> from skvae.datasets import DatasetNotFoundError, load_fashion_mnist
    >>> try:
    ...     images = load_fashion_mnist("/nonexistent", subset="test").images
    ... except DatasetNotFoundError as error:
    ...     images = None  # e.g. fall back to the digits, as the benchmark does
    """


def load_fashion_mnist(data_home=None, *, subset="train", return_X_y=False):
    """Load the Fashion-MNIST images and labels from local IDX files.

    Reads the four standard files ``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
    ``t10k-labels-idx1-ubyte.gz``. Nothing is downloaded; the first folder
    holding the files that ``subset`` needs is used, searching in order:

    1. ``data_home``, then its subfolder ``fashion-mnist``;
    2. the folder named by the ``SKVAE_DATA`` environment variable, then its
       subfolder ``fashion-mnist``;
    3. ``/usr/share/datasets/fashion-mnist``, where
       ``apt-get install dataset-fashion-mnist`` puts them on Debian and Ubuntu.

    =================   ==========================
    Classes                                     10
    Samples per class   6,000 train, 1,000 test
    Samples total       60,000 train, 10,000 test
    Dimensionality                   784 (28x28)
    Features            integers 0-255 (uint8)
    =================   ==========================

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the four ``.gz`` files (or a ``fashion-mnist``
        subfolder holding them). ``None`` searches only ``$SKVAE_DATA`` and
        the Debian location.
    subset : {"train", "test", "all"}, default="train"
        The official training set, the test set, or both (training images
        first).
    return_X_y : bool, default=False
        If True, return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the following attributes.

        data : ndarray of shape (n_samples, 784), dtype uint8
            The flattened images, one row per image.
        images : ndarray of shape (n_samples, 28, 28), dtype uint8
            The same pixels as ``data`` (a view of it), as images.
        target : ndarray of shape (n_samples,), dtype int64
            The class of each image, 0-9.
        target_names : ndarray of shape (10,), dtype str
            The class names, so ``target_names[target]`` names each image.
        DESCR : str
            The description of the data set.
        data_home : str
            The folder the files were read from.

    (data, target) : tuple if ``return_X_y`` is True
        The flattened uint8 images of shape (n_samples, 784) and the int64
        labels of shape (n_samples,).

    Raises
    ------
    DatasetNotFoundError
        If no searched folder holds the files; a subclass of
        :class:`FileNotFoundError` whose message lists the folders and the fix.
    ValueError
        If a file is not a valid gzip-compressed IDX file of the expected rank,
        or the images and labels disagree.

    See Also
    --------
    one_class_split : Build the one-class benchmark protocol from the subsets.

    Notes
    -----
    uint8 pixels are kept as they are: skvae's estimators scale uint8 input by
    1/255 themselves. Divide by 255 for other estimators.

    Examples
    --------
    >>> from skvae.datasets import load_fashion_mnist
    >>> train = load_fashion_mnist(subset="train")  # doctest: +SKIP
    >>> train.images.shape, train.images.dtype  # doctest: +SKIP
    ((60000, 28, 28), dtype('uint8'))
    >>> train.target_names[train.target[:3]]  # doctest: +SKIP
    array(['Ankle boot', 'T-shirt/top', 'T-shirt/top'], dtype='<U11')
    >>> X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    ... # doctest: +SKIP
    >>> X_test.shape  # doctest: +SKIP
    (10000, 784)
    """
    if subset not in ("train", "test", "all"):
        raise ValueError(
            "The 'subset' parameter of load_fashion_mnist must be a str among "
            f"{{'train', 'test', 'all'}}. Got {subset!r} instead."
        )
    parts = ("train", "test") if subset == "all" else (subset,)
    folder = _find_folder(data_home, [name for p in parts for name in FILES[p]])
    images, labels = zip(*(_read_part(folder, part) for part in parts), strict=True)
    images = images[0] if len(parts) == 1 else np.concatenate(images)
    labels = labels[0] if len(parts) == 1 else np.concatenate(labels)
    # An explicit width: -1 cannot be inferred when there are no images.
    data = images.reshape(len(images), math.prod(images.shape[1:]))
    if return_X_y:
        return data, labels
    return Bunch(
        data=data,
        images=images,
        target=labels,
        target_names=np.array(CLASS_NAMES),
        DESCR=DESCR,
        data_home=str(folder),
    )


def read_idx_ubyte(path, ndim):
    """Read a gzip-compressed IDX file of unsigned bytes into an array.

    An IDX file starts with a magic number (two zero bytes, the type code
    ``0x08`` for unsigned bytes, and the rank), then one big-endian 32-bit
    size per dimension, then the values in C order.

    Parameters
    ----------
    path : str or path-like
        The ``.gz`` file.
    ndim : int
        The expected rank: 3 for images ``(n, rows, cols)``, 1 for labels.

    Returns
    -------
    array : ndarray of dtype uint8 and rank ``ndim``
        The values, in a writable array of the shape given by the header.

    Raises
    ------
    ValueError
        If the file is not gzip, the magic number is not that of an IDX file
        of unsigned bytes of rank ``ndim``, or the number of values disagrees
        with the header.
    """
    try:
        with gzip.open(path, "rb") as f:
            magic = f.read(4)
            expected = bytes([0, 0, IDX_UBYTE, ndim])
            if magic != expected:
                raise ValueError(
                    f"{path} is not an IDX file of rank-{ndim} unsigned bytes: its "
                    f"magic number is 0x{magic.hex()}, expected 0x{expected.hex()}."
                )
            header = f.read(4 * ndim)
            # Read the rest at once rather than allocate from the header's sizes:
            # a corrupt header must give an error, not a huge allocation.
            body = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"{path} is not a valid gzip file: {exc}") from exc
    if len(header) != 4 * ndim:
        raise ValueError(f"{path} ends inside its IDX header.")
    shape = tuple(int(s) for s in np.frombuffer(header, dtype=">u4"))
    if len(body) != np.prod(shape, dtype=np.int64):
        raise ValueError(
            f"{path} has a header of shape {shape}, i.e. "
            f"{np.prod(shape, dtype=np.int64)} values, but holds {len(body)}."
        )
    # frombuffer over bytes is read-only; users expect to modify what they load.
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


def _read_part(folder, part):
    """Read the images and labels of ``part`` (``"train"`` or ``"test"``)."""
    images_file, labels_file = (folder / name for name in FILES[part])
    images = read_idx_ubyte(images_file, ndim=3)
    labels = read_idx_ubyte(labels_file, ndim=1).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(
            f"{images_file} holds {len(images)} images but {labels_file} holds "
            f"{len(labels)} labels; the files do not belong together."
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise ValueError(
            f"{labels_file} holds the label {labels.max()}; Fashion-MNIST "
            f"labels are 0-{len(CLASS_NAMES) - 1}."
        )
    return images, labels


def _candidate_folders(data_home):
    """Return the ``(folder, origin)`` pairs to search, in order."""
    candidates = []
    for root, origin in [(data_home, "data_home"), (os.environ.get(ENV_VAR), ENV_VAR)]:
        if root:  # None, or an empty environment variable
            root = Path(root).expanduser()
            candidates += [(root, origin), (root / SUBFOLDER, origin)]
    candidates.append((DEFAULT_FOLDER, "package dataset-fashion-mnist"))
    return candidates


def _find_folder(data_home, filenames):
    """Return the first candidate folder that holds all of ``filenames``."""
    searched = []
    for folder, origin in _candidate_folders(data_home):
        missing = [name for name in filenames if not (folder / name).is_file()]
        if not missing:
            return folder
        if not folder.is_dir():
            state = "does not exist"
        elif len(missing) == len(filenames):
            state = "holds none of them"
        else:
            state = "missing " + ", ".join(missing)
        searched.append(f"  {folder}  ({origin}: {state})")
    raise DatasetNotFoundError(
        "Fashion-MNIST was not found. skvae does not download data; it looked "
        f"for {', '.join(filenames)} in:\n" + "\n".join(searched) + "\nTo fix "
        "this, either install the files with 'sudo apt-get install "
        f"dataset-fashion-mnist' (Debian/Ubuntu, into {DEFAULT_FOLDER}), or put "
        f"the four files {', '.join(FILES['train'] + FILES['test'])} in a folder "
        f"and pass load_fashion_mnist(data_home=<folder>) or set the {ENV_VAR} "
        "environment variable to that folder."
    )
