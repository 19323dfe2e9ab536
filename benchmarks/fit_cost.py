"""Fit seconds of skvae's detector options against PyOD's VAE, same data, one run.

On the training images of one Fashion-MNIST class (6,000 images), each
detector is fitted ``--repeats`` times, the detectors alternating within each
repeat so that they share the machine's state; the best time of each is
kept. Detectors: PyOD's VAE (its defaults, flat pixels in [0, 1]), skvae's
default ``VAEOutlierDetector()``, ``VAEOutlierDetector(transformations=None)``,
the detector with single scores (``score_type="elbo"``: the VAE alone, no
score statistics; ``"latent_knn"``: the VAE and a neighbour index) and
``VAEOutlierDetector(max_epochs=16)`` (about 1500 steps, the setting of the
first run of the benchmark). ``--detectors`` runs some of them.
Prints the times and their ratios to PyOD's VAE and to skvae's default, and
writes them as JSON.

    OMP_NUM_THREADS=1 python benchmarks/fit_cost.py --threads 1 --repeats 3
"""

import argparse
import json
import time

import numpy as np
import torch
from _environment import environment

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist


def detectors(random_state):
    """Name -> function fitting a fresh detector on uint8 images."""
    from pyod.models.vae import VAE

    return {
        "PyOD VAE": lambda X: VAE(random_state=random_state, verbose=0).fit(
            X.reshape(len(X), -1) / np.float32(255)
        ),
        "skvae default": lambda X: VAEOutlierDetector(random_state=random_state).fit(X),
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
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inlier-class", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/fit_cost.json")
    parser.add_argument("--detectors", nargs="*", help="names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load_fashion_mnist(subset="train")
    X = train.images[train.target == args.inlier_class]
    fits = detectors(random_state=0)
    if args.detectors:
        fits = {name: fits[name] for name in args.detectors}
    seconds = {name: [] for name in fits}
    for repeat in range(args.repeats):
        for name, fit in fits.items():
            start = time.perf_counter()
            fit(X)
            seconds[name].append(time.perf_counter() - start)
            print(f"repeat {repeat}: {name} {seconds[name][-1]:.1f} s", flush=True)
    best = {name: min(times) for name, times in seconds.items()}
    ratios = {
        name: best[name] / best["PyOD VAE"] for name in best if "PyOD VAE" in best
    }
    default = best.get("skvae default")
    for name in best:
        line = f"{name:30s} best {best[name]:6.1f} s"
        if name in ratios:
            line += f"   x{ratios[name]:.2f} PyOD VAE"
        if default:
            line += f"   x{best[name] / default:.2f} skvae default"
        print(line)
    with open(args.out, "w") as f:
        json.dump(
            {
                "environment": environment(args),
                "n_images": len(X),
                "seconds": seconds,
                "best": best,
                "ratio_to_pyod_vae": ratios,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
