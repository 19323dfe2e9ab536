"""One-class anomaly-detection benchmark: skvae next to PyOD and scikit-learn.

Run ``python -m skvae.benchmark --help``. The protocol (Ruff et al. 2018):
train on the training images of one class, score the whole test set, and
compute the ROC-AUC with that class as the inlier class; repeat for every
class and average.
"""

from ._command import benchmark_splits
from ._methods import METHODS, available_methods
from ._run import run_benchmark

__all__ = ["METHODS", "available_methods", "benchmark_splits", "run_benchmark"]
