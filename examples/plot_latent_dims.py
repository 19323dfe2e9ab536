"""
==================================================
Latent size 2 vs 16: reconstructions and latents
==================================================

Fit a :class:`~skvae.VAETransformer` with two latent dimensions and one with
sixteen on the bundled 8x8 digits (:func:`skvae.datasets.load_digit_images`).
Sixteen dimensions reconstruct the digits more sharply; two dimensions can be
plotted directly, and the digits form clusters in them even though the VAE
never saw a label. A latent traversal shows what each of the two dimensions
encodes.

The figures are written as PNG files into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# Data and models
# ---------------
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
import numpy as np

from skvae import VAETransformer
from skvae.datasets import load_digit_images
from skvae.explain import reconstruct
from skvae.plotting import plot_latent_space, plot_latent_traversal

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains briefly: rougher
# figures, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

X_train, y_train = load_digit_images(subset="train", return_X_y=True)
X_test, y_test = load_digit_images(subset="test", return_X_y=True)
X_train = X_train.reshape(-1, 8, 8)
X_test = X_test.reshape(-1, 8, 8)

models = {
    k: VAETransformer(
        latent_dim=k,
        hidden_dims=(16, 32),
        max_epochs=10 if FAST else 40,
        random_state=0,
    ).fit(X_train)
    for k in (2, 16)
}
for k, model in models.items():
    error = np.mean((reconstruct(model, X_test)[:, 0] - X_test) ** 2)
    print(f"latent_dim={k:2d}   test MSE per pixel: {error:.4f}")

# %%
# Reconstructions
# ---------------
# Top row: test images; below them, their reconstructions from the posterior
# mean with 2 and with 16 latent dimensions.
n_show = 10
shown = X_test[[np.flatnonzero(y_test == d)[0] for d in range(n_show)]]
rows = {"input": shown}
for k, model in models.items():
    rows[f"latent_dim={k}"] = reconstruct(model, shown)[:, 0]
fig, axes = plt.subplots(3, n_show, figsize=(n_show * 0.9, 3.2), layout="constrained")
for row_axes, (label, images) in zip(axes, rows.items(), strict=True):
    for ax, image in zip(row_axes, images, strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    row_axes[0].set_ylabel(label, fontsize="small")
fig.savefig(output / "reconstructions_2_vs_16.png", dpi=100)
plt.show()

# %%
# The 2-D latent space
# --------------------
# Each point is the posterior mean of a test image, coloured by its digit;
# the labels were not used for training. With 16 dimensions the codes are
# shown on their first two principal components.
fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
for ax, model in zip(axes, models.values(), strict=True):
    plot_latent_space(model, X_test, y_test, ax=ax)
fig.savefig(output / "latent_space.png", dpi=100)
plt.show()

# %%
# Latent traversal
# ----------------
# Decoding codes along each axis of the 2-D latent space, with the other at
# 0, shows which shapes each dimension moves between.
fig = plot_latent_traversal(models[2], n_steps=9, span=2.5)
fig.savefig(output / "latent_traversal.png", dpi=100)
plt.show()
print(f"figures written to {output}/")
