"""PyTorch modules behind skvae's estimators.

Users may build these directly, e.g. to inspect a fitted model's
``estimator.net_.module_``.
"""

from ._conv import ConvDecoder, ConvEncoder
from ._likelihoods import BernoulliLikelihood, GaussianLikelihood
from ._losses import NegativeELBO, elbo, kl_standard_normal
from ._mlp import MLPDecoder, MLPEncoder
from ._vae import VAE, make_vae

__all__ = [
    "VAE",
    "BernoulliLikelihood",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianLikelihood",
    "MLPDecoder",
    "MLPEncoder",
    "NegativeELBO",
    "elbo",
    "kl_standard_normal",
    "make_vae",
]
