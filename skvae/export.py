"""Export a fitted detector's scorer to ONNX or TorchScript, to serve without skvae.

The exported graph computes what ``VAEOutlierDetector.score_samples``
computes for the detector's ``score_type`` (by default ``"auto"``): the
networks' forward passes and the score's fitted statistics (latent Gaussian,
nearest-neighbour training features, standardisation), baked in as
constants. It takes float32 samples of the shape the detector was fitted on,
``(n, *sample_shape)`` (e.g. ``(n, 28, 28)``), already scaled as the model
saw them (uint8 images divided by 255), and returns float64 scores, higher =
more normal, equal to ``score_samples`` within float rounding (the tests check
1e-5). Subtract ``detector.offset_`` for ``decision_function``.

>>> import numpy as np
>>> from skvae import VAEOutlierDetector
>>> from skvae.export import export_onnx
>>> X = np.random.RandomState(0).rand(64, 8, 8).astype(np.float32)
>>> detector = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
>>> export_onnx(detector, "detector.onnx")  # doctest: +SKIP

and in any process, without skvae or torch::

    import onnxruntime
    session = onnxruntime.InferenceSession("detector.onnx")
    scores = session.run(None, {"x": X})[0]

ONNX needs ``pip install "skvae[export]"`` (onnx, onnxscript, onnxruntime).
TorchScript is deprecated by PyTorch in favour of ``torch.export``; it is
written with ``torch.jit.trace`` and loads with ``torch.jit.load``.
"""

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._outlier import NEIGHBOR_FEATURES, VAEOutlierDetector
from .scoring import batch_score_outputs, latent_noise
from .scoring._neighbors import NEIGHBOR_MARGIN
from .utils._sklearn import check_is_fitted

__all__ = ["DetectorScorer", "export_onnx", "export_torchscript", "scorer_module"]


class _Mahalanobis(nn.Module):
    """Minus the Mahalanobis distance to a fitted Gaussian, in float64."""

    def __init__(self, mean, covariance):
        super().__init__()
        precision = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))
        self.register_buffer("precision", torch.as_tensor(precision))

    def forward(self, codes):
        centred = codes.double() - self.mean
        squared = ((centred @ self.precision) * centred).sum(dim=1)
        return -torch.sqrt(torch.clamp(squared, min=0.0))


class _NeighborDistance(nn.Module):
    """:class:`skvae.scoring.NeighborDistance`'s score as torch operations.

    The same steps: standardise in float64, round to float32, pick candidate
    neighbours by a matrix product, recompute their distances exactly in
    float64 and leave out identical points. One difference: a row with more
    identical training points than candidates (``n_neighbors + 8``) scores
    0 here, where skvae searches all training points.
    """

    def __init__(self, neighbors):
        super().__init__()
        self.n_neighbors = neighbors.n_neighbors
        # float32, as NeighborDistance keeps them: half the file size.
        points = torch.as_tensor(neighbors.points_)
        self.register_buffer("mean", torch.as_tensor(neighbors.mean_))
        self.register_buffer("scale", torch.as_tensor(neighbors.scale_))
        self.register_buffer("points", points)
        self.register_buffer("squared_norms", (points.double() ** 2).sum(dim=1))
        self.n_candidates = min(len(points), self.n_neighbors + NEIGHBOR_MARGIN)

    def forward(self, features):
        rows = ((features.double() - self.mean) / self.scale).float().double()
        points = self.points.double()
        approximate = self.squared_norms - 2 * rows @ points.T
        candidates = approximate.topk(self.n_candidates, dim=1, largest=False).indices
        differences = points[candidates] - rows[:, None, :]
        squared = (differences**2).sum(dim=2)
        squared = torch.where(squared > 0, squared, torch.full_like(squared, np.inf))
        nearest = squared.topk(
            min(self.n_neighbors, self.n_candidates), dim=1, largest=False
        ).values
        found = torch.isfinite(nearest)
        distances = torch.sqrt(torch.where(found, nearest, torch.zeros_like(nearest)))
        total = torch.where(found, distances, torch.zeros_like(distances)).sum(dim=1)
        counts = found.sum(dim=1).double()
        return -total / torch.clamp(counts, min=1.0)


class DetectorScorer(nn.Module):
    """A fitted detector's ``score_samples`` as one torch module.

    Build it with :func:`scorer_module`. ``forward`` takes float32 samples
    of shape ``(n, *sample_shape)`` and returns float64 scores of shape
    ``(n,)``.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector; its ``score_type`` decides what is computed.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.export import DetectorScorer
    >>> X = np.random.RandomState(0).normal(size=(40, 5)).astype(np.float32)
    >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
    >>> with torch.no_grad():
    ...     scores = DetectorScorer(det)(torch.as_tensor(X)).numpy()
    >>> bool(np.allclose(scores, det.score_samples(X)))
    True
    """

    def __init__(self, detector):
        super().__init__()
        self.vae = detector.net_.module_
        classifier = detector.transformation_net_
        self.parts = tuple(detector._score_parts(detector.score_type))
        needs_classifier = any(part.startswith("transformation") for part in self.parts)
        self.classifier = (
            classifier.module_ if classifier is not None and needs_classifier else None
        )
        self.input_shape = tuple(detector.input_shape_)
        noise = None
        if {"iwae", "reconstruction_probability"} & set(self.parts):
            noise = latent_noise(
                detector.n_samples, detector.latent_dim, detector._noise_seed
            )
        self.register_buffer("noise", noise)
        self.mahalanobis = _Mahalanobis(
            detector.latent_mean_, detector.latent_covariance_
        )
        self.neighbors = nn.ModuleDict(
            {
                name: _NeighborDistance(detector._neighbors[name])
                for name in NEIGHBOR_FEATURES
                if name in self.parts
            }
        )
        self.standardization = None
        if len(self.parts) > 1:
            moments = [detector._standardization[part] for part in self.parts]
            self.standardization = torch.tensor(moments, dtype=torch.float64)

    def forward(self, x):
        """Scores of float32 samples ``x`` of shape ``(n, *sample_shape)``."""
        x = x.reshape(-1, *self.input_shape)
        outputs = batch_score_outputs(
            self.vae, x, noise=self.noise, transformation_module=self.classifier
        )
        scores = [self._part(part, outputs) for part in self.parts]
        if self.standardization is None:
            return scores[0]
        mean, std = self.standardization[:, 0], self.standardization[:, 1]
        return sum((score - mean[i]) / std[i] for i, score in enumerate(scores))

    def _part(self, part, outputs):
        if part == "latent_mahalanobis":
            return self.mahalanobis(outputs["latent_means"])
        if part in self.neighbors:
            return self.neighbors[part](outputs[NEIGHBOR_FEATURES[part]])
        return outputs[part].double()


def scorer_module(detector):
    """Return the fitted ``detector``'s ``score_samples`` as a torch module.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector; its current ``score_type`` is the one exported.

    Returns
    -------
    scorer : DetectorScorer
        In eval mode, on the CPU; ``scorer(x)`` with ``x`` a float32 tensor
        of shape ``(n, *sample_shape)`` returns the float64 scores.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.export import scorer_module
    >>> X = np.random.RandomState(0).normal(size=(40, 5)).astype(np.float32)
    >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
    >>> scorer = scorer_module(det)
    >>> with torch.no_grad():
    ...     scores = scorer(torch.as_tensor(X)).numpy()
    >>> bool(np.allclose(scores, det.score_samples(X)))
    True
    """
    if not isinstance(detector, VAEOutlierDetector):
        raise TypeError(
            "scorer_module exports a VAEOutlierDetector; got "
            f"{type(detector).__name__}."
        )
    check_is_fitted(detector)
    detector._check_score_type_available()
    scorer = DetectorScorer(detector)
    return scorer.to("cpu").eval()


def _example_input(detector, n_rows=2):
    return torch.zeros((n_rows, *detector._sample_shape), dtype=torch.float32)


def export_onnx(detector, path):
    """Write the fitted ``detector``'s scorer to an ONNX file at ``path``.

    The graph has one input ``"x"``, float32 of shape ``(n, *sample_shape)``
    with ``n`` free, and one output ``"scores"``, float64 of shape ``(n,)``
    (see the module docstring). Weights and statistics are stored in the
    file itself.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector.
    path : str or path-like
        Where to write the ``.onnx`` file.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.export import export_onnx
    >>> X = np.random.RandomState(0).normal(size=(40, 5)).astype(np.float32)
    >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
    >>> path = export_onnx(det, "detector.onnx")
    >>> session = onnxruntime.InferenceSession(str(path))
    >>> X_new = np.random.RandomState(1).normal(size=(10, 5)).astype(np.float32)
    >>> scores = session.run(None, {"x": X_new})[0]  # serve new rows
    >>> bool(np.allclose(scores, det.score_samples(X_new), atol=1e-4))
    True
    """
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError as error:
        raise ImportError(
            'export_onnx needs onnx and onnxscript: pip install "skvae[export]".'
        ) from error
    scorer = scorer_module(detector)
    path = Path(path)
    batch = torch.export.Dim("batch", min=1)
    with torch.inference_mode(False), warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        program = torch.onnx.export(
            scorer,
            (_example_input(detector),),
            input_names=["x"],
            output_names=["scores"],
            dynamic_shapes={"x": {0: batch}},
            dynamo=True,
            verbose=False,
        )
    program.save(str(path), external_data=False)
    return path


def export_torchscript(detector, path):
    """Write the fitted ``detector``'s scorer to a TorchScript file at ``path``.

    Load it with ``torch.jit.load(path)``; call it on a float32 tensor of
    shape ``(n, *sample_shape)``.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector.
    path : str or path-like
        Where to write the ``.pt`` file.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from skvae import VAEOutlierDetector
    >>> from skvae.export import export_torchscript
    >>> X = np.random.RandomState(0).normal(size=(40, 5)).astype(np.float32)
    >>> det = VAEOutlierDetector(max_epochs=2, random_state=0).fit(X)
    >>> scorer = torch.jit.load(str(export_torchscript(det, "detector.pt")))
    >>> with torch.no_grad():
    ...     scores = scorer(torch.as_tensor(X)).numpy()
    >>> bool(np.allclose(scores, det.score_samples(X)))
    True
    """
    scorer = scorer_module(detector)
    path = Path(path)
    with torch.no_grad(), warnings.catch_warnings():
        # PyTorch deprecates TorchScript; the traced file still loads.
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(scorer, (_example_input(detector),), check_trace=False)
        torch.jit.save(traced, str(path))
    return path
