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
(narrower networks), and the default with its transformation classifier
scoring in float32 (``transformation_precision="float32"``; the default's
``"auto"`` is bfloat16 on CPUs with AMX). ``--detectors`` runs some of them.
Prints the times and their ratios to PyOD's VAE and to skvae's default, and
writes them as JSON. With ``--score``, the fitted detectors (each one's last
fit) then score the 10,000 test images, alternating the same way; the
scoring times are also given as ratios to the VAE alone's
(``score_type="elbo"``).

    python -m benchmarks fit_cost run --repeats 3 [--score]
"""

from pathlib import Path

import numpy as np

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist

from .._shared import best_of_alternating, environment, read_json, write_json

RESULTS_FILE = "fit_cost.json"


def scorer(name, detector, X):
    """A function scoring uint8 images ``X`` with a fitted ``detector``."""
    if name == "PyOD VAE":
        flat = X.reshape(len(X), -1) / np.float32(255)
        return lambda: detector.decision_function(flat)
    return lambda: detector.score_samples(X)


# The skvae detectors timed: name -> VAEOutlierDetector parameters.
SKVAE_SETTINGS = {
    "skvae default": {},
    "skvae transformation_precision='float32'": {"transformation_precision": "float32"},
    "skvae vae_shift=0": {"vae_shift": 0},
    "skvae transformations=None": {"transformations": None},
    "skvae score_type='elbo'": {"score_type": "elbo"},
    "skvae score_type='latent_knn'": {"score_type": "latent_knn"},
    "skvae max_epochs=16": {"max_epochs": 16},
    "skvae hidden_dims=(24, 48)": {"hidden_dims": (24, 48)},
}


def detectors(random_state):
    """Name -> function fitting a fresh detector on uint8 images."""
    from pyod.models.vae import VAE

    def pyod_vae(X):
        flat = X.reshape(len(X), -1) / np.float32(255)
        return VAE(random_state=random_state, verbose=0).fit(flat)

    def skvae(params):
        return lambda X: VAEOutlierDetector(**params, random_state=random_state).fit(X)

    fits = {"PyOD VAE": pyod_vae}
    fits.update({name: skvae(params) for name, params in SKVAE_SETTINGS.items()})
    return fits


def add_arguments(parser):
    parser.add_argument("--inlier-class", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", nargs="*", help="names (default: all)")
    parser.add_argument(
        "--score", action="store_true", help="also time scoring the test images"
    )


def run(args):
    train = load_fashion_mnist(subset="train")
    X = train.images[train.target == args.inlier_class]
    fits = detectors(random_state=args.seed)
    if args.detectors:
        fits = {name: fits[name] for name in args.detectors}
    fitted = {}

    def fit_and_keep(name, fit):
        fitted[name] = fit(X)

    timed = {
        name: (lambda name=name, fit=fit: fit_and_keep(name, fit))
        for name, fit in fits.items()
    }
    seconds = best_of_alternating(timed, args.repeats)
    result = {
        "environment": environment(),
        "n_images": len(X),
        "seconds": seconds,
        "best": {name: min(times) for name, times in seconds.items()},
    }
    if args.score:
        X_test = load_fashion_mnist(subset="test").images
        scoring = best_of_alternating(
            {name: scorer(name, det, X_test) for name, det in fitted.items()},
            args.repeats,
        )
        result["n_scored"] = len(X_test)
        result["score_seconds"] = scoring
        result["best_score"] = {name: min(times) for name, times in scoring.items()}
    write_json(Path(args.out) / RESULTS_FILE, result)
    summarize(args)


def summarize(args):
    result = read_json(Path(args.out) / RESULTS_FILE)
    best = result["best"]
    pyod, default = best.get("PyOD VAE"), best.get("skvae default")
    for name, seconds in best.items():
        line = f"{name:40s} best {seconds:6.1f} s"
        if pyod:
            line += f"   x{seconds / pyod:.2f} PyOD VAE"
        if default:
            line += f"   x{seconds / default:.2f} skvae default"
        print(line)
    if "best_score" in result:
        _summarize_scoring(result["best_score"], result["n_scored"])


def _summarize_scoring(best, n_scored):
    alone = best.get("skvae score_type='elbo'")
    print(f"\nscoring {n_scored} test images:")
    for name, seconds in best.items():
        line = f"{name:40s} best {seconds:6.2f} s"
        if alone:
            line += f"   x{seconds / alone:.2f} the VAE alone (score_type='elbo')"
        print(line)
