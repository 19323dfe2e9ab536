"""Save and load fitted estimators with a version check.

A bare pickle of a fitted model breaks silently or obscurely across library
versions (PyOD #519). :func:`save` wraps the estimator in an envelope that
records the versions it was saved with; :func:`load` refuses a file from an
incompatible skvae version with a message that says what to do.
"""

import contextlib
import os
import pickle
import platform
import stat
import tempfile
import warnings
from pathlib import Path

import sklearn
import skorch
import torch

from . import _safe_format
from ._version import __version__

FORMAT = "skvae-estimator"


def save(estimator, path, *, metadata=None, format="safetensors"):
    """Save a fitted skvae estimator to ``path``.

    By default the file is safe to share: ``format="safetensors"`` stores
    the torch weights and every fitted array as safetensors tensors and the
    rest (the class, parameters, fitted values, score terms, history) as
    JSON, so :func:`load` rebuilds the estimator from data and runs no code
    from the file. ``format="pickle"`` stores the pickled estimator instead
    (needed for objects of your own inside it, such as a custom score term;
    load such files only from sources you trust). Both record the skvae,
    scikit-learn, skorch, torch and Python versions. The save is atomic:
    the file is written beside ``path`` and moved over it only when
    complete, so an interrupted save never leaves a damaged file (an
    existing model at ``path`` stays whole).
    A model trained on a GPU loads on a CPU-only machine (skorch maps the
    weights to the CPU and warns).

    Parameters
    ----------
    estimator : estimator
        A skvae estimator, usually fitted.
    path : str or path-like
        Destination file.
    metadata : dict or None, default=None
        Data of your own to keep with the model (JSON-like: str, numbers,
        lists, dicts), such as how the inputs were prepared; the command
        line stores how it read the images. ``load(path,
        with_metadata=True)`` returns it.
    format : {"safetensors", "pickle"}, default="safetensors"
        How the estimator is stored (see above); :func:`load` reads both.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        With ``format="safetensors"``, if the estimator holds an object the
        safe format cannot store (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> import skvae
    >>> from skvae import VAETransformer
    >>> X = np.random.RandomState(0).normal(size=(40, 5))
    >>> vae = VAETransformer(latent_dim=2, max_epochs=2, random_state=0).fit(X)
    >>> path = skvae.save(vae, "vae.skvae")
    >>> np.array_equal(skvae.load(path).transform(X), vae.transform(X))
    True
    """
    if format == "safetensors":
        _safe_format.write(estimator, path, _versions(), metadata, atomic_write)
        return Path(path)
    if format != "pickle":
        raise ValueError(f"format={format!r} must be 'safetensors' or 'pickle'.")
    envelope = {
        "format": FORMAT,
        "versions": _versions(),
        "estimator": estimator,
        "metadata": dict(metadata or {}),
    }
    with atomic_write(path) as f:
        pickle.dump(envelope, f, protocol=pickle.HIGHEST_PROTOCOL)
    return Path(path)


@contextlib.contextmanager
def atomic_write(path):
    """Open a temporary file beside ``path`` for writing; move it there at the end.

    A save killed at any moment leaves ``path`` as it was (the previous
    model, or no file): the bytes go to a temporary file in the same folder,
    are flushed to disk, and only then replace ``path`` in one step
    (``os.replace``). On an error the temporary file is removed.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        # mkstemp's file is private (0600); a saved model gets the mode of
        # the file it replaces, or of any new file.
        os.chmod(temporary, _file_mode(path))
        with os.fdopen(handle, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_folder(path.parent)


def _file_mode(path):
    """Permission bits for ``path``: its own if it exists, else the umask's."""
    with contextlib.suppress(FileNotFoundError):
        return stat.S_IMODE(os.stat(path).st_mode)
    # The only portable way to read the umask is to set it (as pip does).
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder):
    """Make the rename itself durable, where the platform allows it."""
    if os.name != "posix":
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def load(path, *, with_metadata=False):
    """Load an estimator saved with :func:`save`.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save`. A safetensors file (the default
        format) loads without running any code from it; a pickle file, like
        any pickle, can run code: load those only from sources you trust.
    with_metadata : bool, default=False
        Also return the ``metadata`` the file was saved with.

    Returns
    -------
    estimator : estimator
        The saved estimator.
    metadata : dict
        Only with ``with_metadata=True``: the saved ``metadata`` (empty if
        none was given).

    Raises
    ------
    ValueError
        If the file is empty, truncated or damaged, was not written by
        :func:`save`, or was written by an skvae version whose major.minor
        differs from the installed one. The message names the file.

    Examples
    --------
    >>> import numpy as np
    >>> import skvae
    >>> from skvae import VAEOutlierDetector
    >>> X = np.random.RandomState(0).normal(size=(40, 5))
    >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
    >>> loaded = skvae.load(skvae.save(det, "detector.skvae"))
    >>> np.array_equal(loaded.predict(X), det.predict(X))
    True
    """
    if _safe_format.is_safe_file(path):
        estimator, metadata = _safe_format.read(
            path, lambda saved: _check_version(path, saved)
        )
        return (estimator, metadata) if with_metadata else estimator
    envelope = _read_envelope(path)
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a file written by skvae.save; load plain pickles "
            "with pickle.load, or re-save the model with skvae.save."
        )
    _check_version(path, envelope["versions"]["skvae"])
    if with_metadata:
        return envelope["estimator"], envelope.get("metadata", {})
    return envelope["estimator"]


def _check_version(path, saved):
    """Raise if the skvae version that wrote ``path`` is incompatible."""
    if not _compatible(saved, __version__):
        raise ValueError(
            f"{path} was saved with skvae {saved}, which is incompatible with "
            f"the installed skvae {__version__} (the major.minor versions "
            f"differ). Install skvae=={saved} to use it, or refit the model "
            "with this version and save it again."
        )


def _read_envelope(path):
    """Unpickle ``path``; a damaged file raises ValueError naming it."""
    with open(path, "rb") as f, warnings.catch_warnings():
        # The envelope's version check says it better.
        warnings.simplefilter("ignore", InconsistentVersionWarning)
        try:
            return pickle.load(f)
        except (
            EOFError,
            pickle.UnpicklingError,
            AttributeError,
            ImportError,
            IndexError,
            TypeError,
            ValueError,
            RuntimeError,
        ) as error:
            size = os.path.getsize(path)
            state = "is empty" if not size else f"is damaged ({size} bytes)"
            raise ValueError(
                f"{path} {state}: it cannot be read as a file written by "
                f"skvae.save ({type(error).__name__}: {error}). It may be "
                "truncated by an interrupted copy or download, or another "
                "kind of file; copy or save the model again."
            ) from error


class InconsistentVersionWarning(UserWarning):
    """An estimator was unpickled by an skvae version it was not pickled with.

    Like scikit-learn's warning of the same name: the fitted state may not
    mean the same thing in the installed version.

    Examples
    --------
    Turn it into an error where a silent version mismatch is not acceptable:

    >>> import warnings
    >>> from skvae import InconsistentVersionWarning
    >>> warnings.simplefilter("error", InconsistentVersionWarning)
    >>> warnings.resetwarnings()
    """


def warn_if_incompatible(estimator_name, saved_version):
    """Warn when a pickled estimator comes from another skvae major.minor."""
    if not _compatible(saved_version, __version__):
        warnings.warn(
            f"This {estimator_name} was pickled with skvae {saved_version} and "
            f"is unpickled with skvae {__version__}; its fitted state may be "
            f"invalid. Install skvae=={saved_version} to use it, or refit it.",
            InconsistentVersionWarning,
            stacklevel=3,
        )


def _versions():
    return {
        "skvae": __version__,
        "sklearn": sklearn.__version__,
        "skorch": skorch.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _compatible(saved, installed):
    """Tell whether two versions share major.minor (the fitted-state layout)."""
    return saved.split(".")[:2] == installed.split(".")[:2]
