"""Cost of the default detector as the training set grows: time and memory.

For each size (default 6,000, 30,000, 60,000 and 200,000 images), writes a
uint8 ``np.memmap`` of that many 28x28 training images (Fashion-MNIST's
training images in order, repeated with a random shift of up to 2 pixels
past 60,000; random pixels when the data set is not installed), then, in a
fresh process, fits the default ``VAEOutlierDetector`` on the memmap and
scores the 10,000 test images, recording the seconds and the peak RSS of
each step (``memory.measure_rss``). Appends one JSON line per size to
``--out`` (skipping sizes already there), prints a table and draws
``--plot``.

    python benchmarks/scaling.py --threads 2 \\
        --out benchmarks/results/scaling.jsonl --plot docs/images/scaling.png
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from memory import measure_rss

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


def measure_in_this_process(memmap_path, n, threads):
    """Fit on the memmap and score the test images; print one JSON line."""
    import torch

    from skvae import VAEOutlierDetector

    torch.set_num_threads(threads)
    images = np.memmap(memmap_path, dtype=np.uint8, mode="r", shape=(n, SIDE, SIDE))
    _, test, _ = source_images()
    detector = VAEOutlierDetector(random_state=0)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[6_000, 30_000, 60_000, 200_000]
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/scaling.jsonl")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure_in_this_process(args.child[0], int(args.child[1]), args.threads)
        return
    out = Path(args.out)
    records = []
    if out.exists():
        records = [json.loads(line) for line in out.read_text().splitlines()]
    done = {r["n_train"] for r in records}
    train, _, source = source_images()
    rng = np.random.RandomState(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            if n in done:
                continue
            path = Path(tmp) / f"train-{n}.u8"
            write_training_memmap(path, n, train, rng)
            command = [sys.executable, __file__, "--threads", str(args.threads)]
            result = subprocess.run(
                [*command, "--child", str(path), str(n)],
                check=True,
                capture_output=True,
                text=True,
            )
            record = json.loads(result.stdout.strip().splitlines()[-1])
            record["source"] = source
            records.append(record)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            path.unlink()
            fit_seconds = record["fit_seconds"]
            print(f"{n:,} training images: fit {fit_seconds:.0f} s", flush=True)
    print(table(records))
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
