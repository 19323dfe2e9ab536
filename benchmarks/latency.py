"""Latency of one row and throughput of many: score_samples against the raw pass.

``score_samples`` pads every forward pass to a fixed block of rows so that a
row's score never depends on the rows it is scored with (skvae.scoring).
This measures, for an image detector (with and without the transformation
classifier) and a tabular one, on the CPU:

- the raw forward pass of one unpadded row: the networks' modules called on
  a one-row tensor, computing what the default score needs;
- ``score_samples`` of one row, end to end (validation, padding, kNN);
- ``score_samples`` of many rows, per row;

for the default block sizes and, with ``--block-rows``, others. Timings are
the best of ``--repeats`` alternating repeats. The weights do not matter for
timing, so the detectors train for one epoch.

    OMP_NUM_THREADS=1 python benchmarks/latency.py --out benchmarks/results/latency.json
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _environment import environment

from skvae import VAEOutlierDetector
from skvae.datasets import DatasetNotFoundError, load_fashion_mnist
from skvae.scoring import _batches as batches


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--bulk-rows", type=int, default=4000)
    parser.add_argument(
        "--block-rows", type=int, nargs="*", default=[], help="also time these"
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also time the exported ONNX file",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def images():
    try:
        return load_fashion_mnist(subset="train").images[:6000]
    except DatasetNotFoundError:
        rng = np.random.RandomState(0)
        return rng.randint(0, 256, size=(6000, 28, 28)).astype(np.uint8)


def detectors():
    X_images = images()
    rng = np.random.RandomState(0)
    X_rows = rng.normal(size=(6000, 30)).astype(np.float32)
    fast = {"max_epochs": 1, "random_state": 0}
    return {
        "images 28x28 (default)": (VAEOutlierDetector(**fast), X_images),
        "images 28x28, transformations=None": (
            VAEOutlierDetector(**fast, transformations=None),
            X_images,
        ),
        "tabular 30 features": (VAEOutlierDetector(**fast), X_rows),
    }


def raw_forward(detector, row):
    """The modules' forward pass on one unpadded row, as the score needs it."""
    vae = detector.net_.module_.eval()
    classifier = detector.transformation_net_
    classifier = None if classifier is None else classifier.module_.eval()
    x = torch.as_tensor(detector._validate_input(row, reset=False)).reshape(
        1, *detector.input_shape_
    )

    def run():
        with torch.inference_mode():
            vae.elbo_terms(x, vae(x))
            if classifier is not None:
                classifier.score_copies(x)

    return run


def best_of(functions, repeats):
    """Best time in ms of each function, over alternating repeats."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * min(values) for name, values in times.items()}


def set_block_rows(rows):
    """Set the CPU block size of both kinds of input (None: the defaults)."""
    defaults = (batches.CPU_IMAGE_BLOCK_ROWS, batches.CPU_FLAT_BLOCK_ROWS)
    if rows is not None:
        batches.CPU_IMAGE_BLOCK_ROWS = batches.CPU_FLAT_BLOCK_ROWS = rows
    return defaults


def measure(name, detector, X, args):
    row, bulk = X[:1], X[: args.bulk_rows]
    results = []
    for rows in [None, *args.block_rows]:
        defaults = set_block_rows(rows)
        block = batches.score_block_rows(detector.input_shape_)
        single = best_of(
            {
                "raw": raw_forward(detector, row),
                "score_samples": lambda: detector.score_samples(row),
            },
            args.repeats,
        )
        many = best_of({"bulk": lambda: detector.score_samples(bulk)}, 3)["bulk"]
        batches.CPU_IMAGE_BLOCK_ROWS, batches.CPU_FLAT_BLOCK_ROWS = defaults
        result = {
            "detector": name,
            "block_rows": block,
            "default": rows is None,
            "raw_ms": single["raw"],
            "one_row_ms": single["score_samples"],
            "ratio": single["score_samples"] / single["raw"],
            "bulk_ms_per_row": many / len(bulk),
        }
        results.append(result)
        print(
            f"{name:36s} block {block:4d}: one row {result['one_row_ms']:7.2f} ms, "
            f"raw {result['raw_ms']:6.2f} ms, ratio {result['ratio']:5.2f}; "
            f"{result['bulk_ms_per_row']:.3f} ms per row in bulk",
            flush=True,
        )
    return results


def measure_onnx(name, detector, X, args):
    """Export seconds, file size and onnxruntime timings of one detector."""
    import tempfile

    import onnxruntime

    from skvae.export import export_onnx

    path = Path(tempfile.mkdtemp()) / "detector.onnx"
    start = time.perf_counter()
    export_onnx(detector, path)
    export_seconds = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options)
    rows = detector._validate_input(X[: args.bulk_rows], reset=False)
    rows = rows.reshape(len(rows), *detector.sample_shape_)
    one = best_of({"one": lambda: session.run(None, {"x": rows[:1]})}, args.repeats)
    many = best_of({"bulk": lambda: session.run(None, {"x": rows})}, 3)
    result = {
        "detector": name,
        "onnx_export_seconds": export_seconds,
        "onnx_megabytes": path.stat().st_size / 1e6,
        "onnx_one_row_ms": one["one"],
        "onnx_bulk_ms_per_row": many["bulk"] / len(rows),
    }
    print(
        f"{name:36s} ONNX: export {export_seconds:.1f} s, "
        f"{result['onnx_megabytes']:.1f} MB, one row {one['one']:.2f} ms, "
        f"{result['onnx_bulk_ms_per_row']:.3f} ms per row in bulk",
        flush=True,
    )
    return result


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for name, (detector, X) in detectors().items():
        detector.fit(X)
        results.extend(measure(name, detector, X, args))
        if args.onnx:
            results.append(measure_onnx(name, detector, X, args))
    if args.out is not None:
        args.out.write_text(
            json.dumps({"results": results, "environment": environment(args)}, indent=1)
        )


if __name__ == "__main__":
    main()
