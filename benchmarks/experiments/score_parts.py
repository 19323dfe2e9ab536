"""Which score part survives anomalies in the training set: one fit, every variant.

For each one-class Fashion-MNIST class and training contamination, fits one
``VAEOutlierDetector`` whose ``score_type`` is a tuple of every part studied
(the ELBO, the transformation log-probability, and the latent and feature
nearest-neighbour distances at several neighbourhood sizes), then sums the
standardised parts (``score_parts``) into each candidate score. A
standardised sum of parts is what ``score_type`` would give for that tuple,
and the networks are the same whatever the tuple holds (the VAE and the
transformation classifier always train, from the same seed), so every row of
a class comes from the same fit. Appends one JSON line per (class, level) to
``OUT/NAME.jsonl`` and skips the ones there. With ``--normal-classes`` the
normal data are those classes together (the benchmark's multi-class
protocol, 5% of the test set anomalies) instead of one class at a time.
``summarize`` prints each candidate's mean ROC-AUC per level.

    python -m benchmarks score_parts run --classes 0 2 5 6 8 9 --levels 0 0.1
    python -m benchmarks score_parts run --normal-classes 0 1 2 3 4 \\
        --max-train-per-class 2000 --levels 0.05 --name multi_class
"""

import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist, normal_classes_split, one_class_split
from skvae.terms import NeighborScore, OutputScore

from .._shared import append_jsonl, read_jsonl

NEIGHBORS = (5, 20, 50, 100, 200, 400)


def parts():
    """The tuple of named parts one fit scores with."""
    named = [("elbo", OutputScore("elbo")), ("t", OutputScore("transformation"))]
    for k in (*NEIGHBORS, "auto"):
        named.append((f"lk{k}", NeighborScore("latent_means", k)))
        named.append((f"tk{k}", NeighborScore("transformation_features", k)))
    return named


def candidates():
    """Candidate scores: name -> the parts it sums."""
    sums = {"elbo": ["elbo"], "transformation": ["t"]}
    for k in (*NEIGHBORS, "auto"):
        sums[f"latent_knn_{k}"] = [f"lk{k}"]
        sums[f"tknn_{k}"] = [f"tk{k}"]
        sums[f"all_{k}"] = ["elbo", f"lk{k}", "t", f"tk{k}"]
        sums[f"noelbo_{k}"] = [f"lk{k}", "t", f"tk{k}"]
    return sums


def split(args, train, test, normal, level):
    """The benchmark's split: one class (an int) or several normal classes."""
    data = (train.images, train.target, test.images, test.target)
    if isinstance(normal, int):
        return one_class_split(
            *data,
            inlier_class=normal,
            train_contamination=level,
            random_state=np.random.RandomState([args.seed, normal]),
        )
    return normal_classes_split(
        *data,
        normal_classes=normal,
        max_train_per_class=args.max_train_per_class,
        train_contamination=level,
        random_state=np.random.RandomState(args.seed),
    )


def add_arguments(parser):
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--normal-classes", type=int, nargs="+", default=None)
    parser.add_argument("--max-train-per-class", type=int, default=None)
    parser.add_argument("--data-home", default=None)
    add_summary_arguments(parser)


def add_summary_arguments(parser):
    parser.add_argument("--name", default="one_class", help="records OUT/NAME.jsonl")


def run(args):
    train = load_fashion_mnist(args.data_home, subset="train")
    test = load_fashion_mnist(args.data_home, subset="test")
    out = Path(args.out) / f"{args.name}.jsonl"
    done = {
        (json.dumps(r["class"]), r["contamination"], r["seed"]) for r in read_jsonl(out)
    }
    groups = [args.normal_classes] if args.normal_classes else args.classes
    for normal in groups:
        for level in args.levels:
            key = normal if isinstance(normal, int) else list(normal)
            if (json.dumps(key), level, args.seed) in done:
                continue
            X_fit, X_eval, is_inlier = split(args, train, test, normal, level)
            start = time.perf_counter()
            detector = VAEOutlierDetector(
                score_type=tuple(term for _, term in parts()),
                random_state=args.seed,
            ).fit(X_fit)
            scored = list(detector.score_parts(X_eval).values())
            by_name = dict(zip((name for name, _ in parts()), scored, strict=True))
            record = {
                "class": key,
                "contamination": level,
                "seed": args.seed,
                "seconds": round(time.perf_counter() - start, 1),
            }
            for name, summed in candidates().items():
                score = sum(by_name[part] for part in summed)
                record[name] = round(100 * roc_auc_score(is_inlier, score), 2)
                ap = average_precision_score(1 - is_inlier, -score)
                record[f"{name}_ap"] = round(100 * ap, 2)
            append_jsonl(out, record)
            print(key, level, record["noelbo_auto"], flush=True)


def summarize(args):
    from .contamination import probe_table

    text, classes = probe_table(Path(args.out) / f"{args.name}.jsonl")
    print(f"### Score parts (classes {classes})\n\n{text}")
