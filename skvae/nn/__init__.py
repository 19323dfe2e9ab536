"""PyTorch modules behind skvae's estimators.

Users may build these directly, e.g. to inspect a fitted model's
``estimator.net_.module_``.
"""

from ._conv import ConvDecoder, ConvEncoder
from ._dual import (
    DualVAE,
    LatentMixing,
    PooledTarget,
    ReceptiveFieldEncoder,
)
from ._factory import make_dual_vae, make_vae
from ._grad2vae import (
    CurvatureAttention,
    Grad2VAE,
    Grad2VAEDecoder,
    Grad2VAEEncoder,
)
from ._likelihoods import BernoulliLikelihood, GaussianLikelihood
from ._losses import NegativeELBO, elbo, kl_standard_normal
from ._mlp import MLPDecoder, MLPEncoder
from ._semi import SemiSupervisedLoss, SemiSupervisedVAE
from ._transformations import TransformationClassifier, transform_images
from ._vae import VAE, VAEOutput

__all__ = [
    "VAE",
    "VAEOutput",
    "BernoulliLikelihood",
    "ConvDecoder",
    "ConvEncoder",
    "CurvatureAttention",
    "DualVAE",
    "GaussianLikelihood",
    "Grad2VAE",
    "Grad2VAEDecoder",
    "Grad2VAEEncoder",
    "LatentMixing",
    "MLPDecoder",
    "MLPEncoder",
    "NegativeELBO",
    "PooledTarget",
    "ReceptiveFieldEncoder",
    "SemiSupervisedLoss",
    "SemiSupervisedVAE",
    "TransformationClassifier",
    "elbo",
    "kl_standard_normal",
    "make_dual_vae",
    "make_vae",
    "transform_images",
]
