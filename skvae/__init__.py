"""skvae: variational autoencoders behind the scikit-learn API."""

from ._callbacks import TrainingInterruptedWarning
from ._classifier import VAEClassifier
from ._dual_transformer import DualVAETransformer
from ._outlier import VAEOutlierDetector
from ._persistence import InconsistentVersionWarning, load, save
from ._transformer import VAETransformer
from ._version import __version__

__all__ = [
    "DualVAETransformer",
    "InconsistentVersionWarning",
    "TrainingInterruptedWarning",
    "VAEClassifier",
    "VAEOutlierDetector",
    "VAETransformer",
    "__version__",
    "load",
    "save",
]
