"""Latency of one row and throughput of many: score_samples against the raw pass.

``score_samples`` pads every forward pass to a fixed block of rows so that a
row's score never depends on the rows it is scored with (skvae.scoring).
This measures, for an image detector (with and without the transformation
classifier) and a tabular one, on the CPU:

- the raw forward pass of one unpadded row: the networks' modules called on
  a one-row tensor, computing what the default score needs;
- ``score_samples`` of one row, end to end (validation, padding, kNN);
- ``score_samples`` of many rows, per row;

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

from .._shared import best_of_alternating, environment, read_json, write_json

RESULTS_FILE = "latency.json"


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--bulk-rows", type=int, default=4000)
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


def best_ms(functions, repeats):
    """Best time in ms of each function, over alternating repeats."""
    seconds = best_of_alternating(functions, repeats, report=None)
    return {name: 1e3 * min(values) for name, values in seconds.items()}


def measure(name, detector, X, args):
    row, bulk = X[:1], X[: args.bulk_rows]
    single = best_ms(
        {
            "raw": raw_forward(detector, row),
            "score_samples": lambda: detector.score_samples(row),
        },
        args.repeats,
    )
    many = best_ms({"bulk": lambda: detector.score_samples(bulk)}, 3)["bulk"]
    return {
        "detector": name,
        "raw_ms": single["raw"],
        "one_row_ms": single["score_samples"],
        "ratio": single["score_samples"] / single["raw"],
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
    one = best_ms({"one": lambda: session.run(None, {"x": rows[:1]})}, args.repeats)
    many = best_ms({"bulk": lambda: session.run(None, {"x": rows})}, 3)
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
                f"raw {result['raw_ms']:6.2f} ms, ratio {result['ratio']:5.2f}; "
                f"{result['bulk_ms_per_row']:.3f} ms per row in bulk"
            )
