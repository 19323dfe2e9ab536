"""What a cap on the nearest-neighbour index costs in ROC-AUC.

The detector's nearest-neighbour terms (``latent_knn``, ``transformation_knn``)
index at most ``max_points`` training rows (``skvae.terms.NeighborScore``),
a random subset of larger training sets, so that memory and search time stay
bounded. This fits the default ``VAEOutlierDetector`` once per split, then
refits only its score (the standardised sum of its four terms) on the same
training outputs with several caps, and reports the test ROC-AUC of each
against the uncapped index, with the index's memory.

Splits: one-class Fashion-MNIST (4,800 training rows after calibration;
caps below that), and five normal classes (24,000 rows; the default cap
binds).

    OMP_NUM_THREADS=1 python benchmarks/knn_cap.py \\
        --out benchmarks/results/knn_cap.jsonl
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from _environment import environment
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist, normal_classes_split, one_class_split
from skvae.scoring import per_sample_outputs
from skvae.terms import NeighborScore, StandardizedSum

CAPS = (None, 20_000, 10_000, 4_000, 2_000, 1_000)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--one-class", type=int, nargs="*", default=[0, 5, 6, 8])
    parser.add_argument(
        "--normal-classes", type=int, nargs="*", default=[0, 1, 2, 3, 4]
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("knn_cap.jsonl"))
    return parser.parse_args(argv)


def outputs_of(detector, X):
    """The per-sample outputs the default score reads, for rows ``X``."""
    flat = X.reshape(len(X), -1).astype(np.float32) / 255
    return per_sample_outputs(
        detector.net_.module_,
        flat,
        transformation_module=detector.transformation_net_.module_,
        input_shape=detector.input_shape_,
    )


def with_cap(score_term, cap):
    """The unfitted default score with every neighbour index capped at ``cap``."""
    parts = [
        (
            name,
            clone(term).set_params(max_points=cap)
            if isinstance(term, NeighborScore)
            else term,
        )
        for name, term in score_term.get_params()["terms"]
    ]
    return StandardizedSum(parts)


def run_split(name, X_train, X_test, is_inlier):
    detector = VAEOutlierDetector(random_state=0).fit(X_train)
    X_fit = np.delete(X_train, detector.calibration_indices_, axis=0)
    train, test = outputs_of(detector, X_fit), outputs_of(detector, X_test)
    rows = []
    for cap in CAPS:
        if cap is not None and cap >= len(X_fit):
            continue  # indexes every row: the same as no cap
        term = with_cap(detector.score_term_, cap)
        term.fit(train)
        index_bytes = sum(
            part.index_.points_.nbytes
            for _, part in term.terms_
            if isinstance(part, NeighborScore)
        )
        rows.append(
            {
                "split": name,
                "n_fit": len(X_fit),
                "cap": cap,
                "roc_auc": 100 * roc_auc_score(is_inlier, term.score(test)),
                "index_mb": index_bytes / 2**20,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    train = load_fashion_mnist(subset="train")
    test = load_fashion_mnist(subset="test")
    data = (train.images, train.target, test.images, test.target)
    splits = {
        f"one-class {c}": one_class_split(*data, inlier_class=c) for c in args.one_class
    }
    X_fit, X_eval, is_inlier = normal_classes_split(
        *data, normal_classes=args.normal_classes, random_state=0
    )
    splits[f"normal {args.normal_classes}"] = (X_fit, X_eval, is_inlier)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["split"] for line in args.out.read_text().splitlines()}
    for name, split in splits.items():
        if name in done:
            continue
        rows = run_split(name, *split)
        with args.out.open("a") as out:
            for row in rows:
                out.write(json.dumps({**row, "environment": environment(args)}) + "\n")


if __name__ == "__main__":
    main()
