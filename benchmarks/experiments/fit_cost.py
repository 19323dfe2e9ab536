"""Fit seconds of skvae's detector options against PyOD's VAE, same data, one run.

On the training images of one Fashion-MNIST class (6,000 images), each
detector is fitted ``--repeats`` times, the detectors alternating within each
repeat so that they share the machine's state; the best time of each is
kept. Detectors: PyOD's VAE (its defaults, flat pixels in [0, 1]), skvae's
default ``VAEOutlierDetector()``, ``VAEOutlierDetector(transformations=None)``,
the detector with single scores (``score_type="elbo"``: the VAE alone, no
score statistics; ``"latent_knn"``: the VAE and a neighbour index) and
``VAEOutlierDetector(max_epochs=16)`` (about 1500 steps, the setting of the
first run of the benchmark) and ``VAEOutlierDetector(hidden_dims=(24, 48))``
(narrower networks). ``--detectors`` runs some of them.
Prints the times and their ratios to PyOD's VAE and to skvae's default, and
writes them as JSON.

    python -m benchmarks fit_cost run --repeats 3
"""

from pathlib import Path

import numpy as np

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist

from .._shared import best_of_alternating, environment, read_json, write_json

RESULTS_FILE = "fit_cost.json"


def detectors(random_state):
    """Name -> function fitting a fresh detector on uint8 images."""
    from pyod.models.vae import VAE

    return {
        "PyOD VAE": lambda X: VAE(random_state=random_state, verbose=0).fit(
            X.reshape(len(X), -1) / np.float32(255)
        ),
        "skvae default": lambda X: VAEOutlierDetector(random_state=random_state).fit(X),
        "skvae vae_shift=0": lambda X: VAEOutlierDetector(
            vae_shift=0, random_state=random_state
        ).fit(X),
        "skvae transformations=None": lambda X: VAEOutlierDetector(
            transformations=None, random_state=random_state
        ).fit(X),
        "skvae score_type='elbo'": lambda X: VAEOutlierDetector(
            score_type="elbo", random_state=random_state
        ).fit(X),
        "skvae score_type='latent_knn'": lambda X: VAEOutlierDetector(
            score_type="latent_knn", random_state=random_state
        ).fit(X),
        "skvae max_epochs=16": lambda X: VAEOutlierDetector(
            max_epochs=16, random_state=random_state
        ).fit(X),
        "skvae hidden_dims=(24, 48)": lambda X: VAEOutlierDetector(
            hidden_dims=(24, 48), random_state=random_state
        ).fit(X),
    }


def add_arguments(parser):
    parser.add_argument("--inlier-class", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", nargs="*", help="names (default: all)")


def run(args):
    train = load_fashion_mnist(subset="train")
    X = train.images[train.target == args.inlier_class]
    fits = detectors(random_state=args.seed)
    if args.detectors:
        fits = {name: fits[name] for name in args.detectors}
    seconds = best_of_alternating(
        {name: (lambda fit=fit: fit(X)) for name, fit in fits.items()}, args.repeats
    )
    best = {name: min(times) for name, times in seconds.items()}
    write_json(
        Path(args.out) / RESULTS_FILE,
        {
            "environment": environment(),
            "n_images": len(X),
            "seconds": seconds,
            "best": best,
        },
    )
    summarize(args)


def summarize(args):
    best = read_json(Path(args.out) / RESULTS_FILE)["best"]
    pyod, default = best.get("PyOD VAE"), best.get("skvae default")
    for name, seconds in best.items():
        line = f"{name:30s} best {seconds:6.1f} s"
        if pyod:
            line += f"   x{seconds / pyod:.2f} PyOD VAE"
        if default:
            line += f"   x{seconds / default:.2f} skvae default"
        print(line)
