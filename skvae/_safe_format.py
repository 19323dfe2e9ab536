"""Model files that load without running code: safetensors plus typed JSON.

A pickle runs whatever code its author put in it when it is loaded. This
format stores only data: the torch weights and every fitted array as
safetensors tensors, and everything else (the estimator's class and
parameters, fitted scalars and tuples, the score terms' structure, the
training history) as JSON in the file's metadata. Loading rebuilds the
estimator from that data:

- objects are created only from an allow-list of skvae classes
  (``ALLOWED_TYPES``), by setting their attributes, never by calling
  code the file names;
- the networks are rebuilt by the estimator's own ``_net_spec`` from its
  validated parameters, and the stored weights loaded into them;
- a SHA-256 checksum over the JSON and every tensor refuses a file changed
  after it was written.
"""

import hashlib
import json
import warnings

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_bytes
from skorch.history import History

FORMAT = "skvae-safetensors"
# 2: the transformation classifier scores 4 of a square image's 8 copies;
# a detector's version-1 file holds statistics of every copy and is refused.
FORMAT_VERSION = 2
# The safetensors metadata key holding the JSON document.
DOCUMENT_KEY = "skvae"


def _allowed_types():
    """Return the classes a file may name: the estimators and the score terms."""
    from ._classifier import VAEClassifier
    from ._dual_transformer import DualVAETransformer
    from ._outlier import VAEOutlierDetector
    from ._transformer import VAETransformer
    from .scoring._neighbors import NeighborDistance
    from .terms import MahalanobisScore, NeighborScore, OutputScore, StandardizedSum

    classes = (
        VAEOutlierDetector,
        VAETransformer,
        VAEClassifier,
        DualVAETransformer,
        StandardizedSum,
        OutputScore,
        MahalanobisScore,
        NeighborScore,
        NeighborDistance,
    )
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes}


def write(estimator, path, versions, metadata, open_file):
    """Write ``estimator`` to ``path`` in the safe format.

    ``open_file(path)`` opens the destination for writing (the atomic
    writer of :mod:`skvae._persistence`).
    """
    from .net import DataParallelNet

    allowed = _allowed_types()
    arrays = {}
    params = estimator.get_params(deep=False)
    nets = {
        name: value
        for name, value in vars(estimator).items()
        if isinstance(value, DataParallelNet)
    }
    fitted = {
        name: value
        for name, value in vars(estimator).items()
        if name not in params and name not in nets
    }
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": versions,
        "estimator": _type_name(estimator, allowed, "the estimator"),
        "params": _encode(params, arrays, allowed, "params"),
        "fitted": _encode(fitted, arrays, allowed, "fitted"),
        "nets": {name: _encode_net(name, net, arrays) for name, net in nets.items()},
        "metadata": _encode(dict(metadata or {}), arrays, allowed, "metadata"),
    }
    document["sha256"] = _checksum(document, arrays)
    blob = safetensors_bytes(arrays, metadata={DOCUMENT_KEY: json.dumps(document)})
    with open_file(path) as f:
        f.write(blob)


def _type_name(obj, allowed, where):
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if name not in allowed:
        raise TypeError(
            f"{where} is a {name}, which the safe format cannot store (it "
            "stores skvae's own estimators and score terms only). Save with "
            "skvae.save(..., format='pickle'), and load such files only from "
            "sources you trust."
        )
    return name


def _encode(value, arrays, allowed, where):
    """Encode ``value`` as JSON data; its arrays go to ``arrays``, named."""
    if type(value) in (bool, int, float, str, type(None)):
        return value
    if isinstance(value, np.generic):
        return {"__scalar__": value.dtype.str, "value": value.item()}
    if isinstance(value, (np.ndarray, torch.Tensor)):
        array = (
            value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        )
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"{where} is an array of dtype {array.dtype}, which the safe "
                "format cannot store; save with format='pickle'."
            )
        name = f"array/{len(arrays)}"
        arrays[name] = np.ascontiguousarray(array)
        kind = "__tensor__" if isinstance(value, torch.Tensor) else "__array__"
        return {kind: name}
    if isinstance(value, tuple):
        return {
            "__tuple__": [
                _encode(v, arrays, allowed, f"{where}[{i}]")
                for i, v in enumerate(value)
            ]
        }
    if isinstance(value, list):
        return [
            _encode(v, arrays, allowed, f"{where}[{i}]") for i, v in enumerate(value)
        ]
    if isinstance(value, dict):
        return {
            "__dict__": [
                [
                    _encode(k, arrays, allowed, where),
                    _encode(v, arrays, allowed, f"{where}[{k!r}]"),
                ]
                for k, v in value.items()
            ]
        }
    name = _type_name(value, allowed, where)
    return {"__object__": name, "state": _encode(vars(value), arrays, allowed, where)}


def _encode_net(name, net, arrays):
    """Encode a fitted skorch net as its module's weights, history and flags."""
    prefix = f"{name}/"
    for key, tensor in net.module_.state_dict().items():
        arrays[prefix + key] = np.ascontiguousarray(tensor.detach().cpu().numpy())
    return {
        "weights": prefix,
        "history": _encode(list(net.history_), arrays, {}, f"{name}.history_"),
        "interrupted_": bool(getattr(net, "interrupted_", False)),
    }


def _checksum(document, arrays):
    """SHA-256 over the JSON document (without the checksum) and every tensor."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode())
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def is_safe_file(path):
    """Whether ``path`` starts like a safetensors file (a JSON header's length)."""
    with open(path, "rb") as f:
        start = f.read(9)
    return len(start) == 9 and start[8:9] == b"{"


def read(path, check_version):
    """Load the estimator and the user metadata of a safe file at ``path``.

    ``check_version(saved_version)`` raises for an incompatible version.
    Raises ValueError, naming the file, for a damaged or changed file or a
    type the format does not allow.
    """
    document, arrays = _read_parts(path)
    if document.get("format") != FORMAT:
        raise ValueError(
            f"{path} is a safetensors file, but not one written by skvae.save."
        )
    saved = str(document.get("versions", {}).get("skvae", "unknown"))
    check_version(saved)
    stored_checksum = document.pop("sha256", None)
    if stored_checksum != _checksum(document, arrays):
        raise ValueError(
            f"{path} (written by skvae {saved}) was changed after it was written: "
            "its checksum does not match its content. It is damaged or was "
            "tampered with; get the file again from its source."
        )
    try:
        return _rebuild(document, arrays), _decode(document["metadata"], arrays, {})
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"{path} (written by skvae {saved}) cannot be loaded: {error}"
        ) from error


def _read_parts(path):
    """Return the JSON document and the tensors of a safetensors file."""
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
        return json.loads(metadata[DOCUMENT_KEY]), arrays
    except (SafetensorError, KeyError, ValueError, OSError) as error:
        raise ValueError(
            f"{path} is damaged: it cannot be read as a model file written by "
            f"skvae.save ({type(error).__name__}: {error}). Copy or save the "
            "model again."
        ) from error


def _rebuild(document, arrays):
    """Return the estimator of ``document``, with its fitted state and networks."""
    allowed = _allowed_types()
    cls = _allowed(document["estimator"], allowed)
    _check_format_version(document)
    params = _decode(document["params"], arrays, allowed)
    estimator = cls(**{**cls._params_of_older_models, **params})
    estimator._validate_params()
    estimator.__dict__.update(_decode(document["fitted"], arrays, allowed))
    for name, net in document["nets"].items():
        setattr(estimator, name, _rebuild_net(estimator, name, net, arrays))
    return estimator


def _rebuild_net(estimator, name, stored, arrays):
    """Build a fitted skorch net from the estimator's spec and the stored weights."""
    from .utils._torch import seeded

    if str(estimator.device).startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"The model was saved with device={estimator.device!r}, but no CUDA "
            "device is available; it is loaded on the CPU.",
            UserWarning,
            stacklevel=4,
        )
        estimator.device = "cpu"
    spec = estimator._net_spec(name)
    # Building the module draws initial weights; they are replaced below and
    # must not move the caller's random streams.
    with seeded(0, estimator.device):
        net = estimator._build_net(spec, seed=0, n_samples=1)
        net.initialize()
    prefix = stored["weights"]
    weights = {
        key[len(prefix) :]: torch.from_numpy(array.copy())
        for key, array in arrays.items()
        if key.startswith(prefix)
    }
    net.module_.load_state_dict(weights, strict=True)
    net.module_.to(estimator.device).eval()
    net.history_ = History(_decode(stored["history"], arrays, {}))
    net.interrupted_ = bool(stored["interrupted_"])
    return net


def _check_format_version(document):
    """Refuse a file whose fitted state the installed networks would misread."""
    version = document.get("format_version", 1)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"the file is in model-file format {version}, newer than this "
            f"skvae's {FORMAT_VERSION}; upgrade skvae to load it"
        )
    if version < 2 and "transformation_net_" in document["nets"]:
        raise ValueError(
            "the detector was saved by an earlier skvae development version "
            "whose transformation classifier scored every transformed copy of "
            "an image (8 of a square one); the installed version scores 4, "
            "which its stored score statistics do not fit. Fit the detector "
            "again and save it"
        )


def _allowed(name, allowed):
    if name not in allowed:
        raise ValueError(
            f"the file names the type {name!r}, which skvae does not load from "
            "a safe file (only its estimators and score terms); refusing it."
        )
    return allowed[name]


def _decode(value, arrays, allowed):
    """Undo :func:`_encode`."""
    if isinstance(value, list):
        return [_decode(v, arrays, allowed) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return arrays[value["__array__"]].copy()
    if "__tensor__" in value:
        return torch.from_numpy(arrays[value["__tensor__"]].copy())
    if "__scalar__" in value:
        return np.dtype(value["__scalar__"]).type(value["value"])
    if "__tuple__" in value:
        return tuple(_decode(v, arrays, allowed) for v in value["__tuple__"])
    if "__dict__" in value:
        return {
            _decode(k, arrays, allowed): _decode(v, arrays, allowed)
            for k, v in value["__dict__"]
        }
    if "__object__" in value:
        cls = _allowed(value["__object__"], allowed)
        obj = cls.__new__(cls)
        obj.__dict__.update(_decode(value["state"], arrays, allowed))
        return obj
    raise ValueError(f"unknown entry {sorted(value)} in the file's data")
