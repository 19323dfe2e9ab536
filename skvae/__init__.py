"""skvae: variational autoencoders behind the scikit-learn API."""

from ._classifier import VAEClassifier
from ._outlier import VAEOutlierDetector
from ._transformer import VAETransformer

__version__ = "0.1.0.dev0"

__all__ = ["VAEClassifier", "VAEOutlierDetector", "VAETransformer", "__version__"]
