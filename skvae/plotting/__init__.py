"""Plots of fitted skvae estimators, with matplotlib.

Every function draws on a given ``ax=`` (or ``fig=`` for grids), or on a new
figure, and returns the Axes (or Figure). matplotlib is imported only when a
function runs, so ``import skvae.plotting`` stays cheap; use a headless
backend such as ``Agg`` on servers.
"""

from ._history import plot_training_curves
from ._latent import plot_latent_space, plot_latent_traversal
from ._reconstructions import plot_dual_reconstructions, plot_reconstructions
from ._scores import (
    plot_precision_recall_curve,
    plot_roc_curve,
    plot_score_histogram,
)

__all__ = [
    "plot_dual_reconstructions",
    "plot_latent_space",
    "plot_latent_traversal",
    "plot_precision_recall_curve",
    "plot_reconstructions",
    "plot_roc_curve",
    "plot_score_histogram",
    "plot_training_curves",
]
