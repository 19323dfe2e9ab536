"""Square numbers of features that hold no image: embeddings read as tables.

Flat rows of 64, 256 or 1,024 features can be 8x8, 16x16 or 32x32 images,
or an embedding's numbers. ``architecture="auto"`` reads them as images only
when grid neighbours correlate more than any two features
(``skvae.datasets.neighbour_correlation_excess``). Two parts:

- ``run`` fits, on one-class Fashion-MNIST (each class's 6,000 training
  images normal, the 10,000 test images scored), two detectors on
  embedding-like features of the images: the default ``VAEOutlierDetector()``
  (which now reads them as a table) and ``architecture="conv"`` (the old
  reading of any square number as an image). The features: ``pca256``, the
  first 256 principal components of the class's training images,
  standardised; ``tanh1024``, 1,024 units of a fixed random tanh layer on
  the pixels, standardised. One JSON line per class and kind goes to
  ``OUT/NAME.jsonl``; finished ones are skipped.
- ``summarize`` prints the per-class table, then the neighbour test's
  statistic on images, tables and signals (``--statistic``).

    python -m benchmarks square_tables run --kinds pca256 tanh1024
    python -m benchmarks square_tables summarize --statistic
"""

import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.decomposition import PCA
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist, neighbour_correlation_excess

from .._shared import (
    FASHION_MNIST_SHORT_NAMES,
    append_jsonl,
    environment,
    read_jsonl,
)

KINDS = ("pca256", "tanh1024")
READINGS = {"default": {}, "conv": {"architecture": "conv"}}


def add_summary_arguments(parser):
    parser.add_argument("--name", default="square_tables", help="OUT/NAME.jsonl")
    parser.add_argument("--names", nargs="+", default=None, help="summarize these")
    parser.add_argument(
        "--statistic",
        action="store_true",
        help="also print the neighbour test's statistic on images and tables",
    )


def add_arguments(parser):
    add_summary_arguments(parser)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)))


def _flat_fashion_mnist(subset):
    X, y = load_fashion_mnist(subset=subset, return_X_y=True)
    return X.reshape(len(X), -1).astype(np.float32) / 255, y


def embed(kind, X_normal, X_test, seed):
    """Embedding-like features of the training and test images: no pixel grid."""
    if kind == "pca256":
        pca = PCA(256, random_state=seed).fit(X_normal)
        train, test = pca.transform(X_normal), pca.transform(X_test)
    else:
        weights = np.random.RandomState(seed).normal(size=(784, 1024)) / 28
        train, test = np.tanh(3 * X_normal @ weights), np.tanh(3 * X_test @ weights)
    scaler = StandardScaler().fit(train)
    return (
        scaler.transform(train).astype(np.float32),
        scaler.transform(test).astype(np.float32),
    )


def score_reading(params, Z_train, Z_test, is_inlier, seed):
    """Fit one detector and score the test rows: ROC-AUC, AP, seconds, shape."""
    detector = VAEOutlierDetector(**params, random_state=seed)
    start = time.perf_counter()
    scores = detector.fit(Z_train).score_samples(Z_test)
    return {
        "roc_auc": round(100 * roc_auc_score(is_inlier, scores), 2),
        "ap": round(100 * average_precision_score(1 - is_inlier, -scores), 2),
        "seconds": round(time.perf_counter() - start, 1),
        "input_shape": list(detector.input_shape_),
    }


def run(args):
    out = Path(args.out) / f"{args.name}.jsonl"
    done = {(r["kind"], r["class"]) for r in read_jsonl(out)}
    X_train, y_train = _flat_fashion_mnist("train")
    X_test, y_test = _flat_fashion_mnist("test")
    for kind in args.kinds:
        for normal in args.classes:
            if (kind, normal) in done:
                continue
            Z_train, Z_test = embed(kind, X_train[y_train == normal], X_test, args.seed)
            is_inlier = (y_test == normal).astype(int)
            record = {"kind": kind, "class": normal, "seed": args.seed}
            record["environment"] = environment()
            for reading, params in READINGS.items():
                record[reading] = score_reading(
                    params, Z_train, Z_test, is_inlier, args.seed
                )
            append_jsonl(out, record)
            print(kind, normal, record["default"], record["conv"], flush=True)


def summarize(args):
    names = args.names or [args.name]
    records = [r for n in names for r in read_jsonl(Path(args.out) / f"{n}.jsonl")]
    print("| features | class | default: shape | ROC-AUC | AP | s "
          "| conv: ROC-AUC | AP | s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in KINDS:
        rows = sorted(
            (r for r in records if r["kind"] == kind), key=lambda r: r["class"]
        )
        for r in rows:
            print(_row(kind, FASHION_MNIST_SHORT_NAMES[r["class"]], r))
        if rows:
            print(_row(kind, "**mean**", _mean_record(rows)))
    if args.statistic:
        print()
        print("| data | kind | excess |")
        print("|---|---|---|")
        for name, kind, excess in statistic_rows(args.seed):
            print(f"| {name} | {kind} | {excess:.2f} |")


def _row(kind, label, r):
    d, c = r["default"], r["conv"]
    shape = "x".join(map(str, d["input_shape"]))
    default = f"{d['roc_auc']:.1f} | {d['ap']:.1f} | {d['seconds']:.0f}"
    conv = f"{c['roc_auc']:.1f} | {c['ap']:.1f} | {c['seconds']:.0f}"
    return f"| {kind} | {label} | {shape} | {default} | {conv} |"


def _mean_record(rows):
    def mean(reading):
        return {
            key: np.mean([r[reading][key] for r in rows])
            for key in ("roc_auc", "ap", "seconds")
        } | {"input_shape": rows[0][reading]["input_shape"]}

    return {"default": mean("default"), "conv": mean("conv")}


def statistic_rows(seed):
    """``(data, kind, excess)`` of the neighbour test on images, tables, signals."""
    rng = np.random.RandomState(seed)
    digits = load_digits()
    pixels, labels = _flat_fashion_mnist("test")

    def _embedded(kind):
        return embed(kind, pixels, pixels[:1], seed)[0]

    patches = _photo_patches(rng)
    noisy = [patches + rng.normal(0, sd, patches.shape) for sd in (0.1, 0.3)]
    steps = np.arange(100)
    waves = np.sin(0.3 * (steps + 50 * rng.rand(500, 1)))
    cases = [
        ("digits, all classes", "image", digits.data / 16),
        *(
            (f"digits class {c}", "image", digits.data[digits.target == c] / 16)
            for c in range(10)
        ),
        ("digits class 1, first 8 rows", "image", digits.data[digits.target == 1][:8]),
        ("Fashion-MNIST test images", "image", pixels),
        *(
            (f"Fashion-MNIST {name}", "image", pixels[labels == c])
            for c, name in enumerate(FASHION_MNIST_SHORT_NAMES)
        ),
        ("16x16 patches of scikit-learn's sample photos", "image", patches),
        ("the same + noise, sd 0.1", "image", noisy[0]),
        ("the same + noise, sd 0.3", "image", noisy[1]),
        ("Fashion-MNIST, 256 principal components", "table", _embedded("pca256")),
        ("Fashion-MNIST, 1,024 random tanh units", "table", _embedded("tanh1024")),
        ("digits, columns shuffled", "table", digits.data[:, rng.permutation(64)]),
        ("100 features, every pair correlated 0.5", "table", _equicorrelated(rng)),
        ("sine waves, 100 steps", "signal", waves + rng.normal(0, 0.3, (500, 100))),
        ("random walks, 100 steps", "signal", rng.normal(size=(500, 100)).cumsum(1)),
    ]
    rows = [
        (name, kind, neighbour_correlation_excess(X, int(np.sqrt(X.shape[1]))))
        for name, kind, X in cases
    ]
    noise = [
        neighbour_correlation_excess(np.random.RandomState(s).rand(n, side**2), side)
        for s in range(30)
        for n in (8, 20, 200)
        for side in (8, 16, 32)
    ]
    rows.append(
        ("uniform noise, 8-200 rows x 64-1,024: highest of 270", "table", max(noise))
    )
    return rows


def _photo_patches(rng, per_image=1000, side=16):
    patches = []
    for image in load_sample_images().images:
        gray = image.mean(axis=2) / 255
        for _ in range(per_image):
            i = rng.randint(gray.shape[0] - side)
            j = rng.randint(gray.shape[1] - side)
            patches.append(gray[i : i + side, j : j + side].ravel())
    return np.array(patches)


def _equicorrelated(rng, n_rows=500, n_features=100):
    shared = rng.normal(size=(n_rows, 1))
    return shared + rng.normal(size=(n_rows, n_features))
