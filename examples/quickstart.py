"""
==========================================
Quickstart: one-class outlier detection
==========================================

Train a :class:`~skvae.VAEOutlierDetector` on images of one handwritten digit
from :func:`sklearn.datasets.load_digits` (8x8 pixels, shipped with
scikit-learn) and flag the other digits as outliers. Prints the ROC-AUC on
held-out images and the time taken, and draws the histogram of the scores
into the folder named by the ``SKVAE_EXAMPLE_OUTPUT`` environment variable
(default ``./example-output``).

Run it with ``python examples/quickstart.py [--digit 0]``.
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data: one digit is "normal", the rest are outliers
# --------------------------------------------------
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from skvae import VAEOutlierDetector

parser = argparse.ArgumentParser(description="One digit is normal; flag the rest.")
parser.add_argument("--digit", type=int, default=0, help="the normal class (0-9)")
args, _ = parser.parse_known_args()

digits = load_digits()
images = digits.images / 16.0  # pixel values 0..16 -> [0, 1]
is_normal = digits.target == args.digit
normal_train, normal_test = train_test_split(
    images[is_normal], test_size=0.3, random_state=0
)
X_test = np.concatenate([normal_test, images[~is_normal]])
y_test = np.r_[np.ones(len(normal_test)), np.zeros((~is_normal).sum())]

# %%
# Fit on normal images only, then score everything else
# ------------------------------------------------------
# ``score_samples`` is the default score (``score_type="auto"``): a sum of
# standardised scores, unitless; higher means more normal.
start = time.perf_counter()
detector = VAEOutlierDetector(random_state=0).fit(normal_train)
auc = roc_auc_score(y_test, detector.score_samples(X_test))
elapsed = time.perf_counter() - start

flagged = (detector.predict(X_test) == -1).mean()
print(f"normal digit: {args.digit}   train images: {len(normal_train)}")
print(f"test images: {len(X_test)} ({len(normal_test)} normal)")
print(f"ROC-AUC: {auc:.4f}   flagged as outliers: {flagged:.1%}")
print(f"time (fit + score): {elapsed:.1f} s")

# %%
# Where the threshold falls
# -------------------------
# ``predict`` flags the images left of the dashed line, the threshold that
# ``fit`` set on a fifth of the training images it held out.
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write a file, open no window
import matplotlib.pyplot as plt

from skvae.plotting import plot_score_histogram

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
ax = plot_score_histogram(detector, X_test, y_test)
ax.figure.savefig(output / "quickstart_scores.png", dpi=100)
plt.show()
