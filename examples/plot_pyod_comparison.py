"""
==========================================
skvae next to PyOD on a few digit classes
==========================================

Runs the one-class protocol of :mod:`skvae.benchmark` on three classes of the
bundled digits: train on the training images of one digit, score the whole
test set, ROC-AUC with that digit as the inlier class. skvae's
:class:`~skvae.VAEOutlierDetector` (with each of its score types) runs next to
PyOD's OCSVM, Deep SVDD, VAE and AutoEncoder and scikit-learn's
:class:`~sklearn.ensemble.IsolationForest`, on the same data in the same run,
each with its library's default settings.
The full Fashion-MNIST comparison is ``python -m skvae.benchmark``.

The figures are written as PNGs into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Run the protocol
# ----------------
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
import numpy as np

from skvae.benchmark import available_methods, run_benchmark
from skvae.benchmark._report import plot_roc_curves, summary_table
from skvae.datasets import load_digit_images

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains briefly: rougher
# figures, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

train = load_digit_images(subset="train")
test = load_digit_images(subset="test")
records = run_benchmark(
    train.images,
    train.target,
    test.images,
    test.target,
    classes=[1, 3, 8],
    methods=available_methods(),
    epochs=5 if FAST else None,
    random_state=0,
)
print(summary_table(records))

# %%
# Mean ROC-AUC per method
# -----------------------
methods = list(dict.fromkeys(r["method"] for r in records))
means = {
    m: np.mean([r["roc_auc"] for r in records if r["method"] == m]) for m in methods
}
order = sorted(methods, key=means.get)
fig, ax = plt.subplots(figsize=(7, 4))
colors = ["C0" if m.startswith("skvae") else "0.6" for m in order]
ax.barh(order, [100 * means[m] for m in order], color=colors)
ax.set_xlim(min(80, 100 * min(means.values()) - 2), 100)
ax.set_xlabel("mean ROC-AUC over digits 1, 3, 8 (%)")
ax.set_title("One-class detection on digits (blue: skvae)")
fig.tight_layout()
fig.savefig(output / "pyod_comparison.png", dpi=100)
plot_roc_curves(records, output / "pyod_comparison_roc.png")
plt.show()
