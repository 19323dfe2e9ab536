"""Cost of the default detector as the training set grows: time and memory.

For each size (default 6,000, 30,000, 60,000 and 200,000 images), writes a
uint8 ``np.memmap`` of that many 28x28 training images (Fashion-MNIST's
training images in order, repeated with a random shift of up to 2 pixels
past 60,000; random pixels when the data set is not installed), then, in a
fresh process, fits the default ``VAEOutlierDetector`` on the memmap and
scores the 10,000 test images, recording the seconds and the peak RSS of
each step (``measure_rss``). Appends one JSON line per size to
``OUT/scaling.jsonl`` (skipping sizes already there), prints a table and
draws ``--plot``.

    python -m benchmarks scaling run --threads 2 --plot docs/images/scaling.png
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from .._shared import append_jsonl, in_fresh_process, measure_rss, read_jsonl

RESULTS_FILE = "scaling.jsonl"

SIDE = 28


def source_images():
    """Fashion-MNIST's (train, test) images, or random ones without it."""
    try:
        from skvae.datasets import load_fashion_mnist

        train = load_fashion_mnist(subset="train").images
        test = load_fashion_mnist(subset="test").images
        return train, test, "Fashion-MNIST"
    except FileNotFoundError:
        rng = np.random.RandomState(0)
        train = rng.randint(0, 256, (60_000, SIDE, SIDE), dtype=np.uint8)
        test = rng.randint(0, 256, (10_000, SIDE, SIDE), dtype=np.uint8)
        return train, test, "random uint8"


def write_training_memmap(path, n, train, rng, block=10_000):
    """``n`` training images in a memmap, block by block (bounded memory)."""
    images = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, SIDE, SIDE))
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = np.arange(start, stop)
        block_images = train[rows % len(train)]
        if start + block > len(train):  # copies past the originals: shifted
            shifts = rng.randint(-2, 3, size=2)
            block_images = np.roll(block_images, tuple(shifts), axis=(1, 2))
        images[start:stop] = block_images
    images.flush()


def measure_in_this_process(memmap_path, n, threads, seed):
    """Fit on the memmap and score the test images; print one JSON line."""
    import torch

    from skvae import VAEOutlierDetector

    torch.set_num_threads(threads)
    images = np.memmap(memmap_path, dtype=np.uint8, mode="r", shape=(n, SIDE, SIDE))
    _, test, _ = source_images()
    detector = VAEOutlierDetector(random_state=seed)
    _, fit_seconds, fit_memory = measure_rss(lambda: detector.fit(images))
    _, score_seconds, score_memory = measure_rss(lambda: detector.score_samples(test))
    print(
        json.dumps(
            {
                "n_train": n,
                "fit_seconds": fit_seconds,
                "fit_rss": fit_memory,
                "score_seconds": score_seconds,
                "n_scored": len(test),
                "score_rss": score_memory,
                "epochs": len(detector.history_),
                "threads": threads,
            }
        )
    )


def table(records):
    """Markdown rows, one per training size."""
    lines = [
        "| training images | fit s | fit: anon RSS peak - before, MiB "
        "| scoring 10,000 s | scoring: anon RSS peak - before, MiB | VAE epochs |",
        "|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=lambda r: r["n_train"]):
        fit_growth = r["fit_rss"]["anon_peak_mib"] - r["fit_rss"]["anon_before_mib"]
        score_growth = (
            r["score_rss"]["anon_peak_mib"] - r["score_rss"]["anon_before_mib"]
        )
        lines.append(
            f"| {r['n_train']:,} | {r['fit_seconds']:.0f} | {fit_growth:.0f} "
            f"| {r['score_seconds']:.1f} | {score_growth:.0f} | {r['epochs']} |"
        )
    return "\n".join(lines)


def plot(records, path):
    """Fit seconds and peak RSS growth against the training size."""
    import matplotlib.pyplot as plt

    records = sorted(records, key=lambda r: r["n_train"])
    n = [r["n_train"] for r in records]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(n, [r["fit_seconds"] for r in records], "o-", label="fit")
    left.plot(n, [r["score_seconds"] for r in records], "s-", label="score 10,000")
    left.set(xlabel="training images", ylabel="seconds", title="Time")
    left.legend()
    for key, style, label in (
        ("fit_rss", "o-", "fit"),
        ("score_rss", "s-", "score 10,000"),
    ):
        growth = [r[key]["anon_peak_mib"] - r[key]["anon_before_mib"] for r in records]
        right.plot(n, growth, style, label=label)
    right.set(
        xlabel="training images",
        ylabel="MiB",
        title="Peak anonymous RSS over the start",
    )
    for ax in (left, right):
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def add_arguments(parser):
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[6_000, 30_000, 60_000, 200_000]
    )
    add_summary_arguments(parser)


def add_summary_arguments(parser):
    parser.add_argument("--plot", default=None, help="draw the figure to this PNG")


def run(args):
    out = Path(args.out) / RESULTS_FILE
    done = {r["n_train"] for r in read_jsonl(out)}
    train, _, source = source_images()
    rng = np.random.RandomState(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            if n in done:
                continue
            path = Path(tmp) / f"train-{n}.u8"
            write_training_memmap(path, n, train, rng)
            record = in_fresh_process(
                __name__,
                "measure_in_this_process",
                str(path),
                n,
                args.threads,
                args.seed,
                threads=args.threads,
            )
            record["source"] = source
            append_jsonl(out, record)
            path.unlink()
            print(
                f"{n:,} training images: fit {record['fit_seconds']:.0f} s", flush=True
            )
    summarize(args)


def summarize(args):
    records = read_jsonl(Path(args.out) / RESULTS_FILE)
    print(table(records))
    if args.plot:
        plot(records, args.plot)
