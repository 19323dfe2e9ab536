"""VAEClassifier against semi-supervised baselines on Fashion-MNIST classes 0-4.

The protocol of issue 3: the training images of classes 0-4 (T-shirt/top,
Trouser, Pullover, Dress, Coat), of which a fixed, class-balanced subset keeps
its label (2,000 = 400 per class, or 100 = 20 per class) and all others get
``y = -1``; test accuracy on those classes' 5,000 test images.

Methods (all in one run):

- ``VAEClassifier(head_mode="joint")`` and ``(head_mode="frozen")``, trained on
  all the training images of the five classes;
- ``LogisticRegression`` on the raw pixels (scaled to [0, 1]) of the labeled
  images only;
- ``LabelSpreading`` with a kNN kernel on the pixels of all training images
  (labeled and unlabeled).

Example::

    python -m benchmarks semi_supervised run --n-labels 2000 100 --max-epochs 3

Results: ``OUT/NAME.md`` and ``OUT/NAME.json`` (``--name``, default
``semi_supervised``), rewritten after every method.
"""

import ast
import json
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import LabelSpreading

from skvae import VAEClassifier
from skvae.datasets import load_fashion_mnist

from .._shared import environment, read_json, write_json

CLASSES = (0, 1, 2, 3, 4)
METHODS = ("logreg", "labelspreading", "joint", "frozen")


def add_summary_arguments(parser):
    parser.add_argument("--name", default="semi_supervised", help="OUT/NAME.json")


def add_arguments(parser):
    add_summary_arguments(parser)
    parser.add_argument("--n-labels", type=int, nargs="+", default=[2000, 100])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument(
        "--frozen-max-epochs",
        type=int,
        default=None,
        help="max_epochs of the frozen mode (default: --max-epochs)",
    )
    parser.add_argument("--augment", action="store_true")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--classifier-weight", type=float, default=None)
    parser.add_argument("--labeled-fraction", type=float, default=None)
    parser.add_argument("--unlabeled-weight", type=float, default=None)
    parser.add_argument("--confidence-threshold", type=float, default=None)
    parser.add_argument(
        "--n-unlabeled",
        type=int,
        default=None,
        help="keep only this many unlabeled training images (default: all)",
    )
    parser.add_argument(
        "--n-test", type=int, default=None, help="test subset (default: all)"
    )
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="other VAEClassifier parameters, e.g. hidden_dims=(32,64) beta=0.5 "
        "(values are Python literals)",
    )
    parser.add_argument("--ls-neighbors", type=int, default=7)
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--verbose", type=int, default=1)


def parse_assignments(assignments):
    """Map ``["name=literal", ...]`` to a dict of parameter values."""
    params = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep:
            raise SystemExit(f"--set expects NAME=VALUE, got {assignment!r}")
        params[name] = ast.literal_eval(value)
    return params


def load(args):
    X, y = load_fashion_mnist(args.data_home, subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(args.data_home, subset="test", return_X_y=True)
    keep, keep_test = np.isin(y, CLASSES), np.isin(y_test, CLASSES)
    X, y, X_test, y_test = X[keep], y[keep], X_test[keep_test], y_test[keep_test]
    if args.n_test is not None and args.n_test < len(X_test):
        idx = np.random.RandomState(args.seed).choice(
            len(X_test), args.n_test, replace=False
        )
        X_test, y_test = X_test[idx], y_test[idx]
    return X, y, X_test, y_test


def hide_labels(X, y, n_labels, args):
    """Keep ``n_labels / 5`` labels per class (fixed seed); -1 elsewhere."""
    rng = np.random.RandomState(args.seed)
    labeled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), n_labels // len(CLASSES), replace=False)
            for c in CLASSES
        ]
    )
    y_partial = np.full_like(y, -1)
    y_partial[labeled] = y[labeled]
    if args.n_unlabeled is not None:
        unlabeled = np.flatnonzero(y_partial == -1)
        drop = rng.choice(
            unlabeled, max(len(unlabeled) - args.n_unlabeled, 0), replace=False
        )
        keep = np.setdiff1d(np.arange(len(y)), drop)
        X, y_partial = X[keep], y_partial[keep]
    return X, y_partial


def make_method(name, args):
    if name in ("joint", "frozen"):
        extra = {}
        if args.classifier_weight is not None:
            extra["classifier_weight"] = args.classifier_weight
        for param in ("labeled_fraction", "unlabeled_weight", "confidence_threshold"):
            if getattr(args, param) is not None:
                extra[param] = getattr(args, param)
        max_epochs = args.max_epochs
        if name == "frozen" and args.frozen_max_epochs is not None:
            max_epochs = args.frozen_max_epochs
        params = {
            "latent_dim": args.latent_dim,
            "head_mode": name,
            "augment": args.augment,
            "max_epochs": max_epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "random_state": args.seed,
            "verbose": args.verbose,
            **extra,
        }
        # --set comes last, so it may override anything (e.g. the model's
        # random_state while the labeled subset keeps --seed).
        return VAEClassifier(**{**params, **parse_assignments(args.set)})
    if name == "logreg":
        return LogisticRegression(max_iter=2000)
    if name == "labelspreading":
        return LabelSpreading(kernel="knn", n_neighbors=args.ls_neighbors)
    raise ValueError(f"unknown method {name!r}; choose from {METHODS}")


def run_method(name, args, X, y_partial, X_test, y_test):
    model = make_method(name, args)
    if name in ("logreg", "labelspreading"):
        # The classical baselines get pixels in [0, 1]; logistic regression
        # sees only the labeled rows.
        X, X_test = X / 255.0, X_test / 255.0
        if name == "logreg":
            X, y_partial = X[y_partial != -1], y_partial[y_partial != -1]
    start = time.perf_counter()
    model.fit(X, y_partial)
    fit_seconds = time.perf_counter() - start
    return {
        "method": name,
        "n_labels": int(np.sum(y_partial != -1)),
        "n_train": len(X),
        "accuracy": float(model.score(X_test, y_test)),
        "fit_seconds": fit_seconds,
        "params": {k: str(v) for k, v in model.get_params().items()},
    }


def markdown(rows):
    lines = [
        "| method | labels | training images | test accuracy | fit seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['n_labels']} | {r['n_train']} "
            f"| {r['accuracy']:.3f} | {r['fit_seconds']:.0f} |"
        )
    return "\n".join(lines)


def run(args):
    X, y, X_test, y_test = load(args)
    print(f"train {X.shape}, test {X_test.shape}", flush=True)
    out = Path(args.out) / args.name
    wall = time.perf_counter()
    rows = []
    splits = {n: hide_labels(X, y, n, args) for n in args.n_labels}
    # Method by method, so the quick baselines come first in a long run.
    for name in args.methods:
        for n_labels in args.n_labels:
            X_fit, y_partial = splits[n_labels]
            rows.append(run_method(name, args, X_fit, y_partial, X_test, y_test))
            print(json.dumps(rows[-1]), flush=True)
            # Write after every method so a long run leaves partial results.
            report = {
                "rows": rows,
                "wall_seconds": time.perf_counter() - wall,
                "environment": environment(),
            }
            out.with_suffix(".md").write_text(markdown(rows) + "\n")
            write_json(out.with_suffix(".json"), report)
    summarize(args)


def summarize(args):
    report = read_json((Path(args.out) / args.name).with_suffix(".json"))
    print(markdown(report["rows"]))
    print(f"wall time {report['wall_seconds']:.0f} s")
