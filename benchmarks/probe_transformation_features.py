"""Probe (not library code): which transformation-classifier features to index.

One-class Fashion-MNIST, the default ``VAEOutlierDetector()``, seed 0: the
ROC-AUC of ``score_type="auto"`` as it is (nearest neighbours on the pooled
features of the untransformed image) against the same sum with the
nearest-neighbour part on the features of all transformed copies,
concatenated ("concat") or averaged ("mean"). One JSON line per class.

    OMP_NUM_THREADS=1 python benchmarks/probe_transformation_features.py --classes 5 6
"""

import argparse
import json
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist
from skvae.nn import transform_images
from skvae.scoring import NeighborDistance

torch.set_num_threads(1)


@torch.no_grad()
def copy_features(module, images):
    x = torch.as_tensor(images / np.float32(255))[:, None]
    n = module.n_transformations
    out = []
    for start in range(0, len(x), 500):
        batch = x[start : start + 500]
        out.append(
            torch.stack(
                [module.embed(transform_images(batch, t, n)) for t in range(n)], 1
            )
        )
    return torch.cat(out).numpy()


def z(train, test):
    return (test - train.mean()) / train.std()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--classes", type=int, nargs="+", default=[5, 6, 2])
    parser.add_argument(
        "--out", default="benchmarks/results/probe_transformation_features.jsonl"
    )
    args = parser.parse_args()
    train, test = load_fashion_mnist(subset="train"), load_fashion_mnist(subset="test")
    for c in args.classes:
        X = train.images[train.target == c]
        y = (test.target == c).astype(int)
        start = time.perf_counter()
        det = VAEOutlierDetector(random_state=0).fit(X)
        seconds = time.perf_counter() - start
        parts = {}
        for name in ["elbo", "latent_knn", "transformation", "transformation_knn"]:
            det.set_params(score_type=name)
            parts[name] = (det.score_samples(X), det.score_samples(test.images))
        module = det.transformation_net_.module_.eval()
        f_train, f_test = copy_features(module, X), copy_features(module, test.images)
        for name, fn in [
            ("concat", lambda f: f.reshape(len(f), -1)),
            ("mean", lambda f: f.mean(1)),
        ]:
            neighbors = NeighborDistance(5)
            parts[name] = (neighbors.fit(fn(f_train)), neighbors.score(fn(f_test)))
        zs = {k: z(*v) for k, v in parts.items()}
        base = ["elbo", "latent_knn", "transformation"]
        combos = {
            "auto": base + ["transformation_knn"],
            "auto_concat": base + ["concat"],
            "auto_mean": base + ["mean"],
            "auto_both": base + ["transformation_knn", "concat"],
            "concat": ["concat"],
            "mean": ["mean"],
        }
        aucs = {
            k: 100 * roc_auc_score(y, sum(zs[p] for p in ps))
            for k, ps in combos.items()
        }
        with open(args.out, "a") as f:
            f.write(
                json.dumps({"class": c, "auc": aucs, "fit_seconds": seconds}) + "\n"
            )
        print(
            c, {k: round(v, 2) for k, v in aucs.items()}, round(seconds, 1), flush=True
        )


if __name__ == "__main__":
    main()
