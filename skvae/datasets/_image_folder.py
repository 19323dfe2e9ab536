"""Images from files in a folder (PNG, JPEG, BMP, TIFF), read with Pillow."""

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from sklearn.utils import Bunch

from .._persistence import atomic_write

__all__ = ["IMAGE_EXTENSIONS", "list_image_files", "load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FIT_MODES = ("resize", "center_crop")
COLORS = {"grayscale": "L", "rgb": "RGB"}
# Bumped when the cache's layout changes, so that an old cache is rebuilt.
CACHE_VERSION = 1


def list_image_files(path):
    """Return the image files under folder ``path``, recursively, sorted.

    Parameters
    ----------
    path : str or path-like
        A folder.

    Returns
    -------
    files : list of pathlib.Path
        Files whose suffix (any case) is in ``IMAGE_EXTENSIONS``, sorted by
        their path relative to ``path``; hidden files and folders (name
        starting with ".") are left out.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist; NotADirectoryError if it is a file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skvae.datasets import list_image_files
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("b.PNG", "a/c.jpg", "notes.txt", ".d.png"):
    ...     (folder / name).parent.mkdir(exist_ok=True)
    ...     (folder / name).touch()
    >>> [file.relative_to(folder).as_posix() for file in list_image_files(folder)]
    ['a/c.jpg', 'b.PNG']
    """
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"Image folder {folder} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is a file, not a folder of images.")
    return sorted(
        file
        for file in folder.rglob("*")
        if file.suffix.lower() in IMAGE_EXTENSIONS
        and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(folder).parts)
    )


def load_image_folder(
    path,
    *,
    size=None,
    fit="resize",
    color="grayscale",
    labels=False,
    on_error="raise",
    cache=None,
    verbose=False,
):
    """Load the images of a folder (and its sub-folders) as one uint8 array.

    Reads PNG, JPEG, BMP and TIFF files with Pillow, brings each to one
    size and color mode, and stacks them in the channels-first layout the
    skvae estimators take (their uint8 input is scaled by 1/255). Nothing
    is downloaded.

    Parameters
    ----------
    path : str or path-like
        The folder. Files are found recursively and taken in the order of
        their sorted relative paths (see :func:`list_image_files`).
    size : int, (height, width) or None, default=None
        Size of every returned image. None keeps the size of the images,
        which must then all be the same. An int is a square side.
    fit : {"resize", "center_crop"}, default="resize"
        How an image of another size is brought to ``size``. ``"resize"``
        scales it to exactly ``size`` (the aspect ratio changes if it
        differs). ``"center_crop"`` keeps the aspect ratio: it scales the
        image so that it covers ``size``, then cuts the centre out.
        Both resample with Pillow's bilinear filter (with antialiasing).
    color : {"grayscale", "rgb"}, default="grayscale"
        Grayscale images come as ``(n, H, W)``, RGB ones as ``(n, 3, H, W)``.
        Images in another mode (palette, RGBA, 16-bit) are converted.
    labels : bool, default=False
        Take each file's first-level sub-folder as its label (one folder per
        class, as torchvision's ``ImageFolder``); then every image must sit
        in a sub-folder.
    on_error : {"raise", "warn"}, default="raise"
        What to do with a file Pillow cannot read (damaged, truncated, not
        an image): raise a ``ValueError`` naming it, or skip it with a
        warning that names every skipped file.
    cache : str, path-like or None, default=None
        A ``.npy`` file to keep the images in. It is built one image at a
        time and returned as a read-only ``numpy.memmap``, so that a folder
        larger than memory can be loaded, and fitting on it streams. It is
        reused while the folder's files (names, sizes, modification times)
        and the arguments stay the same, and rebuilt otherwise.
    verbose : bool, default=False
        Show a progress bar (on stderr) while the images are read.

    Returns
    -------
    data : sklearn.utils.Bunch
        With ``images`` (uint8 ndarray or memmap, ``(n, H, W)`` or
        ``(n, 3, H, W)``), ``filenames`` (ndarray of str, paths relative to
        ``path``), and with ``labels=True`` also ``target`` (int ndarray)
        and ``target_names`` (the sorted sub-folder names).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the folder holds no image file, if images differ in size while
        ``size`` is None, if a file cannot be read (with
        ``on_error="raise"``), or if an image lies outside any sub-folder
        with ``labels=True``. The message names the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skvae.datasets import load_image_folder
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("good/a.png", "good/b.png", "defect/c.png"):
    ...     file = folder / name
    ...     file.parent.mkdir(exist_ok=True)
    ...     Image.fromarray(np.zeros((30, 40), np.uint8)).save(file)
    >>> data = load_image_folder(folder, size=16, fit="center_crop", labels=True)
    >>> data.images.shape, data.images.dtype
    ((3, 16, 16), dtype('uint8'))
    >>> data.filenames.tolist(), data.target.tolist(), data.target_names.tolist()
    (['defect/c.png', 'good/a.png', 'good/b.png'], [0, 1, 1], ['defect', 'good'])
    """
    _check_choice("fit", fit, FIT_MODES)
    _check_choice("color", color, tuple(COLORS))
    _check_choice("on_error", on_error, ("raise", "warn"))
    folder = Path(path)
    files = list_image_files(folder)
    if not files:
        raise ValueError(
            f"{folder} holds no image file ({', '.join(IMAGE_EXTENSIONS)}, "
            "searched recursively). Point to the folder that holds the images."
        )
    size = _as_size(size)
    relative = [file.relative_to(folder).as_posix() for file in files]
    target, target_names = _folder_labels(relative) if labels else (None, None)
    settings = {"size": size, "fit": fit, "color": color, "on_error": on_error}
    if cache is None:
        images, kept = _read_all(files, settings, verbose)
    else:
        images, kept = _cached(Path(cache), files, relative, settings, verbose)
    data = Bunch(images=images, filenames=np.asarray(relative)[kept])
    if labels:
        data.target = target[kept]
        data.target_names = np.asarray(target_names)
    return data


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"{name}={value!r} must be one of {', '.join(map(repr, choices))}."
        )


def _as_size(size):
    """``size`` as a (height, width) tuple of positive ints, or None."""
    if size is None:
        return None
    pair = (size, size) if np.isscalar(size) else tuple(size)
    if len(pair) != 2 or not all(int(side) == side and side > 0 for side in pair):
        raise ValueError(
            f"size={size!r} must be a positive int (a square side) or a "
            "(height, width) pair of them, or None to keep the images' size."
        )
    return tuple(int(side) for side in pair)


def _folder_labels(relative):
    """Each file's first-level sub-folder as an index into the sorted names."""
    outside = [name for name in relative if "/" not in name]
    if outside:
        raise ValueError(
            f"labels=True takes each image's sub-folder as its label, but "
            f"{len(outside)} image(s) lie in the folder itself (e.g. {outside[0]}). "
            "Move them into a sub-folder per class, or pass labels=False."
        )
    folders = [name.split("/", 1)[0] for name in relative]
    names = sorted(set(folders))
    lookup = {name: index for index, name in enumerate(names)}
    return np.array([lookup[folder] for folder in folders]), names


def _read_all(files, settings, verbose):
    """Read ``files`` into one in-memory array; return it and the kept positions."""
    images, kept, failed = None, [], []
    for position, image in _readable_images(files, settings, failed, verbose):
        if images is None:
            images = np.empty((len(files), *image.shape), dtype=np.uint8)
        images[len(kept)] = image
        kept.append(position)
    _check_some_read(files, kept, failed)
    if len(kept) < len(files):
        images = images[: len(kept)].copy()
    return images, np.asarray(kept, dtype=np.intp)


def _readable_images(files, settings, failed, verbose):
    """Yield ``(position, image)`` of each readable file, all of one shape.

    Files that cannot be read raise, or with ``on_error="warn"`` are
    appended to ``failed`` (with the reason) and skipped.
    """
    shape = None
    for position, file in enumerate(_progress(files, verbose)):
        try:
            image = _read_image(file, settings)
        except ValueError as error:
            if settings["on_error"] == "raise":
                raise
            failed.append(f"{file} ({error.__cause__ or error})")
            continue
        if shape is None:
            shape = image.shape
        elif image.shape != shape:
            raise ValueError(
                f"{file} is {_describe(image.shape)} but {files[0]} and the "
                f"images before it are {_describe(shape)}. Pass size=(height, "
                "width) to bring every image to one size."
            )
        yield position, image


def _progress(files, verbose):
    """``files``, with a progress bar on stderr while they are read if ``verbose``."""
    if not verbose:
        return files
    from tqdm.auto import tqdm

    return tqdm(files, desc="reading images", unit="image")


def _describe(shape):
    height, width = shape[-2:]
    return f"{height}x{width} (height x width)"


def _check_some_read(files, kept, failed):
    """Warn about skipped files; raise if none could be read."""
    if not failed:
        return
    if not kept:
        raise ValueError(
            f"None of the {len(files)} image files could be read; the first: "
            f"{failed[0]}."
        )
    warnings.warn(
        f"Skipped {len(failed)} of {len(files)} image files that could not be "
        "read: " + "; ".join(failed),
        UserWarning,
        stacklevel=4,
    )


def _read_image(file, settings):
    """One file as uint8 ``(H, W)`` or ``(3, H, W)``; ValueError names a bad file."""
    try:
        with Image.open(file) as image:
            image = _to_color(image, COLORS[settings["color"]])
            image = _to_size(image, settings["size"], settings["fit"])
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise ValueError(
            f"{file} cannot be read as an image ({type(error).__name__}: "
            f"{error}); it may be damaged or truncated. Replace or remove it, "
            'or pass on_error="warn" to skip such files.'
        ) from error
    return array if array.ndim == 2 else array.transpose(2, 0, 1)


def _to_color(image, mode):
    """``image`` in Pillow ``mode`` ("L" or "RGB"); 16-bit gray keeps its range."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        # convert() would clip 16-bit values at 255; keep their top 8 bits.
        high_bits = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
        image = Image.fromarray(high_bits)
    return image if image.mode == mode else image.convert(mode)


def _to_size(image, size, fit):
    """``image`` at ``size`` (height, width) by ``fit``; unchanged for None."""
    if size is None or image.size == (size[1], size[0]):
        return image
    width_height = (size[1], size[0])
    if fit == "resize":
        return image.resize(width_height, Image.Resampling.BILINEAR)
    return ImageOps.fit(image, width_height, method=Image.Resampling.BILINEAR)


def _cached(cache, files, relative, settings, verbose):
    """Return the images from the ``.npy`` cache, rebuilt unless it fits the folder."""
    size = settings["size"]
    # Lists, not tuples, as JSON gives them back, to compare with the index.
    description = {
        "version": CACHE_VERSION,
        "settings": {**settings, "size": list(size) if size else None},
        "files": [
            [name, stat.st_size, stat.st_mtime_ns]
            for name, stat in zip(relative, map(os.stat, files), strict=True)
        ],
    }
    index_file = cache.with_name(cache.name + ".json")
    kept = _matching_cache(cache, index_file, description)
    if kept is None:
        # The old index goes first: a build killed midway must not leave an
        # index that vouches for another build's images.
        index_file.unlink(missing_ok=True)
        kept = _build_cache(cache, files, settings, verbose)
        with atomic_write(index_file) as f:
            f.write(json.dumps({**description, "kept": kept.tolist()}).encode())
    return np.load(cache, mmap_mode="r"), kept


def _matching_cache(cache, index_file, description):
    """Return the kept positions of a cache of the same files, or None."""
    try:
        index = json.loads(index_file.read_text())
    except (OSError, ValueError):
        return None
    stored = {key: index.get(key) for key in description}
    if stored != description or not cache.exists():
        return None
    return np.asarray(index["kept"], dtype=np.intp)


def _build_cache(cache, files, settings, verbose):
    """Write the readable images to ``cache`` one at a time; return their positions.

    Memory stays flat whatever the number of images: each is written to a
    memory-mapped ``.npy`` file as it is read. The file is built beside
    ``cache`` and moved there when complete.
    """
    handle, temporary = tempfile.mkstemp(
        dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp"
    )
    os.close(handle)
    try:
        images, kept, failed = None, [], []
        for position, image in _readable_images(files, settings, failed, verbose):
            if images is None:
                images = np.lib.format.open_memmap(
                    temporary,
                    mode="w+",
                    dtype=np.uint8,
                    shape=(len(files), *image.shape),
                )
            images[len(kept)] = image
            kept.append(position)
        _check_some_read(files, kept, failed)
        if len(kept) < len(files):
            _shrink(images, len(kept), temporary)
        images.flush()
        del images
        os.replace(temporary, cache)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return np.asarray(kept, dtype=np.intp)


def _shrink(images, n_rows, path, chunk_rows=4096):
    """Rewrite the ``.npy`` at ``path`` with its first ``n_rows`` images."""
    smaller = path + ".rows"
    try:
        rows = np.lib.format.open_memmap(
            smaller, mode="w+", dtype=np.uint8, shape=(n_rows, *images.shape[1:])
        )
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            rows[start:stop] = images[start:stop]
        rows.flush()
        del rows
        os.replace(smaller, path)
    finally:
        Path(smaller).unlink(missing_ok=True)
