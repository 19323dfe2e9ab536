"""The command ``python -m skvae.benchmark`` and the splits it runs on."""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from .. import __version__
from ..datasets import (
    ANOMALY_KINDS,
    DatasetNotFoundError,
    load_digit_images,
    load_fashion_mnist,
    make_synthetic_anomalies,
)
from ..datasets._one_class import anomalies_for_share
from ._methods import available_methods
from ._report import plot_roc_curves, summary_table, write_json
from ._run import multi_class_splits, one_class_splits, run_benchmark

# Tables bundled with scikit-learn: the loader and the classes that are
# normal (None: every row is normal, for synthetic anomalies only).
TABLES = {
    "breast-cancer": (load_breast_cancer, [1]),  # benign
    "wine": (load_wine, [0]),
    "digits-flat": (load_digits, [0, 1, 2, 3, 4]),
    "diabetes": (load_diabetes, None),
}


def load(dataset, data_home):
    """Return ``(X_train, y_train, X_test, y_test, class_names, name)``."""
    if dataset in TABLES:
        # Split per split by tabular_splits; nothing to load up front.
        return None, None, None, None, ["anomaly", "normal"], dataset
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
            print(
                "Fashion-MNIST not found (set SKVAE_DATA or --data-home, or "
                "apt-get install dataset-fashion-mnist); using the digits.",
                file=sys.stderr,
            )
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
        choices=["auto", "digits", "fashion-mnist", *TABLES],
        default="auto",
        help="'auto' uses Fashion-MNIST when found, else digits; the others "
        "are scikit-learn's tables, standardised, with fresh half/half splits "
        "(normal: breast-cancer benign, wine class 0, digits-flat 0-4; "
        "diabetes only with --synthetic)",
    )
    parser.add_argument(
        "--synthetic",
        choices=ANOMALY_KINDS,
        default=None,
        help="tables: every row of the data set is normal and the anomalies "
        "are ADBench's synthetic ones of this kind, drawn from the training "
        "half (skvae.datasets.make_synthetic_anomalies)",
    )
    parser.add_argument(
        "--protocol",
        choices=["one-class", "multi-class"],
        default="one-class",
        help="one-class: fit on one class, score the whole test set; "
        "multi-class: fit on a random half of the classes, anomalies are "
        "--anomaly-share of the test set (breast-cancer: benign is normal)",
    )
    parser.add_argument(
        "--splits", type=int, default=4, help="random splits (multi-class)"
    )
    parser.add_argument(
        "--anomaly-share",
        type=float,
        default=0.05,
        help="share of anomalies in the test set (multi-class)",
    )
    parser.add_argument(
        "--max-train-per-class",
        type=int,
        default=None,
        help="at most this many training samples per normal class (multi-class)",
    )
    parser.add_argument(
        "--train-contamination",
        type=float,
        default=0.0,
        help="share of the training set drawn from the anomalous classes' "
        "training samples (default 0: clean training data)",
    )
    parser.add_argument(
        "--normal-classes",
        type=int,
        nargs="+",
        default=None,
        help="fixed normal classes (multi-class; the splits then differ in "
        "their random draws only)",
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
        help="where records.jsonl (kept across runs: finished method/split "
        "pairs are not run again), results.md, results.json and roc.png go",
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
    methods = args.methods or available_methods()
    splits, n_splits = make_splits(args, X_train, y_train, X_test, y_test, name)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tqdm(total=n_splits * len(methods), desc=name, unit="fit") as bar:
        records = run_benchmark(
            X_train,
            y_train,
            X_test,
            y_test,
            methods=methods,
            splits=splits,
            epochs=args.epochs,
            random_state=args.random_state,
            progress=lambda status: (bar.set_postfix_str(status), bar.update()),
            records_path=out / "records.jsonl",
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


def benchmark_splits(argv):
    """Yield the splits ``python -m skvae.benchmark ARGV`` would run, without running.

    Experiments on the benchmark's data (a score probe, a threshold study)
    see exactly the command's splits, so their numbers stand beside the
    command's baselines.

    Parameters
    ----------
    argv : list of str
        The command's options: ``--dataset``, ``--protocol``, ``--splits``,
        ``--classes``, ``--normal-classes``, ``--train-contamination``,
        ``--anomaly-share``, ``--max-train-per-class``, ``--synthetic``,
        ``--random-state``, ``--data-home`` (``python -m skvae.benchmark
        --help``). Options about methods and output are accepted and ignored.

    Yields
    ------
    split : int
        The split's number (the inlier class in the one-class protocol).
    description : dict
        Its normal classes and training contamination.
    X_fit : ndarray
        The rows to fit on (features of tables standardised by them).
    X_eval : ndarray
        The rows to score.
    is_inlier : ndarray of shape (n_eval,)
        1 for the normal rows of ``X_eval``, 0 for the anomalies.

    Examples
    --------
    >>> from skvae.benchmark import benchmark_splits
    >>> argv = ["--dataset", "wine", "--splits", "2"]
    >>> for split, description, X_fit, X_eval, is_inlier in benchmark_splits(argv):
    ...     print(split, X_fit.shape, X_eval.shape, int(is_inlier.sum()))
    0 (29, 13) (32, 13) 30
    1 (29, 13) (32, 13) 30
    """
    args = parse_args(argv)
    X_train, y_train, X_test, y_test, _, name = load(args.dataset, args.data_home)
    splits, _ = make_splits(args, X_train, y_train, X_test, y_test, name)
    yield from splits


def make_splits(args, X_train, y_train, X_test, y_test, name):
    """Return the splits of the chosen protocol and how many there are."""
    if name in TABLES:
        return standardized(tabular_splits(args, name)), args.splits
    if args.protocol == "multi-class":
        splits = multi_class_splits(
            X_train,
            y_train,
            X_test,
            y_test,
            n_splits=args.splits,
            anomaly_share=args.anomaly_share,
            max_train_per_class=args.max_train_per_class,
            random_state=args.random_state,
            normal_classes=args.normal_classes,
            train_contamination=args.train_contamination,
        )
        return splits, args.splits
    classes = args.classes if args.classes is not None else sorted(set(y_train))
    splits = one_class_splits(
        X_train,
        y_train,
        X_test,
        y_test,
        classes=classes,
        train_contamination=args.train_contamination,
        random_state=args.random_state,
    )
    return splits, len(classes)


def tabular_splits(args, name):
    """Yield a fresh half/half partition of a table per split, with anomalies.

    Split ``i`` partitions the rows with seed ``random_state + i``. The
    anomalies are the other classes' rows, ``anomaly_share`` of the test set
    (and ``train_contamination`` of the training set), or with
    ``--synthetic`` ADBench's anomalies of that kind drawn from the training
    half's normal rows.
    """
    loader, normal_classes = TABLES[name]
    X, y = loader(return_X_y=True)
    if args.synthetic is None and normal_classes is None:
        raise SystemExit(f"--dataset {name} has no anomaly class; pass --synthetic.")
    for split in range(args.splits):
        seed = args.random_state + split
        if args.synthetic is not None:
            yield synthetic_split(args, X, split, seed)
            continue
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.5, stratify=y, random_state=seed
        )
        yield from multi_class_splits(
            X_train,
            y_train,
            X_test,
            y_test,
            n_splits=1,
            anomaly_share=args.anomaly_share,
            random_state=seed,
            normal_classes=normal_classes,
            first_split=split,
            train_contamination=args.train_contamination,
        )


def synthetic_split(args, X, split, seed):
    """Return one split: every row normal, anomalies drawn from the training half."""
    rng = np.random.RandomState(seed)
    X_train, X_test = train_test_split(X, test_size=0.5, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    n_test = anomalies_for_share(len(X_test), args.anomaly_share)
    contamination = args.train_contamination
    n_train = anomalies_for_share(len(X_train), contamination)
    anomalies = make_synthetic_anomalies(
        X_train, n_test + n_train, kind=args.synthetic, random_state=rng
    )
    X_fit = rng.permutation(np.r_[X_train, anomalies[:n_train]])
    X_eval = np.r_[X_test, anomalies[n_train:]]
    is_inlier = np.r_[np.ones(len(X_test)), np.zeros(n_test)].astype(np.int64)
    description = {
        "normal": [],
        "synthetic": args.synthetic,
        "train_contamination": contamination,
    }
    return split, description, X_fit, X_eval, is_inlier


def standardized(splits):
    """Scale each split's features by its training rows' mean and deviation."""
    for split, description, X_fit, X_eval, is_inlier in splits:
        scaler = StandardScaler().fit(X_fit)
        X_fit = scaler.transform(X_fit).astype(np.float32)
        X_eval = scaler.transform(X_eval).astype(np.float32)
        yield split, description, X_fit, X_eval, is_inlier
