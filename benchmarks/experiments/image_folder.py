"""Loading a folder of image files through the memmap cache: time and memory.

For each size (default 20,000 and 200,000), writes that many 28x28 PNG files
(Fashion-MNIST's training images, repeated with a random shift of up to 2
pixels past 60,000; random pixels without the data set) into 100
sub-folders, then, in a fresh process, runs
``load_image_folder(folder, cache=...)`` (building the ``.npy`` cache one
image at a time), loads it again (reusing the cache), and, with
``--fit-epochs``, fits the default ``VAEOutlierDetector`` on the cached
memmap, recording the seconds and the peak anonymous RSS of each step
(``measure_rss``). Appends one JSON line per size to
``OUT/image_folder.jsonl`` and prints a table.

    python -m benchmarks image_folder run --sizes 20000 200000 --fit-epochs 1
"""

import json
import tempfile
from pathlib import Path

import numpy as np

from .._shared import append_jsonl, in_fresh_process, measure_rss, read_jsonl
from .scaling import source_images

RESULTS_FILE = "image_folder.jsonl"

SUB_FOLDERS = 100


def write_folder(folder, n, seed=0):
    """``n`` PNG files of 28x28 images under ``folder``, in sub-folders."""
    from PIL import Image

    train, _, _ = source_images()
    rng = np.random.RandomState(seed)
    for index in range(n):
        image = train[index % len(train)]
        if index >= len(train):  # copies past the originals: shifted
            image = np.roll(image, tuple(rng.randint(-2, 3, size=2)), axis=(0, 1))
        sub = folder / f"{index % SUB_FOLDERS:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{index:07d}.png")


def measure_in_this_process(folder, cache, fit_epochs, threads, seed):
    """Load (building, then reusing the cache) and fit; print one JSON line."""
    import torch

    from skvae import VAEOutlierDetector
    from skvae.datasets import load_image_folder

    torch.set_num_threads(threads)
    record = {"threads": threads}
    for step in ("build", "reuse"):
        data, seconds, memory = measure_rss(
            lambda: load_image_folder(folder, cache=cache)
        )
        record[step] = {"seconds": seconds, "rss": memory}
    record["n_images"] = len(data.images)
    if fit_epochs:
        detector = VAEOutlierDetector(max_epochs=fit_epochs, random_state=seed)
        _, seconds, memory = measure_rss(lambda: detector.fit(data.images))
        record["fit"] = {"seconds": seconds, "rss": memory, "epochs": fit_epochs}
    print(json.dumps(record))


def growth(step):
    return step["rss"]["anon_peak_mib"] - step["rss"]["anon_before_mib"]


def table(records):
    """Markdown rows, one per folder size."""
    lines = [
        "| image files | build cache s | build: anon RSS growth MiB "
        "| reuse cache s | fit s | fit: anon RSS growth MiB |",
        "|---|---|---|---|---|---|",
    ]
    for r in records:
        fit = r.get("fit")
        fit_cells = f"{fit['seconds']:.0f} | {growth(fit):.0f}" if fit else "- | -"
        lines.append(
            f"| {r['n_images']:,} | {r['build']['seconds']:.0f} "
            f"| {growth(r['build']):.0f} | {r['reuse']['seconds']:.1f} | {fit_cells} |"
        )
    return "\n".join(lines)


def add_arguments(parser):
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--fit-epochs", type=int, default=0)


def run(args):
    out = Path(args.out) / RESULTS_FILE
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as scratch:
            folder, cache = Path(scratch) / "images", Path(scratch) / "cache.npy"
            write_folder(folder, n, seed=args.seed)
            record = in_fresh_process(
                __name__,
                "measure_in_this_process",
                str(folder),
                str(cache),
                args.fit_epochs,
                args.threads,
                args.seed,
                threads=args.threads,
            )
        append_jsonl(out, record)
        print(json.dumps(record), flush=True)
    summarize(args)


def summarize(args):
    print(table(read_jsonl(Path(args.out) / RESULTS_FILE)))
