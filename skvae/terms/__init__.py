"""Score terms: the parts a detector's anomaly score is made of.

Each term reads per-sample outputs of the detector's fitted networks (the
ELBO, the posterior means, the transformation classifier's outputs, ...),
learns what it needs from the training rows, scores new rows (higher = more
normal) and has a torch form for export. ``VAEOutlierDetector(score_type=...)``
takes a score name, a :class:`ScoreTerm`, or a tuple of either, which it sums
standardised (:class:`StandardizedSum`); ``"auto"`` is one such sum. The
detector trains only the networks its terms read from.
"""

from ._base import ScoreTerm, StandardizedSum
from ._builtin import (
    MahalanobisScore,
    NeighborScore,
    OutputScore,
    auto_n_neighbors,
    auto_terms,
)

__all__ = [
    "MahalanobisScore",
    "NeighborScore",
    "OutputScore",
    "ScoreTerm",
    "StandardizedSum",
    "auto_n_neighbors",
    "auto_terms",
]
