"""Latency of one row and throughput of many: score_samples against the raw pass.

``score_samples`` pads every forward pass to a fixed block of rows so that a
row's score never depends on the rows it is scored with (skvae.scoring).
This measures, for an image detector (with and without the transformation
classifier) and a tabular one, on the CPU:

- the raw forward pass of one unpadded row: the networks' modules called on
  a one-row tensor, computing what the default score needs;
- ``score_samples`` of one row, end to end (validation, padding, kNN);
- ``score_samples`` of many rows, per row;

each one-row figure twice: *interleaved*, the two sides alternating call by
call (each call then finds the caches as the other side left them: the
score's neighbour search evicts the networks' weights), and *consecutive*,
``--calls`` calls of one side in a row per repeat, as a serving loop calls
one of them (the raw pass then runs with its weights in cache).

and with ``--onnx`` the exported file's. Timings are
the best of ``--repeats`` alternating repeats. The weights do not matter for
timing, so the detectors train for one epoch.

    python -m benchmarks latency run [--onnx]
"""

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skvae import VAEOutlierDetector
from skvae.datasets import DatasetNotFoundError, load_fashion_mnist
from skvae.scoring import resolve_precision

from .._shared import best_call_ms, environment, read_json, write_json

RESULTS_FILE = "latency.json"


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--bulk-rows", type=int, default=4000)
    parser.add_argument(
        "--calls",
        type=int,
        default=20,
        help="consecutive calls of one side per repeat, for the consecutive figures",
    )
    parser.add_argument(
        "--onnx", action="store_true", help="also time the exported ONNX file"
    )


def images():
    try:
        return load_fashion_mnist(subset="train").images[:6000]
    except DatasetNotFoundError:
        rng = np.random.RandomState(0)
        return rng.randint(0, 256, size=(6000, 28, 28)).astype(np.uint8)


def detectors(seed):
    X_images = images()
    rng = np.random.RandomState(seed)
    X_rows = rng.normal(size=(6000, 30)).astype(np.float32)
    fast = {"max_epochs": 1, "random_state": seed}
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
    # Like for like: the classifier's scoring copy, in the precision the
    # detector scores it.
    if classifier is not None:
        precision = resolve_precision(detector.transformation_precision)
        classifier = classifier.in_dtype(getattr(torch, precision))
    x = torch.as_tensor(model_input(detector, row))

    def run():
        with torch.inference_mode():
            vae.elbo_terms(x, vae(x))
            if classifier is not None:
                classifier.score_copies(x)

    return run


def model_input(detector, X):
    """``X`` as the networks read it: float32, uint8 pixels scaled to [0, 1]."""
    X = np.asarray(X)
    scale = np.float32(1 / 255) if X.dtype == np.uint8 else np.float32(1)
    return (X.astype(np.float32) * scale).reshape(len(X), *detector.input_shape_)


def measure(name, detector, X, args):
    row, bulk = X[:1], X[: args.bulk_rows]
    one_row = {
        "raw": raw_forward(detector, row),
        "score_samples": lambda: detector.score_samples(row),
    }
    interleaved = best_call_ms(one_row, args.repeats)
    consecutive = best_call_ms(one_row, max(3, args.repeats // 5), calls=args.calls)
    many = best_call_ms({"bulk": lambda: detector.score_samples(bulk)}, 3)["bulk"]
    return {
        "detector": name,
        "raw_ms": interleaved["raw"],
        "one_row_ms": interleaved["score_samples"],
        "ratio": interleaved["score_samples"] / interleaved["raw"],
        "consecutive_raw_ms": consecutive["raw"],
        "consecutive_one_row_ms": consecutive["score_samples"],
        "consecutive_ratio": consecutive["score_samples"] / consecutive["raw"],
        "bulk_ms_per_row": many / len(bulk),
    }


def measure_onnx(name, detector, X, args):
    """Export seconds, file size and onnxruntime timings of one detector."""
    import onnxruntime

    from skvae.export import export_onnx

    path = Path(tempfile.mkdtemp()) / "detector.onnx"
    start = time.perf_counter()
    export_onnx(detector, path)
    export_seconds = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(str(path), options)
    rows = model_input(detector, X[: args.bulk_rows])
    rows = rows.reshape(len(rows), *detector.sample_shape_)
    one = best_call_ms(
        {"one": lambda: session.run(None, {"x": rows[:1]})}, args.repeats
    )
    many = best_call_ms({"bulk": lambda: session.run(None, {"x": rows})}, 3)
    result = {
        "detector": name,
        "onnx_export_seconds": export_seconds,
        "onnx_megabytes": path.stat().st_size / 1e6,
        "onnx_one_row_ms": one["one"],
        "onnx_bulk_ms_per_row": many["bulk"] / len(rows),
    }
    return result


def run(args):
    results = []
    for name, (detector, X) in detectors(args.seed).items():
        detector.fit(X)
        results.append(measure(name, detector, X, args))
        if args.onnx:
            results.append(measure_onnx(name, detector, X, args))
    write_json(
        Path(args.out) / RESULTS_FILE,
        {"results": results, "environment": environment()},
    )
    summarize(args)


def summarize(args):
    for result in read_json(Path(args.out) / RESULTS_FILE)["results"]:
        name = result["detector"]
        if "onnx_one_row_ms" in result:
            print(
                f"{name:36s} ONNX: export {result['onnx_export_seconds']:.1f} s, "
                f"{result['onnx_megabytes']:.1f} MB, one row "
                f"{result['onnx_one_row_ms']:.2f} ms, "
                f"{result['onnx_bulk_ms_per_row']:.3f} ms per row in bulk"
            )
        else:
            print(
                f"{name:36s} one row {result['one_row_ms']:7.2f} ms, "
                f"raw {result['raw_ms']:6.2f} ms, ratio {result['ratio']:5.2f}"
                f"{_consecutive(result)}; "
                f"{result['bulk_ms_per_row']:.3f} ms per row in bulk"
            )


def _consecutive(result):
    """The consecutive one-row figures, if the run measured them."""
    if "consecutive_ratio" not in result:
        return ""
    return (
        f" (consecutive: {result['consecutive_one_row_ms']:.2f} / "
        f"{result['consecutive_raw_ms']:.2f} ms, "
        f"ratio {result['consecutive_ratio']:.2f})"
    )
