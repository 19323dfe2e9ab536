"""VAETransformer against PCA, KernelPCA and a plain autoencoder on Fashion-MNIST.

For each latent size k, fit ``PCA(k)``, ``VAETransformer(latent_dim=k)`` and,
with ``--methods``, ``KernelPCA(k, kernel="rbf", fit_inverse_transform=True)``
(fit on ``--kernel-pca-rows`` random training images: its kernel matrix is
quadratic in the rows) and ``autoencoder``, a plain autoencoder of the same
size (the VAE's encoder and decoder network from ``skvae.nn.make_vae``, the
posterior mean as the code, trained on squared error with the VAE's epochs,
batch size and learning rate) on the Fashion-MNIST training images and
report, on the 10,000 test images:

- the reconstruction MSE per pixel, in [0, 1] pixel units:
  ``inverse_transform(transform(X_test))`` against ``X_test / 255``;
- the accuracy of ``KNeighborsClassifier(5)`` fit on the training codes and
  scored on the test codes;
- the fit time in seconds.

The table is printed as markdown and written, with the raw numbers as JSON,
to the output files. Example::

    python -m benchmarks transformer_vs_pca run --latent-dims 2 16 --max-epochs 3
    python -m benchmarks transformer_vs_pca run --latent-dims 16 --max-epochs 12 \\
        --methods pca kernel_pca autoencoder vae --seed 1 --name seed1
    python -m benchmarks transformer_vs_pca summarize --names seed0 seed1 seed2

``--seed`` seeds the models (and the subsets). Results: ``OUT/NAME.md`` and
``.json`` (``--name``, default ``transformer_vs_pca``), rewritten after every
method; ``summarize --names`` prints the mean and spread over several runs.
"""

import ast
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.decomposition import PCA, KernelPCA
from sklearn.neighbors import KNeighborsClassifier
from torch.nn import functional as F

from skvae import VAETransformer
from skvae.datasets import load_fashion_mnist
from skvae.nn import make_vae

from .._shared import add_params, environment, read_json, write_json

# The VAETransformer's default conv widths, for the autoencoder of the same size.
DEFAULT_HIDDEN_DIMS = (32, 64)

METHODS = ("pca", "kernel_pca", "autoencoder", "vae")


def add_summary_arguments(parser):
    parser.add_argument("--name", default="transformer_vs_pca", help="OUT/NAME.json")
    parser.add_argument(
        "--names", nargs="+", default=None, help="summarize these runs together"
    )


def add_arguments(parser):
    add_summary_arguments(parser)
    parser.add_argument("--latent-dims", type=int, nargs="+", default=[2, 16])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=["pca", "vae"])
    parser.add_argument("--kernel-pca-rows", type=int, default=5000)
    parser.add_argument(
        "--max-epochs",
        type=ast.literal_eval,
        default=3,
        help='max_epochs of the VAE and the autoencoder (an int or "auto")',
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--beta", type=float, default=1.0, help="the VAE's KL weight (default 1)"
    )
    add_params(parser, "VAETransformer")
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


class PlainAutoencoder(TransformerMixin, BaseEstimator):
    """A deterministic autoencoder with the VAE's networks, trained on squared error.

    The code is the encoder's mean output; the KL term, the sampling and the
    decoder variance are left out. Takes uint8 images as flat rows.
    ``hidden_dims=None`` means the VAE's default widths.
    """

    def __init__(
        self, latent_dim, max_epochs, batch_size, lr, hidden_dims=None, random_state=0
    ):
        self.latent_dim = latent_dim
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hidden_dims = hidden_dims
        self.random_state = random_state

    def _images(self, X):
        side = math.isqrt(X.shape[1])
        x = torch.as_tensor(np.asarray(X, dtype=np.float32) / 255.0)
        return x.view(len(X), 1, side, side)

    def fit(self, X, y=None):
        torch.manual_seed(self.random_state)
        x = self._images(X)
        hidden_dims = self.hidden_dims or DEFAULT_HIDDEN_DIMS
        self.module_ = make_vae(
            tuple(x.shape[1:]), self.latent_dim, hidden_dims=hidden_dims
        )
        optimizer = torch.optim.Adam(self.module_.parameters(), lr=self.lr)
        self.module_.train()
        for _ in range(self.max_epochs):
            for rows in torch.randperm(len(x)).split(self.batch_size):
                batch = x[rows]
                loss = F.mse_loss(self._decode(self.module_.encode(batch)[0]), batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.module_.eval()
        return self

    def _decode(self, z):
        return self.module_.likelihood.mean(self.module_.decode(z))

    def transform(self, X):
        with torch.no_grad():
            return self.module_.encode(self._images(X))[0].numpy()

    def inverse_transform(self, Z):
        with torch.no_grad():
            return self._decode(torch.as_tensor(Z)).flatten(1).numpy()


def make_method(name, k, args):
    """The model of ``name`` at latent size ``k``."""
    if name == "pca":
        return PCA(k, random_state=args.seed)
    if name == "kernel_pca":
        return KernelPCA(
            k, kernel="rbf", fit_inverse_transform=True, random_state=args.seed
        )
    if name == "autoencoder":
        # The same networks as the VAE's, widths from --params included.
        return PlainAutoencoder(
            k,
            args.max_epochs,
            args.batch_size,
            args.lr,
            hidden_dims=args.params.get("hidden_dims"),
            random_state=args.seed,
        )
    return VAETransformer(
        latent_dim=k,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        beta=args.beta,
        random_state=args.seed,
        verbose=args.verbose,
        **args.params,
    )


# The table's name of each method (the results' "method" field).
LABELS = {
    "pca": "PCA",
    "kernel_pca": "KernelPCA",
    "autoencoder": "autoencoder",
    "vae": "VAETransformer",
}


def evaluate(name, k, model, X_fit, X_train, y_train, X_test, y_test):
    """Fit ``model`` on ``X_fit``; return a dict of the measured quality.

    The 5-NN classifier is fit on the codes of all of ``X_train`` (the
    same rows as ``X_fit`` unless the model fits on a subset).
    """
    start = time.perf_counter()
    model.fit(X_fit)
    fit_seconds = time.perf_counter() - start
    Z_train = model.transform(X_train)
    # X_test is uint8; the models that fit on pixels in [0, 1] get those.
    Z_test = model.transform(X_test if X_fit.dtype == np.uint8 else X_test / 255.0)
    X_rec = np.asarray(model.inverse_transform(Z_test), dtype=np.float64)
    mse = float(np.mean((X_rec.reshape(len(X_test), -1) - X_test / 255.0) ** 2))
    knn = KNeighborsClassifier(5).fit(Z_train, y_train)
    row = {
        "method": LABELS[name],
        "k": k,
        "test_mse_per_pixel": mse,
        "knn5_accuracy": float(knn.score(Z_test, y_test)),
        "fit_seconds": fit_seconds,
        "fit_rows": len(X_fit),
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


def fit_rows(name, X_train, args):
    """What ``name`` fits on: KernelPCA a random subset, the others all rows."""
    if name == "kernel_pca" and args.kernel_pca_rows < len(X_train):
        rng = np.random.RandomState(args.seed)
        return X_train[rng.choice(len(X_train), args.kernel_pca_rows, replace=False)]
    return X_train


def run(args):
    X_train, y_train, X_test, y_test = load(args)
    X_train_float = X_train / np.float32(255)
    print(f"train {X_train.shape}, test {X_test.shape}", flush=True)
    wall = time.perf_counter()
    out = Path(args.out) / f"{args.name}.json"
    rows, seconds_before = [], 0.0
    if out.exists():
        report = read_json(out)
        rows, seconds_before = report["rows"], report["wall_seconds"]
    done = {(r["method"], r["k"]) for r in rows}
    for k in args.latent_dims:
        for name in args.methods:
            if (LABELS[name], k) in done:
                continue
            # The VAE and the autoencoder take the uint8 images; PCA and
            # KernelPCA pixels in [0, 1].
            X = X_train if name in ("vae", "autoencoder") else X_train_float
            model = make_method(name, k, args)
            rows.append(
                evaluate(
                    name, k, model, fit_rows(name, X, args), X, y_train, X_test, y_test
                )
            )
            # Write after every method so a long run leaves partial results.
            report = {
                "rows": rows,
                "wall_seconds": seconds_before + time.perf_counter() - wall,
                "environment": environment(),
            }
            out.with_suffix(".md").write_text(markdown(rows) + "\n")
            write_json(out, report)
    summarize(args)


def summarize(args):
    names = args.names or [args.name]
    reports = [read_json(Path(args.out) / f"{name}.json") for name in names]
    if len(reports) == 1:
        print(markdown(reports[0]["rows"]))
        print(f"wall time {reports[0]['wall_seconds']:.0f} s")
        return
    print(seed_table(reports))


def seed_table(reports):
    """Mean and spread (max - min) of each method and size over the runs."""
    groups = {}
    for report in reports:
        for row in report["rows"]:
            groups.setdefault((row["k"], row["method"]), []).append(row)
    pca = {k: np.mean([r["test_mse_per_pixel"] for r in rows])
           for (k, method), rows in groups.items() if method == "PCA"}  # fmt: skip
    lines = [
        "| method | k | runs | test MSE / pixel | MSE / PCA's | spread "
        "| 5-NN accuracy | spread | fit seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (k, method), rows in groups.items():
        mse = [r["test_mse_per_pixel"] for r in rows]
        accuracy = [r["knn5_accuracy"] for r in rows]
        ratio = f"{np.mean(mse) / pca[k]:.2f}" if k in pca else ""
        lines.append(
            f"| {method} | {k} | {len(rows)} | {np.mean(mse):.4f} | {ratio} "
            f"| {np.ptp(mse):.4f} | {np.mean(accuracy):.3f} | {np.ptp(accuracy):.3f} "
            f"| {np.mean([r['fit_seconds'] for r in rows]):.0f} |"
        )
    return "\n".join(lines)
