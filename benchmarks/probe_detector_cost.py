"""Probe (not library code): cheaper settings of the default detector.

One-class Fashion-MNIST on the given classes, seed 0, one thread: the default
``VAEOutlierDetector()`` against variants with a narrower transformation
classifier and/or fewer training epochs (VAE and classifier alike), reporting
the ROC-AUC of ``score_type="auto"`` and the fit seconds of each, one JSON line
per (variant, class).

    OMP_NUM_THREADS=1 python benchmarks/probe_detector_cost.py --classes 6 5 2
"""

import argparse
import json
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist

torch.set_num_threads(1)

VARIANTS = {
    # name: (classifier channels, max_epochs or None for "auto")
    "default": ((32, 64, 128), None),
    "narrow": ((16, 32, 64), None),
    "narrow_10ep": ((16, 32, 64), 10),
    "default_10ep": ((32, 64, 128), 10),
    "narrow_8ep": ((16, 32, 64), 8),
}


def with_channels(channels):
    build = VAEOutlierDetector._build_transformation_net

    def patched(self, n_samples):
        net = build(self, n_samples)
        return net.set_params(module__channels=channels)

    return patched


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, nargs="+", default=[6, 5, 2, 0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--out", default="benchmarks/results/probe_detector_cost.jsonl")
    args = parser.parse_args()
    train, test = load_fashion_mnist(subset="train"), load_fashion_mnist(subset="test")
    for c in args.classes:
        X = train.images[train.target == c]
        y = (test.target == c).astype(int)
        for name in args.variants:
            channels, epochs = VARIANTS[name]
            original = VAEOutlierDetector._build_transformation_net
            VAEOutlierDetector._build_transformation_net = with_channels(channels)
            try:
                params = {"random_state": 0}
                if epochs is not None:
                    params["max_epochs"] = epochs
                start = time.perf_counter()
                det = VAEOutlierDetector(**params).fit(X)
                seconds = time.perf_counter() - start
            finally:
                VAEOutlierDetector._build_transformation_net = original
            aucs = {}
            for score_type in [
                "auto",
                "elbo",
                "latent_knn",
                "transformation",
                "transformation_knn",
            ]:
                det.set_params(score_type=score_type)
                aucs[score_type] = 100 * roc_auc_score(
                    y, det.score_samples(test.images)
                )
            vae_seconds = float(np.sum(det.net_.history[:, "dur"]))
            clf_seconds = float(np.sum(det.transformation_net_.history[:, "dur"]))
            record = {
                "class": c,
                "variant": name,
                "auc": aucs,
                "fit_seconds": seconds,
                "vae_epochs_seconds": vae_seconds,
                "classifier_epochs_seconds": clf_seconds,
            }
            with open(args.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(
                c,
                name,
                {k: round(v, 2) for k, v in aucs.items()},
                round(seconds, 1),
                round(vae_seconds, 1),
                round(clf_seconds, 1),
                flush=True,
            )


if __name__ == "__main__":
    main()
