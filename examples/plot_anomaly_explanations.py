"""
===================================================
Why is this image anomalous? Scores, maps, curves
===================================================

Train a :class:`~skvae.VAEOutlierDetector` on one digit of the bundled 8x8
digits (:func:`skvae.datasets.load_digit_images`) and treat every other digit
as an anomaly. The score histogram with the fitted threshold, the ROC and
precision-recall curves show how well the default score separates the two; the
most anomalous test images, with their reconstructions, per-pixel anomaly
maps (:func:`skvae.explain.anomaly_map`) and attention maps
(:func:`skvae.explain.gradient_attention_map`,
:func:`skvae.explain.grad2vae_map`), show why they score low.

The figures are written as PNG files into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause
# sphinx_gallery_thumbnail_number = 3

# %%
# Data: eights are normal, the other digits are anomalies
# -------------------------------------------------------
# The detector sees only the training eights. The test set holds the
# held-out eights and a random tenth of the other test digits, so that
# anomalies are the minority, as in practice. (Zeros would make this too
# easy: their ROC-AUC is 1.)
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_digit_images, one_class_split
from skvae.plotting import (
    plot_precision_recall_curve,
    plot_reconstructions,
    plot_roc_curve,
    plot_score_histogram,
    plot_training_curves,
)

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains briefly: rougher
# figures, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

train = load_digit_images(subset="train")
test = load_digit_images(subset="test")
X_train, X_test, is_inlier = one_class_split(
    train.images, train.target, test.images, test.target, inlier_class=8
)
rng = np.random.RandomState(0)
keep = (is_inlier == 1) | (rng.uniform(size=len(X_test)) < 0.1)
X_test, is_inlier, digit = X_test[keep], is_inlier[keep], test.target[keep]
print(f"train: {len(X_train)} eights   test: {len(X_test)} ({is_inlier.sum()} eights)")

# %%
# Fit on the eights
# -----------------
# A small convolutional VAE is enough for 8x8 images. The threshold
# ``offset_`` comes from a fifth of the training eights that fit holds out:
# it flags at most 5% of new eights.
detector = VAEOutlierDetector(
    latent_dim=8,
    hidden_dims=(16, 32),
    contamination=0.05,
    max_epochs=60 if FAST else 300,
    random_state=0,
).fit(X_train)
scores = detector.score_samples(X_test)
print(f"ROC-AUC: {roc_auc_score(is_inlier, scores):.3f}")

ax = plot_training_curves(detector)
ax.figure.savefig(output / "training_curves.png", dpi=100)
plt.show()

# %%
# Score histogram, ROC and precision-recall curves
# -------------------------------------------------
# ``score_samples`` is the default score (a unitless sum of standardised
# scores): most other digits sit left of the eights.
# The dashed line is the threshold; samples left of it are predicted
# outliers. In the curves the outliers are the positive class.
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), layout="constrained")
plot_score_histogram(detector, X_test, is_inlier, ax=axes[0])
plot_roc_curve(detector, X_test, is_inlier, ax=axes[1])
plot_precision_recall_curve(detector, X_test, is_inlier, ax=axes[2])
fig.savefig(output / "scores.png", dpi=100)
plt.show()

# %%
# The most anomalous test images, explained
# -----------------------------------------
# Each row shows an image, its reconstruction from the posterior mean, the
# per-pixel negative log-likelihood (bright = badly reconstructed; a row
# sums to minus the image's reconstruction score), and two attention maps:
#
# - the first-order map of Liu et al. (2020): the encoder features that push
#   the latent code, weighted by their gradient. On 8x8 images the last
#   encoder block is only 2x2, so it is taken at the first block (4x4) with
#   ``layer=0``;
# - the second-order Grad2VAE map: where the latent code bends most as the
#   first layer's features change (the Hessian's diagonal).
#
# For reference, the last row is the most typical eight.
top_k = 6
order = np.argsort(scores)
rows = np.r_[order[:top_k], order[-1]]
labels = [f"digit {digit[i]}\nscore {scores[i]:.1f}" for i in rows]
fig = plot_reconstructions(
    detector,
    X_test[rows],
    attention=["gradient", "grad2vae"],
    attention_kwargs={"gradient": {"layer": 0}},
    row_labels=labels,
)
fig.savefig(output / "top_anomalies.png", dpi=80)
plt.show()
print(f"figures written to {output}/")
