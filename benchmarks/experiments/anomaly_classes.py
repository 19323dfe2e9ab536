"""Which kinds of anomaly each method misses: ROC-AUC per anomaly class.

On the several-normal-classes splits of ``python -m skvae.benchmark`` the
anomalies are the other classes' images, and a split's ROC-AUC mixes them.
This fits the default detector (``--params``, seed ``--seed``) and the
baselines that lead on those splits (``--methods``, as
``python -m skvae.benchmark`` names them) once per split, and records each
method's ROC-AUC over all anomalies and over each anomaly class alone (the
normal rows against that class's anomalies), with how many anomalies of the
class the test set holds: a class of a handful of rows moves a split's
ROC-AUC by whole points on its own. The skvae rows include the default's
parts, ``skvae[PART]``. One JSON line per split goes to ``OUT/NAME.jsonl``;
splits already there are skipped.

    python -m benchmarks anomaly_classes run --name fmnist_first_five_5 -- \\
        --dataset fashion-mnist --protocol multi-class \\
        --normal-classes 0 1 2 3 4 --splits 1 --train-contamination 0.05 \\
        --max-train-per-class 2000
    python -m benchmarks anomaly_classes summarize --name fmnist_first_five_5
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark import METHODS
from skvae.datasets import load_digit_images, load_fashion_mnist

from .._shared import (
    add_benchmark_options,
    add_params,
    append_jsonl,
    read_jsonl,
    unfinished_splits,
)

DEFAULT_METHODS = ("skvae", "isolation-forest", "lof")


def add_summary_arguments(parser):
    parser.add_argument("--name", default="anomaly_classes", help="OUT/NAME.jsonl")


def add_arguments(parser):
    add_summary_arguments(parser)
    add_params(parser)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(DEFAULT_METHODS),
        help="methods of python -m skvae.benchmark (skvae takes --params)",
    )
    add_benchmark_options(parser)


def load_test_images(options):
    """The test images and classes of the benchmark options' data set."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dataset")
    parser.add_argument("--data-home")
    args, _ = parser.parse_known_args(options)
    if args.dataset == "fashion-mnist":
        test = load_fashion_mnist(args.data_home, subset="test")
    elif args.dataset == "digits":
        test = load_digit_images(subset="test")
    else:
        raise SystemExit("anomaly_classes needs --dataset fashion-mnist or digits.")
    return test.images, test.target


def class_of_images(options):
    """``{image bytes: class}`` of the test set's images.

    The benchmark's splits give only which rows are normal; a row's class is
    that of the identical test image.
    """
    X_test, y_test = load_test_images(options)
    return {
        row.tobytes(): int(label)
        for row, label in zip(_flat32(X_test), y_test, strict=True)
    }


def eval_labels(class_of, X_eval):
    """The class of each row of ``X_eval`` (-1 for a row not in ``class_of``)."""
    return np.array([class_of.get(row.tobytes(), -1) for row in _flat32(X_eval)])


def _flat32(X):
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32).reshape(len(X), -1))


def per_class_roc_auc(scores, is_inlier, labels):
    """``{class: (ROC-AUC, n_anomalies)}`` of the normal rows against each class."""
    out = {}
    for label in np.unique(labels[is_inlier == 0]):
        keep = (is_inlier == 1) | (labels == label)
        n_anomalies = int(np.sum((labels == label) & (is_inlier == 0)))
        auc = roc_auc_score(is_inlier[keep], scores[keep])
        out[str(label)] = (round(100 * auc, 2), n_anomalies)
    return out


def method_scores(method, X_fit, X_eval, params, seed):
    """``{name: scores}`` of one method of ``python -m skvae.benchmark``.

    ``skvae`` is ``VAEOutlierDetector(**params)``: its score and each part.
    """
    if method != "skvae":
        results = METHODS[method](X_fit, X_eval, epochs=None, random_state=seed)
        return {name: np.asarray(result.scores) for name, result in results.items()}
    detector = VAEOutlierDetector(**params, random_state=seed).fit(X_fit)
    parts = detector.score_parts(X_eval)
    scores = {f"skvae[{part}]": values for part, values in parts.items()}
    if len(parts) > 1:
        scores["skvae[auto]"] = sum(parts.values())
    return scores


def run(args):
    out = Path(args.out) / f"{args.name}.jsonl"
    class_of = class_of_images(args.options)
    splits = unfinished_splits(out, args.options)
    for split, description, X_fit, X_eval, is_inlier in splits:
        labels = eval_labels(class_of, X_eval)
        record = {
            "split": split,
            "normal": [int(c) for c in description.get("normal", [])],
            "seed": args.seed,
            "params": args.params,
            "benchmark_options": args.options,
            "methods": {},
        }
        for method in args.methods:
            for name, scores in method_scores(
                method, X_fit, X_eval, args.params, args.seed
            ).items():
                record["methods"][name] = {
                    "roc_auc": round(100 * roc_auc_score(is_inlier, scores), 2),
                    "per_class": per_class_roc_auc(scores, is_inlier, labels),
                }
        append_jsonl(out, record)
        totals = {name: result["roc_auc"] for name, result in record["methods"].items()}
        print(split, totals, flush=True)


def summarize(args):
    for record in read_jsonl(Path(args.out) / f"{args.name}.jsonl"):
        methods = record["methods"]
        counts = next(iter(methods.values()))["per_class"]
        classes = sorted(counts, key=int)
        print(f"\nsplit {record['split']}, normal classes {record['normal']}\n")
        header = " | ".join(f"{c} (n={counts[c][1]})" for c in classes)
        print(f"| method | all anomalies | {header} |")
        print("|---|---|" + "---|" * len(classes))
        for name, result in sorted(methods.items(), key=lambda kv: -kv[1]["roc_auc"]):
            cells = " | ".join(f"{result['per_class'][c][0]:.1f}" for c in classes)
            print(f"| {name} | {result['roc_auc']:.2f} | {cells} |")
