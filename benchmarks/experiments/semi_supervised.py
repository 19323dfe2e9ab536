"""VAEClassifier against semi-supervised baselines (issues 3 and 37).

Fashion-MNIST (default): the training images of classes 0-4 (T-shirt/top,
Trouser, Pullover, Dress, Coat), of which a fixed, class-balanced subset keeps
its label (2,000 = 400 per class, or 100 = 20 per class) and all others get
``y = -1``; test accuracy on those classes' 5,000 test images. ``--dataset
digits``: scikit-learn's 8x8 digits, all ten classes, the split of
``skvae.datasets.load_digit_images`` (1,347 training, 450 test images).
``--seed`` draws the labeled subset and seeds every model.

Methods (all in one run):

- ``VAEClassifier(head_mode="joint")`` and ``(head_mode="frozen")``, trained on
  all the training images;
- ``LogisticRegression`` on the raw pixels (scaled to [0, 1]) of the labeled
  images only;
- ``LabelSpreading`` with a kNN kernel on the pixels of all training images
  (labeled and unlabeled);
- ``SelfTrainingClassifier`` around that logistic regression, on all
  training images (scikit-learn's defaults: threshold 0.75, 10 rounds);
- ``cnn``: a small CNN (the VAEClassifier's encoder widths, two conv blocks,
  a dense layer with dropout) trained with skorch on the labeled images
  alone, 1,500 Adam steps (the VAE's ``max_epochs="auto"`` budget), no
  augmentation (the VAEClassifier's default has none either).

A method named ``NAME+temperature`` (e.g. ``joint+temperature``) holds out
``--calibration-fraction`` of the labeled images (stratified, seeded; their
pixels stay in the training set as unlabeled images), fits ``NAME`` on the
rest and scales its probabilities by one temperature fitted on the held-out
labels: ``CalibratedClassifierCV(FrozenEstimator(model),
method="temperature")``, scikit-learn's way to calibrate a fitted model.
(``CalibratedClassifierCV`` with its own folds would take the unlabeled
rows' ``-1`` for a class.)

Besides accuracy and fit seconds each row holds the test predictions'
reliability bins (15 equal-width bins of the top-class probability: count,
mean confidence, accuracy) and their expected calibration error (ECE).

Example::

    python -m benchmarks semi_supervised run --n-labels 2000 100 --max-epochs 3
    python -m benchmarks semi_supervised summarize --names NAME_seed0 NAME_seed1 \\
        --plot docs/images/calibration.png

Results: ``OUT/NAME.md`` and ``OUT/NAME.json`` (``--name``, default
``semi_supervised``), rewritten after every method; a rerun of the same name
keeps the finished (method, labels) rows and runs the others.
"""

import ast
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from skorch import NeuralNetClassifier
from torch import nn

from skvae import VAEClassifier
from skvae.datasets import load_digit_images, load_fashion_mnist

from .._shared import environment, read_json, write_json

FASHION_MNIST_CLASSES = (0, 1, 2, 3, 4)
METHODS = ("logreg", "labelspreading", "selftraining", "cnn", "joint", "frozen")
CALIBRATION_BINS = 15
# Bins with fewer test rows (pooled over the runs) are left out of the
# reliability diagram: their accuracy is noise.
MIN_PLOTTED_BIN_ROWS = 20
# The diagram's name of each method.
METHOD_LABELS = {
    "joint": "VAEClassifier",
    "frozen": "VAEClassifier (frozen)",
    "logreg": "LogisticRegression",
    "labelspreading": "LabelSpreading",
    "selftraining": "SelfTraining",
    "cnn": "small CNN",
}
# The CNN baseline's optimizer steps: the VAE's max_epochs="auto" budget.
CNN_STEPS = 1500
# A method name with this suffix is calibrated on held-out labels.
CALIBRATED = "+temperature"


def add_summary_arguments(parser):
    parser.add_argument("--name", default="semi_supervised", help="OUT/NAME.json")
    parser.add_argument(
        "--names",
        nargs="+",
        default=None,
        help="summarize these runs together (seeds): mean and spread per row",
    )
    parser.add_argument("--plot", default=None, help="reliability diagram PNG")


def add_arguments(parser):
    add_summary_arguments(parser)
    parser.add_argument(
        "--dataset", choices=["fashion-mnist", "digits"], default="fashion-mnist"
    )
    parser.add_argument("--n-labels", type=int, nargs="+", default=[2000, 100])
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument(
        "--max-epochs",
        type=ast.literal_eval,
        default=3,
        help='max_epochs of the VAEClassifier (an int or "auto")',
    )
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
    parser.add_argument(
        "--calibration-fraction",
        type=float,
        default=0.2,
        help="labeled images held out to calibrate the NAME+temperature methods",
    )
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
    """Training and test images as flat rows, and their labels."""
    if args.dataset == "digits":
        train = load_digit_images(subset="train")
        test = load_digit_images(subset="test")
        X, y, X_test, y_test = train.data, train.target, test.data, test.target
    else:
        X, y = load_fashion_mnist(args.data_home, subset="train", return_X_y=True)
        X_test, y_test = load_fashion_mnist(
            args.data_home, subset="test", return_X_y=True
        )
        keep = np.isin(y, FASHION_MNIST_CLASSES)
        keep_test = np.isin(y_test, FASHION_MNIST_CLASSES)
        X, y, X_test, y_test = X[keep], y[keep], X_test[keep_test], y_test[keep_test]
    if args.n_test is not None and args.n_test < len(X_test):
        idx = np.random.RandomState(args.seed).choice(
            len(X_test), args.n_test, replace=False
        )
        X_test, y_test = X_test[idx], y_test[idx]
    return X, y, X_test, y_test


def hide_labels(X, y, n_labels, args):
    """Keep ``n_labels / n_classes`` labels per class (seeded); -1 elsewhere."""
    rng = np.random.RandomState(args.seed)
    classes = np.unique(y)
    labeled = np.concatenate(
        [
            rng.choice(np.flatnonzero(y == c), n_labels // len(classes), replace=False)
            for c in classes
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


def vae_classifier(name, args):
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


def make_method(name, args, n_features, y_partial):
    """The model of ``name`` for square images of ``n_features`` pixels."""
    if name in ("joint", "frozen"):
        return vae_classifier(name, args)
    if name == "logreg":
        return LogisticRegression(max_iter=2000)
    if name == "labelspreading":
        return LabelSpreading(kernel="knn", n_neighbors=args.ls_neighbors)
    if name == "selftraining":
        return SelfTrainingClassifier(LogisticRegression(max_iter=2000))
    if name == "cnn":
        labeled = y_partial[y_partial != -1]
        side = math.isqrt(n_features)
        return small_cnn(side, len(np.unique(labeled)), len(labeled))
    raise ValueError(f"unknown method {name!r}; choose from {METHODS}")


class SmallCNN(nn.Module):
    """Two conv blocks (conv, ReLU, 2x2 max pool), a dense layer, dropout."""

    def __init__(self, side, n_classes, channels=(32, 64), hidden=128, dropout=0.5):
        super().__init__()
        self.side = side
        layers, width = [], 1
        for out in channels:
            layers += [nn.Conv2d(width, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            width = out
        reduced = side // 2 ** len(channels)
        self.layers = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(width * reduced * reduced, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, X):
        return self.layers(X.view(len(X), 1, self.side, self.side))


def small_cnn(side, n_classes, n_labeled):
    """The CNN baseline as a skorch classifier, trained for ``CNN_STEPS`` steps."""
    batch_size = 64
    epochs = math.ceil(CNN_STEPS / math.ceil(n_labeled / batch_size))
    return NeuralNetClassifier(
        SmallCNN,
        module__side=side,
        module__n_classes=n_classes,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=batch_size,
        max_epochs=epochs,
        train_split=None,
        verbose=0,
    )


def reliability_bins(proba, predicted, y_true):
    """Per bin of top-class probability: count, mean confidence, accuracy.

    Rows without a finite probability (``LabelSpreading`` gives NaN to a
    test image whose neighbours carry no label) count as uniform.
    """
    proba = np.where(np.isfinite(proba), proba, 1.0 / proba.shape[1])
    confidence = proba.max(axis=1)
    correct = predicted == y_true
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins = []
    for b in range(CALIBRATION_BINS):
        rows = which == b
        count = int(rows.sum())
        bins.append(
            {
                "count": count,
                "confidence": float(confidence[rows].mean()) if count else None,
                "accuracy": float(correct[rows].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(bins):
    """Count-weighted mean gap between accuracy and confidence over the bins."""
    n = sum(b["count"] for b in bins)
    return sum(
        b["count"] / n * abs(b["accuracy"] - b["confidence"])
        for b in bins
        if b["count"]
    )


def held_out_labels(y_partial, fraction, seed):
    """A stratified ``fraction`` of the labeled rows (at least two per class)."""
    rng = np.random.RandomState(seed)
    held = []
    for label in np.unique(y_partial[y_partial != -1]):
        rows = np.flatnonzero(y_partial == label)
        n_held = max(2, round(fraction * len(rows)))
        held.append(rng.choice(rows, n_held, replace=False))
    return np.sort(np.concatenate(held))


def calibrated(model):
    """``model``, fitted, with one temperature to fit on held-out labels.

    The model stays as fitted, so the folds ``CalibratedClassifierCV``
    splits the held-out rows into change nothing; two of them need only
    two rows of each class (its default of five would need five).
    """
    return CalibratedClassifierCV(
        FrozenEstimator(model), method="temperature", cv=KFold(2)
    )


def run_method(name, args, X, y_partial, X_test, y_test):
    n_labels = int(np.sum(y_partial != -1))
    base = name.removesuffix(CALIBRATED)
    model = make_method(base, args, X.shape[1], y_partial)
    if base not in ("joint", "frozen"):
        # The baselines get pixels in [0, 1] as float32; the VAEClassifier
        # scales uint8 images itself.
        scale = 255.0 if X.dtype == np.uint8 else 1.0
        X = (X / scale).astype(np.float32)
        X_test = (X_test / scale).astype(np.float32)
    calibration_rows = None
    if name != base:
        fraction = args.calibration_fraction
        calibration_rows = held_out_labels(y_partial, fraction, args.seed)
        X_calibration, y_calibration = X[calibration_rows], y_partial[calibration_rows]
        y_partial = y_partial.copy()
        y_partial[calibration_rows] = -1
    labeled = y_partial != -1
    if base in ("logreg", "cnn"):
        X, y_partial = X[labeled], y_partial[labeled]
    torch.manual_seed(args.seed)  # the CNN's initial weights and batches
    start = time.perf_counter()
    model.fit(X, y_partial)
    if calibration_rows is not None:
        model = calibrated(model).fit(X_calibration, y_calibration)
    fit_seconds = time.perf_counter() - start
    proba = model.predict_proba(X_test)
    predicted = model.classes_[np.nanargmax(np.nan_to_num(proba, nan=-1.0), axis=1)]
    bins = reliability_bins(proba, predicted, y_test)
    return {
        "method": name,
        "n_labels": n_labels,
        "n_train": len(X),
        "accuracy": float(np.mean(model.predict(X_test) == y_test)),
        "ece": expected_calibration_error(bins),
        "fit_seconds": fit_seconds,
        "reliability": bins,
        "params": {k: str(v) for k, v in model.get_params().items()},
    }


def markdown(rows):
    lines = [
        "| method | labels | training images | test accuracy | ECE | fit seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ece = f"{r['ece']:.3f}" if "ece" in r else ""
        lines.append(
            f"| {r['method']} | {r['n_labels']} | {r['n_train']} "
            f"| {r['accuracy']:.3f} | {ece} | {r['fit_seconds']:.0f} |"
        )
    return "\n".join(lines)


def run(args):
    X, y, X_test, y_test = load(args)
    print(f"train {X.shape}, test {X_test.shape}", flush=True)
    out = Path(args.out) / args.name
    wall = time.perf_counter()
    rows, seconds_before = [], 0.0
    if out.with_suffix(".json").exists():
        report = read_json(out.with_suffix(".json"))
        rows, seconds_before = report["rows"], report["wall_seconds"]
    done = {(r["method"], r["n_labels"]) for r in rows}
    splits = {n: hide_labels(X, y, n, args) for n in args.n_labels}
    # Method by method, so the quick baselines come first in a long run.
    for name in args.methods:
        for n_labels in args.n_labels:
            X_fit, y_partial = splits[n_labels]
            if (name, int(np.sum(y_partial != -1))) in done:
                continue
            rows.append(run_method(name, args, X_fit, y_partial, X_test, y_test))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "reliability"}))
            # Write after every method so a long run leaves partial results.
            report = {
                "rows": rows,
                "wall_seconds": seconds_before + time.perf_counter() - wall,
                "environment": environment(),
            }
            out.with_suffix(".md").write_text(markdown(rows) + "\n")
            write_json(out.with_suffix(".json"), report)
    summarize(args)


def summarize(args):
    names = args.names or [args.name]
    reports = [read_json((Path(args.out) / n).with_suffix(".json")) for n in names]
    if len(reports) == 1:
        print(markdown(reports[0]["rows"]))
        print(f"wall time {reports[0]['wall_seconds']:.0f} s")
    else:
        print(seed_table(reports))
    if args.plot:
        plot_reliability([r["rows"] for r in reports], args.plot)
        print(f"reliability diagram: {args.plot}")


def grouped(reports):
    """Rows of several runs grouped by (method, labels), in first-run order."""
    groups = {}
    for report in reports:
        for row in report["rows"]:
            groups.setdefault((row["method"], row["n_labels"]), []).append(row)
    return groups


def seed_table(reports):
    """Per label count, best first: mean accuracy, its range, ECE, fit seconds."""
    lines = [
        "| method | labels | runs | accuracy | lowest-highest | ECE | fit s |",
        "|---|---|---|---|---|---|---|",
    ]

    def order(item):
        (_, n_labels), rows = item
        return -n_labels, -np.mean([r["accuracy"] for r in rows])

    for (method, n_labels), rows in sorted(grouped(reports).items(), key=order):
        accuracy = [r["accuracy"] for r in rows]
        ece = np.mean([r["ece"] for r in rows if "ece" in r])
        seconds = np.mean([r["fit_seconds"] for r in rows])
        lines.append(
            f"| {method_label(method)} | {n_labels} | {len(rows)} "
            f"| {np.mean(accuracy):.3f} | {min(accuracy):.3f}-{max(accuracy):.3f} "
            f"| {ece:.3f} | {seconds:.0f} |"
        )
    return "\n".join(lines)


def method_label(method):
    """The tables' and the diagram's name of ``method``."""
    base = method.removesuffix(CALIBRATED)
    return METHOD_LABELS[base] + (" + temperature" if base != method else "")


def plot_reliability(runs, path):
    """One panel per label count: accuracy against confidence, bins pooled over runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = grouped([{"rows": rows} for rows in runs])
    label_counts = sorted({n for _, n in groups}, reverse=True)
    fig, axes = plt.subplots(
        1, len(label_counts), figsize=(5.5 * len(label_counts), 5), squeeze=False
    )
    for ax, n_labels in zip(axes[0], label_counts, strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
        for (method, n), rows in groups.items():
            if n != n_labels or "reliability" not in rows[0]:
                continue
            confidence, accuracy = pooled_bins(rows)
            ece = np.mean([r["ece"] for r in rows])
            ax.plot(
                confidence,
                accuracy,
                marker="o",
                ms=3,
                lw=2.5 if method.startswith("joint") else 1.2,
                label=f"{method_label(method)} (ECE {ece:.3f})",
            )
        ax.set(
            xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-class probability)",
            ylabel="accuracy", title=f"{n_labels} labels",
        )  # fmt: skip
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def pooled_bins(rows):
    """Mean confidence and accuracy of each non-empty bin, pooled over ``rows``."""
    confidence, accuracy = [], []
    for b in range(CALIBRATION_BINS):
        count = sum(r["reliability"][b]["count"] for r in rows)
        if count < MIN_PLOTTED_BIN_ROWS:
            continue
        weighted = [r["reliability"][b] for r in rows if r["reliability"][b]["count"]]
        confidence.append(sum(w["count"] * w["confidence"] for w in weighted) / count)
        accuracy.append(sum(w["count"] * w["accuracy"] for w in weighted) / count)
    return confidence, accuracy
