"""Architecture and training length: one-class ROC-AUC against fit seconds (issue 5).

For each named configuration of ``VAEOutlierDetector`` (channel widths, number
of stride-2 blocks, kernel size, epochs) and each chosen Fashion-MNIST inlier
class, follow the one-class protocol of ``python -m skvae.benchmark``: fit on
that class's 6,000 training images, score the 10,000 test images with
``score_samples`` (the default ``score_type="elbo_mahalanobis"``), ROC-AUC
with the class as inlier. PyOD's DeepSVDD and VAE, at their defaults, run on
the same classes in the same process for comparison.

One row per configuration: MFLOPs per training image (forward + backward of
one step, ``torch.utils.flop_counter``), epochs, mean ROC-AUC over the
classes, the per-class ROC-AUCs, total fit and score seconds. Every fit is
appended to the JSON as it finishes, so an interrupted run keeps its results.
Example (about an hour on one core)::

    python -m benchmarks architecture run --classes 0 2 6 9
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark import METHODS
from skvae.datasets import load_fashion_mnist, one_class_split

from .._shared import FASHION_MNIST_SHORT_NAMES, environment, read_json, timed
from .speed import flops_per_image

RESULTS_FILE = "architecture.json"


@dataclass(frozen=True)
class Config:
    """One VAEOutlierDetector architecture and training length."""

    name: str
    hidden_dims: tuple
    kernel_size: int = 3
    max_epochs: object = "auto"

    def params(self):
        return {
            "hidden_dims": self.hidden_dims,
            "kernel_size": self.kernel_size,
            "max_epochs": self.max_epochs,
            # The VAE's architecture is compared, with the score of its time.
            "transformations": None,
            "score_type": "elbo_mahalanobis",
        }


CONFIGS = [
    Config("default", (32, 64, 128)),
    Config("narrow", (16, 32, 64)),
    Config("wide", (64, 128, 256)),
    Config("2-block", (32, 64)),
    Config("4-block", (32, 64, 128, 256)),
    Config("kernel-5", (32, 64, 128), kernel_size=5),
    Config("5-epochs", (32, 64, 128), max_epochs=5),
    Config("40-epochs", (32, 64, 128), max_epochs=40),
    Config("narrow-40-epochs", (16, 32, 64), max_epochs=40),
]
DEFAULT_CONFIGS = [
    "default",
    "narrow",
    "wide",
    "2-block",
    "kernel-5",
    "5-epochs",
    "40-epochs",
]
PYOD = {"PyOD DeepSVDD": METHODS["pyod-deepsvdd"], "PyOD VAE": METHODS["pyod-vae"]}
CLASS_NAMES = FASHION_MNIST_SHORT_NAMES


def add_arguments(parser):
    parser.add_argument("--classes", type=int, nargs="+", default=[0, 2, 6, 9])
    parser.add_argument(
        "--configs",
        nargs="+",
        default=DEFAULT_CONFIGS,
        choices=[c.name for c in CONFIGS],
        help="skvae configurations to run, by name",
    )
    parser.add_argument(
        "--no-pyod", action="store_true", help="skip PyOD DeepSVDD and VAE"
    )
    parser.add_argument("--data-home", default=None)


def run_config(config, X_inlier, X_test, random_state):
    """Fit one configuration; return its result, epochs run and MFLOPs/image."""
    detector = VAEOutlierDetector(**config.params(), random_state=random_state)
    _, fit_seconds = timed(detector.fit, X_inlier)
    scores, score_seconds = timed(detector.score_samples, X_test)
    epochs = len(detector.history_)
    batch = torch.from_numpy(X_inlier[: detector.batch_size] / np.float32(255))
    # After scoring: the count runs a training step's forward and backward.
    mflops = flops_per_image(detector.net_.module_, batch.unsqueeze(1), True) / 1e6
    return (scores, fit_seconds, score_seconds), epochs, mflops


def record(name, inlier_class, is_inlier, result, **extra):
    """``result``: (scores, fit seconds, score seconds)."""
    scores, fit_seconds, score_seconds = result
    scores = np.asarray(scores, dtype=np.float64)
    finite = bool(np.all(np.isfinite(scores)))
    return {
        "method": name,
        "inlier_class": int(inlier_class),
        "roc_auc": float(roc_auc_score(is_inlier, scores)) if finite else None,
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        **extra,
    }


def summary_rows(records, classes):
    """One row per method, in first-seen order."""
    rows = {}
    for r in records:
        row = rows.setdefault(
            r["method"],
            {
                "method": r["method"],
                "config": r.get("config"),
                "mflops_per_train_image": r.get("mflops_per_train_image"),
                "epochs": r.get("epochs"),
                "auc": {},
                "fit_seconds": 0.0,
                "score_seconds": 0.0,
            },
        )
        row["auc"][r["inlier_class"]] = r["roc_auc"]
        row["fit_seconds"] += r["fit_seconds"]
        row["score_seconds"] += r["score_seconds"]
    for row in rows.values():
        aucs = [row["auc"].get(c) for c in classes]
        complete = all(a is not None for a in aucs)
        row["mean_auc"] = float(np.mean(aucs)) if complete else None
    return list(rows.values())


def _cell(value, fmt):
    return "" if value is None else format(value, fmt)


def markdown(rows, classes):
    head = ["config", "channels", "kernel", "epochs", "MFLOP / train image"]
    head += ["mean AUC"] + [f"{c} {CLASS_NAMES[c]}" for c in classes]
    head += ["fit s (total)", "score s (total)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        config = row["config"] or {}
        cells = [
            row["method"],
            "/".join(map(str, config.get("hidden_dims", []))) or "(PyOD default)",
            str(config.get("kernel_size", "")),
            _cell(row["epochs"], "d"),
            _cell(row["mflops_per_train_image"], ".1f"),
            f"**{_cell(row['mean_auc'] and 100 * row['mean_auc'], '.2f')}**",
        ]
        cells += [
            _cell(row["auc"].get(c) and 100 * row["auc"][c], ".1f") for c in classes
        ]
        cells += [f"{row['fit_seconds']:.0f}", f"{row['score_seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write(args, records, wall_start, done):
    rows = summary_rows(records, args.classes)
    report = {
        "complete": done,
        "classes": args.classes,
        "records": records,
        "rows": rows,
        "wall_seconds": time.perf_counter() - wall_start,
        "date": time.strftime("%Y-%m-%d"),
        "environment": environment(),
    }
    out = Path(args.out) / RESULTS_FILE
    out.write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows, args.classes) + "\n")
    return rows


def run(args):
    train = load_fashion_mnist(args.data_home, subset="train")
    test = load_fashion_mnist(args.data_home, subset="test")
    configs = [c for c in CONFIGS if c.name in args.configs]
    methods = [c.name for c in configs] + ([] if args.no_pyod else list(PYOD))
    print(
        f"classes {args.classes}, methods {methods}, "
        f"{torch.get_num_threads()} torch thread(s)",
        flush=True,
    )
    wall = time.perf_counter()
    records = []
    mflops = {}
    for inlier_class in args.classes:
        X_inlier, X_test, is_inlier = one_class_split(
            train.images,
            train.target,
            test.images,
            test.target,
            inlier_class=inlier_class,
        )
        for config in configs:
            result, epochs, mflops[config.name] = run_config(
                config, X_inlier, X_test, args.seed
            )
            records.append(
                record(
                    config.name,
                    inlier_class,
                    is_inlier,
                    result,
                    config={
                        "hidden_dims": list(config.hidden_dims),
                        "kernel_size": config.kernel_size,
                        "max_epochs": config.max_epochs,
                    },
                    epochs=epochs,
                    mflops_per_train_image=mflops[config.name],
                )
            )
            print(json.dumps(records[-1]), flush=True)
            write(args, records, wall, done=False)
        if not args.no_pyod:
            for name, method in PYOD.items():
                (result,) = method(
                    X_inlier, X_test, epochs=None, random_state=args.seed
                ).values()
                result = (result.scores, result.fit_seconds, result.score_seconds)
                records.append(record(name, inlier_class, is_inlier, result))
                print(json.dumps(records[-1]), flush=True)
                write(args, records, wall, done=False)
    write(args, records, wall, done=True)
    summarize(args)


def summarize(args):
    report = read_json(Path(args.out) / RESULTS_FILE)
    for row in report["rows"]:  # JSON keys are strings
        row["auc"] = {int(c): auc for c, auc in row["auc"].items()}
    print(markdown(report["rows"], report["classes"]))
    print(f"wall time {report['wall_seconds']:.0f} s, complete: {report['complete']}")
