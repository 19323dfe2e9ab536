"""Scoring fewer transformed copies: what the classifier's parts lose for the cost.

The default image score reads the transformation classifier on all 8
transformed copies of a sample (4 quarter turns, each mirrored or not): 8 of
its passes per scored image, most of the default's scoring time (issue 33).
This fits the default ``VAEOutlierDetector`` once per split of a
``python -m skvae.benchmark`` command (the same splits, through
``skvae.benchmark.benchmark_splits``), then recomputes its two classifier
parts from a subset of the copies (the mean log-probability of the right
transformation and the neighbour distance of the mean features over the
subset, standardised as the detector does, the 3% neighbourhood of
``n_neighbors="auto"``) and adds the detector's own ``latent_knn`` part.
``all8`` reproduces the default's score; ``*_notr`` leaves the
log-probability part out; ``*+elbo`` adds the ELBO, standardised likewise
(the fit's ``score_type`` also holds it, which changes neither network).
Appends one JSON line per split to ``OUT/NAME.jsonl`` and skips those there.

    python -m benchmarks scored_copies run --name one_class_00 -- \\
        --dataset fashion-mnist
    python -m benchmarks scored_copies run --name digits_random -- \\
        --dataset digits --protocol multi-class --splits 4 --train-contamination 0.05
    python -m benchmarks scored_copies summarize --names one_class_00 [--ap]
"""

import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import NearestNeighbors
from torch.nn import functional as F

from skvae import VAEOutlierDetector
from skvae.benchmark import benchmark_splits
from skvae.nn import transform_images
from skvae.terms import auto_n_neighbors

from .._shared import add_benchmark_options, append_jsonl, read_jsonl

# Which of the 8 copies (transform_images' indices) each candidate scores.
SUBSETS = {
    "all8": tuple(range(8)),
    "rot4": (0, 1, 2, 3),
    "id_flip": (0, 4),
    "id_rot180": (0, 2),
    "id": (0,),
}
PASS_ROWS = 512
# The default image score's parts (score_type="auto") when this ran; the
# candidates score copies by the right transformation's log-probability.
DEFAULT_PARTS = ("latent_knn", "transformation", "transformation_knn")


def add_summary_arguments(parser):
    parser.add_argument("--name", default="scored_copies", help="OUT/NAME.jsonl")
    parser.add_argument("--names", nargs="+", default=None, help="summarize these")
    parser.add_argument(
        "--ap",
        action="store_true",
        help="summarize average precision (anomalies positive), not ROC-AUC",
    )


def add_arguments(parser):
    add_summary_arguments(parser)
    add_benchmark_options(parser)


def images(X):
    """Rows as a float tensor of square one-channel images in the detector's units."""
    X = np.asarray(X)
    scale = 255.0 if X.dtype == np.uint8 else 1.0
    x = torch.as_tensor(X.reshape(len(X), -1).astype(np.float32) / scale)
    side = math.isqrt(x.shape[1])
    return x.view(len(X), 1, side, side)


def copy_outputs(classifier, X):
    """Per copy: log p(right transformation) ``(n, 8)`` and features ``(n, 8, d)``."""
    x_all = images(X)
    log_probs, features = [], []
    with torch.no_grad():
        for start in range(0, len(x_all), PASS_ROWS):
            x = x_all[start : start + PASS_ROWS]
            embedded = [classifier.embed(transform_images(x, t, 8)) for t in range(8)]
            log_probs.append(
                torch.stack(
                    [
                        F.log_softmax(classifier.out(e), dim=1)[:, t]
                        for t, e in enumerate(embedded)
                    ],
                    dim=1,
                )
            )
            features.append(torch.stack(embedded, dim=1))
    return torch.cat(log_probs).numpy(), torch.cat(features).numpy()


def neighbor_scores(train, test, k):
    """Minus the mean distance to the k nearest training rows (standardised)."""
    mean, std = train.mean(0), train.std(0) + 1e-12
    train, test = (train - mean) / std, (test - mean) / std
    index = NearestNeighbors(n_neighbors=k + 1).fit(train)
    on_train = index.kneighbors(train)[0][:, 1:].mean(1)  # never its own neighbour
    return -on_train, -index.kneighbors(test, n_neighbors=k)[0].mean(1)


def standardised(train_scores, test_scores):
    return (test_scores - train_scores.mean()) / train_scores.std()


def score_split(X_fit, X_eval, is_inlier, seed):
    """One fit; ROC-AUC and AP of each candidate on the split."""
    start = time.perf_counter()
    score_type = (*DEFAULT_PARTS, "elbo")
    detector = VAEOutlierDetector(score_type=score_type, random_state=seed)
    parts = detector.fit(X_fit).score_parts(X_eval)
    training = np.ones(len(X_fit), dtype=bool)
    training[detector.calibration_indices_] = False
    classifier = detector.transformation_net_.module_.eval()
    train_lp, train_features = copy_outputs(classifier, X_fit[training])
    eval_lp, eval_features = copy_outputs(classifier, X_eval)
    k = auto_n_neighbors(int(training.sum()))
    record = {"fit_and_score_seconds": round(time.perf_counter() - start, 1)}
    for name, copies in SUBSETS.items():
        copies = list(copies)
        log_prob = standardised(train_lp[:, copies].mean(1), eval_lp[:, copies].mean(1))
        knn = standardised(
            *neighbor_scores(
                train_features[:, copies].mean(1), eval_features[:, copies].mean(1), k
            )
        )
        for candidate, score in (
            (name, parts["latent_knn"] + log_prob + knn),
            (f"{name}_notr", parts["latent_knn"] + knn),
            (f"{name}+elbo", parts["latent_knn"] + log_prob + knn + parts["elbo"]),
        ):
            record[candidate] = round(100 * roc_auc_score(is_inlier, score), 2)
            ap = average_precision_score(1 - is_inlier, -score)
            record[f"{candidate}_ap"] = round(100 * ap, 2)
    default = sum(parts[name] for name in DEFAULT_PARTS)
    record["default"] = round(100 * roc_auc_score(is_inlier, default), 2)
    return record


def run(args):
    options = args.options
    out = Path(args.out) / f"{args.name}.jsonl"
    done = {r["split"] for r in read_jsonl(out)}
    for split, _, X_fit, X_eval, is_inlier in benchmark_splits(options):
        if split in done:
            continue
        record = {"split": split, "seed": args.seed, "benchmark_options": options}
        record.update(score_split(X_fit, X_eval, is_inlier, args.seed))
        append_jsonl(out, record)
        print(split, record["default"], record["all8"], record["id"], flush=True)


def summarize(args):
    names = args.names or [args.name]
    candidates = [
        *SUBSETS,
        *(f"{name}_notr" for name in SUBSETS),
        *(f"{name}+elbo" for name in SUBSETS),
    ]
    print("| splits | n | " + " | ".join(candidates) + " |")
    print("|---|---|" + "---|" * len(candidates))
    for name in names:
        records = read_jsonl(Path(args.out) / f"{name}.jsonl")
        # Runs before the +elbo candidates existed leave their cells empty.
        keys = [f"{c}_ap" if args.ap else c for c in candidates]
        means = [[r[key] for r in records if key in r] for key in keys]
        cells = " | ".join(f"{np.mean(m):.2f}" if m else "" for m in means)
        print(f"| {name} | {len(records)} | {cells} |")
