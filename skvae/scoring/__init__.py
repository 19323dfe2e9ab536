"""The scoring layer: per-sample outputs and scores of fitted modules.

Plain functions of a module and an array, shared by every estimator, in
three layers: the batching engine (:func:`map_batches`, fixed blocks so that
a sample's result never depends on its batch), the score functions
(:func:`elbo_scores`, :func:`iwae_scores`, ...), and the nearest-neighbour
index (:class:`NeighborDistance`). The detector's score terms
(:mod:`skvae.terms`) are built on them.
"""

from ._batches import iter_batches, map_batches, score_block_rows
from ._neighbors import NeighborDistance
from ._outputs import (
    background_reconstructions,
    background_targets,
    class_probabilities,
    reconstructed_means,
)
from ._precision import resolve_precision
from ._scores import (
    batch_score_outputs,
    bits_per_dim,
    decoded_means,
    discrete_iwae_scores,
    elbo_scores,
    iwae_scores,
    latent_gaussian,
    latent_mahalanobis_scores,
    latent_means,
    latent_noise,
    mahalanobis_scores,
    per_sample_outputs,
    reconstruction_probability_scores,
    reconstruction_scores,
    transformation_outputs,
)

# The scores users call on a fitted module; the other names here are
# plumbing the estimators, explanations and export share.
__all__ = [
    "NeighborDistance",
    "bits_per_dim",
    "decoded_means",
    "discrete_iwae_scores",
    "elbo_scores",
    "iwae_scores",
    "latent_gaussian",
    "latent_mahalanobis_scores",
    "latent_means",
    "latent_noise",
    "mahalanobis_scores",
    "map_batches",
    "reconstruction_probability_scores",
    "reconstruction_scores",
    "resolve_precision",
    "transformation_outputs",
]
