"""
=================================================
A folder of photos: fit, score and explain
=================================================

Most images live as files in folders. This example builds such a folder from
scikit-learn's two bundled sample photos (no download), reads it with
:func:`skvae.datasets.load_image_folder`, fits a
:class:`~skvae.VAEOutlierDetector` on RGB patches of one photo, and scores new
patches of both: patches of the other photo are the anomalies. Per-pixel
anomaly maps (:func:`skvae.explain.anomaly_map`) show what makes the least
normal patches score low.

The same steps run from a shell with the ``skvae`` command::

    skvae fit photos/normal -o temple.skvae --color rgb
    skvae score temple.skvae photos/new --csv scores.csv
    skvae explain temple.skvae photos/new --out maps/

The figures are written as PNG files into the folder named by the
``SKVAE_EXAMPLE_OUTPUT`` environment variable (default ``./example-output``).
"""

# Authors: The skvae developers
# SPDX-License-Identifier: BSD-3-Clause

# %%
# A folder of image files
# -----------------------
# Patches of 24x32 pixels (non-square, RGB) are cut from the temple photo
# (normal) and from the flower photo (anomalous) and saved as PNG files:
# training patches in ``photos/normal``, and in ``photos/new`` held-out temple
# patches with a few flower patches among them.
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # write files, open no window
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_image_folder
from skvae.explain import anomaly_map

output = Path(os.environ.get("SKVAE_EXAMPLE_OUTPUT", "example-output"))
output.mkdir(parents=True, exist_ok=True)
# SKVAE_DOCS_FAST=1 (set by the docs build in CI) trains briefly: rougher
# figures, same layout.
FAST = os.environ.get("SKVAE_DOCS_FAST") == "1"

HEIGHT, WIDTH, STRIDE = 24, 32, 12


def patches(photo):
    """Every HEIGHT x WIDTH patch of ``photo`` on a STRIDE grid."""
    rows = range(0, photo.shape[0] - HEIGHT + 1, STRIDE)
    cols = range(0, photo.shape[1] - WIDTH + 1, STRIDE)
    return [photo[r : r + HEIGHT, c : c + WIDTH] for r in rows for c in cols]


temple, flower = load_sample_images().images
rng = np.random.RandomState(0)
normal = patches(temple)
rng.shuffle(normal)
anomalies = patches(flower)
rng.shuffle(anomalies)

photos = Path(tempfile.mkdtemp()) / "photos"
new_patches = {"temple": normal[-150:], "flower": anomalies[:15]}
folders = {"normal": {"temple": normal[:-150]}, "new": new_patches}
for folder, sources in folders.items():
    for source, images in sources.items():
        (photos / folder).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(photos / folder / f"{source}-{i:04d}.png")
print({folder: len(list((photos / folder).iterdir())) for folder in folders})

# %%
# Read the folder and fit
# -----------------------
# ``color="rgb"`` gives channels-first ``(n, 3, 24, 32)`` uint8 images, which
# the detector scales by 1/255. The files keep their size here; ``size=`` would
# resize or centre-crop them, and ``cache=`` would keep a large folder in a
# memory-mapped file that ``fit`` streams.
train = load_image_folder(photos / "normal", color="rgb")
print(train.images.shape, train.images.dtype)

detector = VAEOutlierDetector(max_epochs=3 if FAST else "auto", random_state=0).fit(
    train.images
)

# %%
# Score the new patches
# ---------------------
# Higher scores are more normal. The file names say which photo each patch
# came from, so the ranking can be checked.
new = load_image_folder(photos / "new", color="rgb")
scores = detector.score_samples(new.images)
is_flower = np.char.startswith(new.filenames.astype(str), "flower")
print(f"ROC-AUC of the flower patches: {roc_auc_score(~is_flower, scores):.3f}")
flagged = detector.predict(new.images) == -1
print(
    f"flagged {flagged.sum()} of {len(new.images)}; flower among them: "
    f"{(flagged & is_flower).sum()} of {is_flower.sum()}"
)

# %%
# What makes the least normal patches unusual
# -------------------------------------------
# The anomaly map holds each pixel's negative log-likelihood under the
# decoder (summed over the three channels): bright where the VAE cannot
# reconstruct the patch. One colour scale for all maps. The map explains only
# the reconstruction: busy foliage of the temple photo is hard to reconstruct
# and can rank low, while the flat, smooth flower patches reconstruct well
# (dark maps) and rank low through the default score's other parts, the
# neighbours in the latent space and the transformation classifier
# (``detector.score_parts`` gives each).
order = np.argsort(scores)[:6]
maps = anomaly_map(detector, new.images[order]).sum(axis=1)
low, high = np.percentile(maps, [1, 99.5])
fig, axes = plt.subplots(2, len(order), figsize=(2.0 * len(order), 3.4))
for column, index in enumerate(order):
    axes[0, column].imshow(new.images[index].transpose(1, 2, 0))
    axes[0, column].set_title(
        f"{new.filenames[index].split('-')[0]}\n{scores[index]:.1f}", fontsize=9
    )
    axes[1, column].imshow(maps[column], cmap="inferno", vmin=low, vmax=high)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("patch")
axes[1, 0].set_ylabel("anomaly map")
fig.suptitle("The six least normal new patches (photo, score)")
fig.tight_layout()
fig.savefig(output / "image_folder_maps.png", dpi=110)
