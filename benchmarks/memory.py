"""Peak memory of scoring a uint8 numpy.memmap: 10,000 vs 200,000 images.

Each size is scored in a fresh subprocess; a sampler thread records the peak
anonymous RSS (the process's own memory, excluding the memmap's file pages,
which the kernel can drop at will) and the peak total RSS. If scoring
streams, the anonymous peak grows only by the output array (8 bytes per
image), not with the images themselves.

Usage: python benchmarks/memory.py [--sizes 10000 200000] [--side 28 | --features 30]
"""

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_kib():
    """Current (anonymous, total) resident memory of this process in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields["RssAnon"], fields["VmRSS"]


def measure_rss(fn):
    """Call ``fn()``; return its result, its seconds and the RSS it took.

    A sampler thread reads the process's resident memory every 10 ms; the
    returned dict holds the anonymous RSS before the call and the peaks of
    the anonymous and total RSS during it, in MiB.
    """
    before = rss_kib()
    peak = list(before)
    done = threading.Event()

    def sample():
        while not done.is_set():
            anon, total = rss_kib()
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    memory = {
        "anon_before_mib": before[0] / 1024,
        "anon_peak_mib": peak[0] / 1024,
        "total_peak_mib": peak[1] / 1024,
    }
    return result, seconds, memory


def sample_layout(args):
    """(dtype, shape of one sample, description) of the rows to score."""
    if args.features:
        return np.float32, (args.features,), f"{args.features} float32 features"
    return np.uint8, (args.side, args.side), f"{args.side}x{args.side} uint8 images"


def random_rows(rng, n, args):
    dtype, shape, _ = sample_layout(args)
    if dtype == np.uint8:
        return rng.randint(0, 256, size=(n, *shape), dtype=np.uint8)
    return rng.normal(size=(n, *shape)).astype(dtype)


def score_in_this_process(model_path, memmap_path, n, args):
    import torch

    torch.set_num_threads(2)
    with open(model_path, "rb") as f:
        detector = pickle.load(f)
    dtype, shape, _ = sample_layout(args)
    images = np.memmap(memmap_path, dtype=dtype, mode="r", shape=(n, *shape))
    scores, seconds, memory = measure_rss(lambda: detector.score_samples(images))
    print(
        json.dumps(
            {
                "n_images": n,
                **memory,
                "seconds": seconds,
                "finite": bool(np.all(np.isfinite(scores))),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument(
        "--features", type=int, default=None, help="score rows of this many features"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model_path, memmap_path, n = args.child
        score_in_this_process(model_path, memmap_path, int(n), args)
        return

    from skvae import VAEOutlierDetector

    rng = np.random.RandomState(0)
    side = args.side
    with tempfile.TemporaryDirectory() as tmp:
        dtype, shape, description = sample_layout(args)
        train = random_rows(rng, 256, args)
        detector = VAEOutlierDetector(max_epochs=1, random_state=0).fit(train)
        model_path = Path(tmp) / "model.pkl"
        model_path.write_bytes(pickle.dumps(detector))
        rows = []
        for n in args.sizes:
            memmap_path = Path(tmp) / f"images-{n}.u8"
            images = np.memmap(memmap_path, dtype=dtype, mode="w+", shape=(n, *shape))
            for start in range(0, n, 10_000):
                stop = min(n, start + 10_000)
                images[start:stop] = random_rows(rng, stop - start, args)
            images.flush()
            del images
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--side",
                    str(side),
                    *(["--features", str(args.features)] if args.features else []),
                    "--child",
                    str(model_path),
                    str(memmap_path),
                    str(n),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            memmap_path.unlink()
    row_bytes = np.dtype(dtype).itemsize * int(np.prod(shape))
    print(
        f"| rows ({description}, memmap) | input MiB | anon RSS before MiB "
        "| anon RSS peak MiB | total RSS peak MiB | seconds |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['n_images']:,} | {row['n_images'] * row_bytes / 2**20:.0f} "
            f"| {row['anon_before_mib']:.0f} | {row['anon_peak_mib']:.0f} "
            f"| {row['total_peak_mib']:.0f} | {row['seconds']:.1f} |"
        )
    growth = rows[-1]["anon_peak_mib"] - rows[0]["anon_peak_mib"]
    output_mib = (rows[-1]["n_images"] - rows[0]["n_images"]) * 8 / 2**20
    print(
        f"\nanonymous peak growth from {rows[0]['n_images']:,} to "
        f"{rows[-1]['n_images']:,} rows: {growth:.1f} MiB "
        f"(output array: {output_mib:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
