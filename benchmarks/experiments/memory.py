"""Peak memory of scoring a numpy.memmap: 10,000 vs 200,000 rows.

Each size is scored in a fresh subprocess; a sampler thread records the peak
anonymous RSS (the process's own memory, excluding the memmap's file pages,
which the kernel can drop at will) and the peak total RSS. If scoring
streams, the anonymous peak grows only by the output array (8 bytes per
row), not with the rows themselves. Rows are uint8 images (``--side``) or
float32 features (``--features``).

    python -m benchmarks memory run [--sizes 10000 200000] [--side 28 | --features 30]
"""

import pickle
import tempfile
from pathlib import Path

import numpy as np

from .._shared import (
    environment,
    in_fresh_process,
    measure_rss,
    read_json,
    write_json,
)


def add_arguments(parser):
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    add_summary_arguments(parser)


def add_summary_arguments(parser):
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument(
        "--features", type=int, default=None, help="score rows of this many features"
    )


def results_file(args):
    kind = f"features{args.features}" if args.features else f"side{args.side}"
    return Path(args.out) / f"memory_{kind}.json"


def sample_layout(side, features):
    """(dtype, shape of one row, description) of the rows to score."""
    if features:
        return np.float32, (features,), f"{features} float32 features"
    return np.uint8, (side, side), f"{side}x{side} uint8 images"


def random_rows(rng, n, side, features):
    dtype, shape, _ = sample_layout(side, features)
    if dtype == np.uint8:
        return rng.randint(0, 256, size=(n, *shape), dtype=np.uint8)
    return rng.normal(size=(n, *shape)).astype(dtype)


def score_in_this_process(model_path, memmap_path, n, side, features, threads):
    """Score the memmap with the pickled detector; print one JSON line."""
    import json

    import torch

    torch.set_num_threads(threads)
    with open(model_path, "rb") as f:
        detector = pickle.load(f)
    dtype, shape, _ = sample_layout(side, features)
    rows = np.memmap(memmap_path, dtype=dtype, mode="r", shape=(n, *shape))
    scores, seconds, memory = measure_rss(lambda: detector.score_samples(rows))
    finite = bool(np.all(np.isfinite(scores)))
    print(json.dumps({"n_rows": n, **memory, "seconds": seconds, "finite": finite}))


def run(args):
    from skvae import VAEOutlierDetector

    rng = np.random.RandomState(args.seed)
    dtype, shape, description = sample_layout(args.side, args.features)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        train = random_rows(rng, 256, args.side, args.features)
        detector = VAEOutlierDetector(max_epochs=1, random_state=args.seed).fit(train)
        model_path = Path(tmp) / "model.pkl"
        model_path.write_bytes(pickle.dumps(detector))
        for n in args.sizes:
            memmap_path = Path(tmp) / f"rows-{n}"
            rows = np.memmap(memmap_path, dtype=dtype, mode="w+", shape=(n, *shape))
            for start in range(0, n, 10_000):
                stop = min(n, start + 10_000)
                rows[start:stop] = random_rows(
                    rng, stop - start, args.side, args.features
                )
            rows.flush()
            del rows
            record = in_fresh_process(
                __name__,
                "score_in_this_process",
                str(model_path),
                str(memmap_path),
                n,
                args.side,
                args.features,
                args.threads,
                threads=args.threads,
            )
            records.append(record)
            memmap_path.unlink()
    write_json(
        results_file(args),
        {
            "environment": environment(),
            "rows": description,
            "row_bytes": np.dtype(dtype).itemsize * int(np.prod(shape)),
            "records": records,
        },
    )
    summarize(args)


def summarize(args):
    result = read_json(results_file(args))
    records, row_bytes = result["records"], result["row_bytes"]
    print(
        f"| rows ({result['rows']}, memmap) | input MiB | anon RSS before MiB "
        "| anon RSS peak MiB | total RSS peak MiB | seconds |"
    )
    print("|---|---|---|---|---|---|")
    for r in records:
        print(
            f"| {r['n_rows']:,} | {r['n_rows'] * row_bytes / 2**20:.0f} "
            f"| {r['anon_before_mib']:.0f} | {r['anon_peak_mib']:.0f} "
            f"| {r['total_peak_mib']:.0f} | {r['seconds']:.1f} |"
        )
    first, last = records[0], records[-1]
    growth = last["anon_peak_mib"] - first["anon_peak_mib"]
    output_mib = (last["n_rows"] - first["n_rows"]) * 8 / 2**20
    print(
        f"\nanonymous peak growth from {first['n_rows']:,} to "
        f"{last['n_rows']:,} rows: {growth:.1f} MiB "
        f"(output array: {output_mib:.1f} MiB)"
    )
