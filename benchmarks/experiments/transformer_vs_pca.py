"""VAETransformer against PCA on Fashion-MNIST (issue 3).

For each latent size k, fit ``PCA(k)`` and ``VAETransformer(latent_dim=k)`` on
the Fashion-MNIST training images and report, on the 10,000 test images:

- the reconstruction MSE per pixel, in [0, 1] pixel units:
  ``inverse_transform(transform(X_test))`` against ``X_test / 255``;
- the accuracy of ``KNeighborsClassifier(5)`` fit on the training codes and
  scored on the test codes;
- the fit time in seconds.

The table is printed as markdown and written, with the raw numbers as JSON,
to the output files. Example::

    python -m benchmarks transformer_vs_pca run --latent-dims 2 16 --max-epochs 3

Results: ``OUT/transformer_vs_pca.md`` and ``.json``, rewritten after every
latent size.
"""

import json
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from skvae import VAETransformer
from skvae.datasets import load_fashion_mnist

from .._shared import environment, read_json, write_json

RESULTS_FILE = "transformer_vs_pca.json"


def add_arguments(parser):
    parser.add_argument("--latent-dims", type=int, nargs="+", default=[2, 16])
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--n-train", type=int, default=None, help="training subset (default: all)"
    )
    parser.add_argument(
        "--n-test", type=int, default=None, help="test subset (default: all)"
    )
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--verbose", type=int, default=1)


def load(args):
    X_train, y_train = load_fashion_mnist(
        args.data_home, subset="train", return_X_y=True
    )
    X_test, y_test = load_fashion_mnist(args.data_home, subset="test", return_X_y=True)
    rng = np.random.RandomState(args.seed)
    if args.n_train is not None and args.n_train < len(X_train):
        idx = rng.choice(len(X_train), args.n_train, replace=False)
        X_train, y_train = X_train[idx], y_train[idx]
    if args.n_test is not None and args.n_test < len(X_test):
        idx = rng.choice(len(X_test), args.n_test, replace=False)
        X_test, y_test = X_test[idx], y_test[idx]
    return X_train, y_train, X_test, y_test


def evaluate(name, k, model, X_fit, X_train, y_train, X_test, y_test):
    """Fit ``model`` on ``X_fit``; return a dict of the measured quality."""
    start = time.perf_counter()
    model.fit(X_fit)
    fit_seconds = time.perf_counter() - start
    Z_train = model.transform(X_fit)
    Z_test = model.transform(X_test if X_fit.dtype == np.uint8 else X_test / 255.0)
    X_rec = np.asarray(model.inverse_transform(Z_test), dtype=np.float64)
    mse = float(np.mean((X_rec.reshape(len(X_test), -1) - X_test / 255.0) ** 2))
    knn = KNeighborsClassifier(5).fit(Z_train, y_train)
    row = {
        "method": name,
        "k": k,
        "test_mse_per_pixel": mse,
        "knn5_accuracy": float(knn.score(Z_test, y_test)),
        "fit_seconds": fit_seconds,
    }
    if hasattr(model, "decoder_var_"):
        row["decoder_var"] = model.decoder_var_
        row["final_train_loss"] = float(model.history_[-1, "train_loss"])
    print(json.dumps(row), flush=True)
    return row


def markdown(rows):
    lines = [
        "| method | k | test MSE / pixel | 5-NN accuracy | fit seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['k']} | {r['test_mse_per_pixel']:.4f} "
            f"| {r['knn5_accuracy']:.3f} | {r['fit_seconds']:.0f} |"
        )
    return "\n".join(lines)


def run(args):
    X_train, y_train, X_test, y_test = load(args)
    X_train_float = X_train / np.float32(255)
    print(f"train {X_train.shape}, test {X_test.shape}", flush=True)
    wall = time.perf_counter()
    rows = []
    out = Path(args.out) / RESULTS_FILE
    for k in args.latent_dims:
        pca = PCA(k, random_state=args.seed)
        rows.append(
            evaluate("PCA", k, pca, X_train_float, X_train, y_train, X_test, y_test)
        )
        vae = VAETransformer(
            latent_dim=k,
            max_epochs=args.max_epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            random_state=args.seed,
            verbose=args.verbose,
        )
        rows.append(
            evaluate(
                "VAETransformer", k, vae, X_train, X_train, y_train, X_test, y_test
            )
        )
        # Write after every k so a long run leaves partial results.
        report = {
            "rows": rows,
            "wall_seconds": time.perf_counter() - wall,
            "environment": environment(),
        }
        out.with_suffix(".md").write_text(markdown(rows) + "\n")
        write_json(out, report)
    summarize(args)


def summarize(args):
    report = read_json(Path(args.out) / RESULTS_FILE)
    print(markdown(report["rows"]))
    print(f"wall time {report['wall_seconds']:.0f} s")
