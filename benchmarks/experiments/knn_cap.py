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

    python -m benchmarks knn_cap run
"""

from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist, normal_classes_split, one_class_split
from skvae.scoring import per_sample_outputs
from skvae.terms import NeighborScore, StandardizedSum

from .._shared import append_jsonl, environment, read_jsonl

RESULTS_FILE = "knn_cap.jsonl"

CAPS = (None, 20_000, 10_000, 4_000, 2_000, 1_000)


def add_arguments(parser):
    parser.add_argument("--one-class", type=int, nargs="*", default=[0, 5, 6, 8])
    parser.add_argument(
        "--normal-classes", type=int, nargs="*", default=[0, 1, 2, 3, 4]
    )


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


def run_split(name, X_train, X_test, is_inlier, seed):
    detector = VAEOutlierDetector(random_state=seed).fit(X_train)
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


def run(args):
    train = load_fashion_mnist(subset="train")
    test = load_fashion_mnist(subset="test")
    data = (train.images, train.target, test.images, test.target)
    splits = {
        f"one-class {c}": one_class_split(*data, inlier_class=c) for c in args.one_class
    }
    X_fit, X_eval, is_inlier = normal_classes_split(
        *data, normal_classes=args.normal_classes, random_state=args.seed
    )
    splits[f"normal {args.normal_classes}"] = (X_fit, X_eval, is_inlier)
    out = Path(args.out) / RESULTS_FILE
    done = {record["split"] for record in read_jsonl(out)}
    for name, split in splits.items():
        if name in done:
            continue
        for row in run_split(name, *split, args.seed):
            append_jsonl(out, {**row, "environment": environment()})
    summarize(args)


def summarize(args):
    records = read_jsonl(Path(args.out) / RESULTS_FILE)
    caps = sorted({r["cap"] for r in records if r["cap"] is not None}, reverse=True)
    print(
        "| split (rows indexed without a cap) | no cap | "
        + " | ".join(f"{cap:,}" for cap in caps)
        + " |"
    )
    print("|---" * (len(caps) + 2) + "|")
    for name in dict.fromkeys(r["split"] for r in records):
        rows = {r["cap"]: r for r in records if r["split"] == name}
        cells = [f"{rows[cap]['roc_auc']:.2f}" if cap in rows else "" for cap in caps]
        print(
            f"| {name} ({rows[None]['n_fit']:,}) | {rows[None]['roc_auc']:.2f} | "
            + " | ".join(cells)
            + " |"
        )
