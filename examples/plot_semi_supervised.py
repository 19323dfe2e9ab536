"""
==============================================
Classifying digits with ten labels per class
==============================================

A :class:`~skvae.VAEClassifier` learns from all training images but only ten
labels per class (the other labels are set to -1, scikit-learn's marker for
unlabeled samples, as in :class:`~sklearn.semi_supervised.LabelSpreading`).
It is compared with a :class:`~sklearn.linear_model.LogisticRegression` that
can only use the labeled images, and with the VAE's two training recipes:
``head_mode="joint"`` (ELBO on everything, cross-entropy on the labeled
images, and on every image a prediction kept stable under a small adversarial
change, ``vat_eps``) and ``head_mode="frozen"`` (the VAE first, then a head on
its frozen codes).

The figure is written as a PNG into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Ten labels per class
# --------------------
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import ConfusionMatrixDisplay

from skvae import VAEClassifier
from skvae.datasets import load_digit_images

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains briefly: rougher
# figures, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

X_train, y_train = load_digit_images(subset="train", return_X_y=True)
X_test, y_test = load_digit_images(subset="test", return_X_y=True)

rng = np.random.RandomState(0)
y_partial = np.full_like(y_train, -1)
for digit in range(10):
    keep = rng.choice(np.flatnonzero(y_train == digit), 10, replace=False)
    y_partial[keep] = digit
labeled = y_partial != -1
print(f"{labeled.sum()} labeled and {(~labeled).sum()} unlabeled training images")

# %%
# Fit and compare
# ---------------
# The logistic regression sees only the 100 labeled images; the VAE
# classifiers see all of them.
results = {}
baseline = LogisticRegression(max_iter=2000).fit(X_train[labeled], y_train[labeled])
results["logistic regression (labeled only)"] = baseline.score(X_test, y_test)
classifiers = {}
for mode in ("joint", "frozen"):
    # max_epochs="auto" (the default) trains for about 1,500 optimizer steps,
    # long enough for the weight averaging over the last 30% to pay off.
    clf = VAEClassifier(
        head_mode=mode,
        hidden_dims=(16, 32),
        max_epochs=10 if FAST else "auto",
        random_state=0,
    )
    classifiers[mode] = clf.fit(X_train, y_partial)
    results[f"VAEClassifier(head_mode={mode!r})"] = clf.score(X_test, y_test)
for name, accuracy in results.items():
    print(f"{name:40s} test accuracy {accuracy:.3f}")

# %%
# Accuracy and confusion matrix
# -----------------------------
fig, (ax_bar, ax_cm) = plt.subplots(1, 2, figsize=(11, 4.5))
names = list(results)
ax_bar.barh(names, [results[n] for n in names], color=["0.6", "C0", "C1"])
ax_bar.set_xlim(0, 1)
ax_bar.set_xlabel("test accuracy")
ax_bar.invert_yaxis()
for i, name in enumerate(names):
    ax_bar.text(
        results[name] - 0.02,
        i,
        f"{results[name]:.3f}",
        ha="right",
        va="center",
        color="white",
    )
ax_bar.set_title("10 labels per class")
ConfusionMatrixDisplay.from_estimator(
    classifiers["joint"], X_test, y_test, ax=ax_cm, colorbar=False
)
ax_cm.set_title("VAEClassifier(head_mode='joint')")
fig.tight_layout()
fig.savefig(output / "semi_supervised.png", dpi=100)
plt.show()
