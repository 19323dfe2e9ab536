"""Export a fitted detector's scorer to ONNX or TorchScript, to serve without skvae.

The exported graph computes what ``VAEOutlierDetector.score_samples``
computes for the detector's ``score_type`` (by default ``"auto"``): the
networks' forward passes and the score's fitted statistics (latent Gaussian,
nearest-neighbour training features, standardisation), baked in as
constants. It takes float32 samples of the shape the detector was fitted on,
``(n, *sample_shape)`` (e.g. ``(n, 28, 28)``), already scaled as the model
saw them (uint8 images divided by 255), and returns float64 scores, higher =
more normal, equal to ``score_samples`` within float rounding (the tests check
1e-5). Subtract ``detector.offset_`` for ``decision_function``. The graph
runs float32 throughout: a detector whose transformation classifier scores
in bfloat16 (``transformation_precision``, by default on CPUs with AMX)
agrees with it within 1e-2 of the largest score instead (8e-4 measured on
Fashion-MNIST, 5e-3 on the tests' tiny networks); fit it with
``transformation_precision="float32"`` where the two must agree closely.

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

import torch
from torch import nn

from ._outlier import VAEOutlierDetector, _reads
from .scoring import batch_score_outputs
from .scoring._scores import DECODED_OUTPUTS, INPUT_OUTPUTS
from .utils._sklearn import check_is_fitted

__all__ = ["DetectorScorer", "export_onnx", "export_torchscript", "scorer_module"]


class DetectorScorer(nn.Module):
    """A fitted detector's ``score_samples`` as one torch module.

    Build it with :func:`scorer_module`. ``forward`` takes float32 samples
    of shape ``(n, *sample_shape)`` and returns float64 scores of shape
    ``(n,)``.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector; the score of its fit decides what is computed.

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
        term = detector.score_term_
        self.vae = detector.net_.module_
        classifier = detector.transformation_net_
        self.classifier = None if classifier is None else classifier.module_
        self.input_shape = tuple(detector.input_shape_)
        draws = detector.posterior_draws_
        self.register_buffer("noise", None if draws is None else torch.as_tensor(draws))
        self.score = term.to_torch()
        self.inputs = _reads(term, INPUT_OUTPUTS)
        self.decoded = _reads(term, DECODED_OUTPUTS)

    def forward(self, x):
        """Scores of float32 samples ``x`` of shape ``(n, *sample_shape)``."""
        x = x.reshape(-1, *self.input_shape)
        outputs = batch_score_outputs(
            self.vae,
            x,
            noise=self.noise,
            transformation_module=self.classifier,
            inputs=self.inputs,
            decoded=self.decoded,
        )
        return self.score(outputs)


def scorer_module(detector):
    """Return the fitted ``detector``'s ``score_samples`` as a torch module.

    Parameters
    ----------
    detector : VAEOutlierDetector
        A fitted detector; the score of its fit (``score_type_``) is exported.

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
    scorer = DetectorScorer(detector)
    return scorer.to("cpu").eval()


def _example_input(detector, n_rows=2):
    return torch.zeros((n_rows, *detector.sample_shape_), dtype=torch.float32)


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
