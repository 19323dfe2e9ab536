"""Data sets for skvae's tests, examples and benchmarks; nothing is downloaded.

- :func:`load_digit_images`: scikit-learn's bundled 8x8 digits in [0, 1],
  with a reproducible stratified train/test split.
- :func:`load_fashion_mnist`: Fashion-MNIST from its four IDX files on disk
  (``apt-get install dataset-fashion-mnist`` on Debian/Ubuntu).
- :func:`load_image_folder`: PNG, JPEG, BMP and TIFF files of a folder as
  one uint8 array (optionally cached to a memory-mapped ``.npy`` file), with
  sub-folder labels if asked.
- :func:`make_cells`: synthetic microscopy images with foreground and
  background cells (the dual VAE's data).
- :func:`one_class_split`: the one-class anomaly-detection protocol.
- :func:`normal_classes_split`: several normal classes, rare anomalies.
- :func:`make_synthetic_anomalies`: ADBench's four types of anomaly (local,
  global, dependency, clustered), drawn from a model of normal rows.
- :func:`neighbour_correlation_excess`: whether flat rows of a square number
  of features vary as images do (the test ``architecture="auto"`` applies).
"""

from .._validation import neighbour_correlation_excess
from ._cells import make_cells
from ._digits import load_digit_images
from ._fashion_mnist import DatasetNotFoundError, load_fashion_mnist
from ._image_folder import list_image_files, load_image_folder
from ._one_class import normal_classes_split, one_class_split
from ._synthetic_anomalies import ANOMALY_KINDS, make_synthetic_anomalies

__all__ = [
    "ANOMALY_KINDS",
    "DatasetNotFoundError",
    "load_digit_images",
    "load_fashion_mnist",
    "list_image_files",
    "load_image_folder",
    "make_cells",
    "make_synthetic_anomalies",
    "neighbour_correlation_excess",
    "normal_classes_split",
    "one_class_split",
]
