"""skvae: variational autoencoders behind the scikit-learn API."""

from ._outlier import VAEOutlierDetector

__version__ = "0.1.0.dev0"

__all__ = ["VAEOutlierDetector", "__version__"]
