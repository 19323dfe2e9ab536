"""Command line: ``python -m skvae.benchmark [--dataset fashion-mnist] ...``."""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from tqdm import tqdm

from .. import __version__
from ..datasets import DatasetNotFoundError, load_digit_images, load_fashion_mnist
from ._methods import available_methods
from ._report import plot_roc_curves, summary_table, write_json
from ._run import run_benchmark


def load(dataset, data_home):
    """Return ``(X_train, y_train, X_test, y_test, class_names, name)``."""
    if dataset in ("auto", "fashion-mnist"):
        try:
            train = load_fashion_mnist(data_home, subset="train")
            test = load_fashion_mnist(data_home, subset="test")
            return (
                train.images,
                train.target,
                test.images,
                test.target,
                list(train.target_names),
                "fashion-mnist",
            )
        except DatasetNotFoundError:
            if dataset == "fashion-mnist":
                raise
    train = load_digit_images(subset="train")
    test = load_digit_images(subset="test")
    names = [str(d) for d in range(10)]
    return train.images, train.target, test.images, test.target, names, "digits"


def parse_args(argv):
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m skvae.benchmark",
        description="One-class anomaly detection: train on one class, score the "
        "test set, ROC-AUC with that class as inlier; every class; mean.",
    )
    parser.add_argument(
        "--dataset",
        choices=["auto", "digits", "fashion-mnist"],
        default="auto",
        help="'auto' uses Fashion-MNIST when found, else digits",
    )
    parser.add_argument(
        "--data-home", default=None, help="folder with the Fashion-MNIST IDX files"
    )
    parser.add_argument(
        "--classes",
        type=int,
        nargs="+",
        default=None,
        help="inlier classes to run (default: all)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=None,
        choices=available_methods(),
        help="methods to compare (default: all available)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs for every deep method (default: each one's own)",
    )
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's choice)",
    )
    parser.add_argument(
        "--output-dir",
        default="benchmark-results",
        help="where results.md, results.json and roc.png go",
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Run the benchmark and write its table, JSON and ROC plot."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    X_train, y_train, X_test, y_test, class_names, name = load(
        args.dataset, args.data_home
    )
    classes = args.classes if args.classes is not None else sorted(set(y_train))
    methods = args.methods or available_methods()
    start = time.perf_counter()
    with tqdm(total=len(classes) * len(methods), desc=name, unit="fit") as bar:
        records = run_benchmark(
            X_train,
            y_train,
            X_test,
            y_test,
            classes=classes,
            methods=methods,
            epochs=args.epochs,
            random_state=args.random_state,
            progress=lambda status: (bar.set_postfix_str(status), bar.update()),
        )
    metadata = {
        "command": "python -m skvae.benchmark "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "dataset": name,
        "wall_seconds": time.perf_counter() - start,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} torch threads",
        "versions": {
            "skvae": __version__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "python": platform.python_version(),
        },
    }
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = summary_table(records, class_names)
    (out / "results.md").write_text(table + "\n")
    write_json(records, out / "results.json", **metadata)
    plot_roc_curves(records, out / "roc.png", class_names)
    print(table)
    print(
        f"\n{name}, {metadata['wall_seconds']:.0f} s; wrote {out}/results.md, "
        "results.json, roc.png"
    )
    return np.mean([r["roc_auc"] for r in records])


if __name__ == "__main__":
    main()
