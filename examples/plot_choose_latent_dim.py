"""
==================================================
Choosing ``latent_dim`` with GridSearchCV
==================================================

:meth:`VAETransformer.score <skvae.VAETransformer.score>` is the mean evidence
lower bound (ELBO) of the samples, in nats: higher means the model explains
data it was not trained on better. That is all
:class:`~sklearn.model_selection.GridSearchCV` needs to pick the size of the
code without any label: each candidate ``latent_dim`` is fitted on part of the
training images and scored on the rest, fold by fold, and the size with the
best mean held-out ELBO is refitted on everything.

Too few dimensions cannot describe the digits (a poor reconstruction term);
too many cost KL divergence without explaining more, so the held-out ELBO
levels off or falls. The plot shows where.

The figure is written as a PNG into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# The search
# ----------
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
from sklearn.model_selection import GridSearchCV, KFold

from skvae import VAETransformer
from skvae.datasets import load_digit_images

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains
# briefly: a rougher curve, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

X_train = load_digit_images(subset="train").images
X_test = load_digit_images(subset="test").images

latent_dims = [1, 2, 4, 8, 16, 32]
vae = VAETransformer(
    hidden_dims=(16, 32), max_epochs=10 if FAST else 60, random_state=0
)
search = GridSearchCV(
    vae,
    {"latent_dim": latent_dims},
    # Shuffled folds: the digits are stored in writer order.
    cv=KFold(3, shuffle=True, random_state=0),
).fit(X_train)
print(f"chosen latent_dim: {search.best_params_['latent_dim']}")
print(f"its held-out ELBO: {search.best_score_:.1f} nats per image")
test_elbo = search.score(X_test)
print(f"test ELBO of the refitted model: {test_elbo:.1f} nats per image")

# %%
# Held-out ELBO against ``latent_dim``
# ------------------------------------
# Each point is the mean over the three held-out folds, the bar one standard
# deviation; the chosen size is marked.
mean = search.cv_results_["mean_test_score"]
spread = search.cv_results_["std_test_score"]
best = search.best_index_
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.errorbar(latent_dims, mean, yerr=spread, marker="o", capsize=3)
ax.plot(latent_dims[best], mean[best], "o", ms=12, mfc="none", mec="C3", mew=2)
ax.annotate(
    f"chosen: {latent_dims[best]}",
    (latent_dims[best], mean[best]),
    textcoords="offset points",
    xytext=(0, -22),
    ha="center",
    color="C3",
)
ax.set_xscale("log", base=2)
ax.set_xticks(latent_dims, [str(k) for k in latent_dims])
ax.set_xlabel("latent_dim")
ax.set_ylabel("mean held-out ELBO (nats per image)")
ax.set_title("GridSearchCV over latent_dim, 3 folds of the digits")
fig.savefig(output / "choose_latent_dim.png", dpi=100)
plt.show()

# %%
# The per-fold scores are in ``cv_results_`` as for any scikit-learn search.
for k, m, s in zip(latent_dims, mean, spread, strict=True):
    print(f"latent_dim={k:2d}   held-out ELBO {m:8.1f} +- {s:.1f}")
print(f"figure written to {output}/")
