"""Training and scoring speed: skvae against a hand-written PyTorch loop.

In one run on one machine, the same conv VAE module (the default
architecture of VAEOutlierDetector), data, batch size, epochs and optimizer
are trained (a) through ``VAEOutlierDetector.fit`` and (b) through a minimal
hand-written loop, ``--repeats`` times each, alternating (best time kept);
then the same uint8 images are scored both ways (the per-sample ELBO; the
loop at each of ``LOOP_SCORE_BATCHES`` images per batch, its best counting;
both sides convert the pixels to float32 batch by batch), also
``--repeats`` times alternating, best time kept. Prints images/second,
the ratios, FLOPs per image, achieved GFLOP/s and the machine's float32
matmul peak, and the scoring speed of the default detector (its score and
transformation classifier) against the VAE alone.

    python -m benchmarks speed run --threads 2 [--n-images 10000] [--epochs 3]
"""

import copy
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from skvae import VAEOutlierDetector
from skvae.nn import NegativeELBO
from skvae.scoring import resolve_precision

from .._shared import environment, read_json, timed, write_json

RESULTS_FILE = "speed.json"


def load_images(n):
    """Fashion-MNIST training images when installed, else random 28x28."""
    try:
        from skvae.datasets import load_fashion_mnist

        images = load_fashion_mnist(subset="train").images[:n]
        source = "Fashion-MNIST train"
    except FileNotFoundError:
        images = np.random.RandomState(0).randint(0, 256, (n, 28, 28), dtype=np.uint8)
        source = "random uint8"
    return images, source


def matmul_peak_gflops(size=2048, repeats=10):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def flops_per_image(module, batch, training):
    module.train(training)
    with FlopCounterMode(display=False) as counter:
        if training:
            output = module(batch)
            loss = NegativeELBO()(*module.elbo_terms(batch, output))
            loss.backward()
        else:
            with torch.no_grad():
                module.elbo_terms(batch, module(batch))
    module.zero_grad()
    return counter.get_total_flops() / len(batch)


def flops_per_scored_image(detector, images):
    """Network FLOPs per image of ``detector.score_samples`` (its torch passes).

    Counted at one torch thread: the counter sees only the calling thread's
    operators, and at more threads the passes run on worker threads.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with FlopCounterMode(display=False) as counter:
            detector.score_samples(images)
    finally:
        torch.set_num_threads(threads)
    return counter.get_total_flops() / len(images)


def hand_written_fit(module, X, epochs, batch_size, lr, seed):
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    criterion = NegativeELBO()
    module.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(batch_size):
            x = X[idx]
            optimizer.zero_grad()
            loss = criterion(*module.elbo_terms(x, module(x)))
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def hand_written_scores(module, images, batch_size):
    module.eval()
    start = time.perf_counter()
    out = []
    with torch.inference_mode():
        for first in range(0, len(images), batch_size):
            pixels = torch.from_numpy(images[first : first + batch_size])
            x = pixels.unsqueeze(1).float().div_(255)
            log_px, kl = module.elbo_terms(x, module(x))
            out.append(log_px - kl)
    torch.cat(out)
    return time.perf_counter() - start


# Batch sizes the hand-written scoring loop is timed at; the best one counts.
LOOP_SCORE_BATCHES = (16, 64, 256, 1024)


def seconds(fn, *args):
    return timed(fn, *args)[1]


def add_arguments(parser):
    parser.add_argument("--n-images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)


def fresh_copy(module, seed):
    """The same architecture as ``module``, freshly initialised from ``seed``."""
    torch.manual_seed(seed)
    fresh = copy.deepcopy(module)
    for layer in fresh.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return fresh


def run(args):
    images, source = load_images(args.n_images)
    X = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)
    n, epochs, bs = len(X), args.epochs, args.batch_size

    # score_type="elbo": the same quantity the hand-written loop computes;
    # the VAE alone, without the transformation classifier of the default.
    detector = VAEOutlierDetector(
        max_epochs=epochs,
        batch_size=bs,
        score_type="elbo",
        transformations=None,
        random_state=args.seed,
    )
    # Both sides train --repeats times, alternating, from the same seed; the
    # best time of each is kept, so neither pays the process's warm-up (thread
    # pool, kernel selection) or a noisy neighbour alone.
    skvae_fits, skvae_trains, loop_trains = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        detector.fit(images)
        skvae_fits.append(time.perf_counter() - start)
        skvae_trains.append(float(sum(detector.history_[:, "dur"])))
        # The architecture the detector built (its defaults), freshly initialised.
        module = fresh_copy(detector.net_.module_, args.seed)
        loop_trains.append(
            hand_written_fit(module, X, epochs, bs, 1e-3, seed=args.seed)
        )
    skvae_fit_total, skvae_train = min(skvae_fits), min(skvae_trains)
    loop_train = min(loop_trains)

    # Both sides score with the same module, the detector's: weights trained
    # elsewhere can run at another speed (denormal activations, for one).
    scored = detector.net_.module_
    skvae_scores, default_scores = [], []
    loop_scores_by_batch = {batch: [] for batch in LOOP_SCORE_BATCHES}
    for _ in range(args.repeats):
        skvae_scores.append(seconds(detector.score_samples, images))
        for batch, times in loop_scores_by_batch.items():
            times.append(seconds(hand_written_scores, scored, images, batch))
    # The loop at its best batch size: the hardware's speed for this module.
    best_batch = min(loop_scores_by_batch, key=lambda b: min(loop_scores_by_batch[b]))
    loop_scores = loop_scores_by_batch[best_batch]
    # The default detector (its score, the transformation classifier, the
    # held-out rows), trained as long as the VAE above.
    default = VAEOutlierDetector(
        max_epochs=epochs, batch_size=bs, random_state=args.seed
    )
    default.fit(images)
    # The same fit with its classifier scoring in float32, alternating with
    # the default's precision ("auto": bfloat16 on CPUs with AMX).
    default_float32 = copy.deepcopy(default)
    default_float32.set_params(transformation_precision="float32")
    default_float32_scores = []
    for _ in range(args.repeats):
        default_scores.append(seconds(default.score_samples, images))
        default_float32_scores.append(seconds(default_float32.score_samples, images))
    skvae_score, loop_score = min(skvae_scores), min(loop_scores)

    train_flops = flops_per_image(module, X[:bs], training=True)
    score_flops = flops_per_image(module, X[:best_batch], training=False)
    default_score_flops = flops_per_scored_image(default, images[:best_batch])
    peak = matmul_peak_gflops()
    rows = {
        "hand-written loop": (n * epochs / loop_train, n / loop_score),
        "skvae (training loop)": (n * epochs / skvae_train, n / skvae_score),
        "skvae (whole fit)": (n * epochs / skvae_fit_total, n / skvae_score),
    }
    default_rate = n / min(default_scores)
    base_fit, base_score = rows["hand-written loop"]
    write_json(
        Path(args.out) / RESULTS_FILE,
        {
            "environment": environment(),
            "data": {"n_images": n, "source": source, "epochs": epochs, "batch": bs},
            "rows": rows,
            "train_flops": train_flops,
            "score_flops": score_flops,
            "peak_gflops": peak,
            "fit_ratio": rows["skvae (training loop)"][0] / base_fit,
            "whole_fit_ratio": rows["skvae (whole fit)"][0] / base_fit,
            "score_ratio": rows["skvae (training loop)"][1] / base_score,
            "default_detector_score_rate": default_rate,
            "default_detector_precision": resolve_precision(
                default.transformation_precision
            ),
            "default_float32_score_rate": n / min(default_float32_scores),
            "default_score_flops": default_score_flops,
            "train_seconds": {"skvae": skvae_trains, "loop": loop_trains},
            "loop_best_score_batch": best_batch,
            "score_seconds": {
                "skvae": skvae_scores,
                "loop": loop_scores,
                "loop_by_batch": loop_scores_by_batch,
                "skvae_default_detector": default_scores,
                "skvae_default_detector_float32": default_float32_scores,
            },
        },
    )
    summarize(args)


def summarize(args):
    result = read_json(Path(args.out) / RESULTS_FILE)
    data, rows, peak = _data_of(result), result["rows"], result["peak_gflops"]
    train_flops, score_flops = result["train_flops"], result["score_flops"]
    n, best_batch = data["n_images"], result["loop_best_score_batch"]
    scores = result["score_seconds"]
    print(
        f"data: {n} {data['source']} images, {data['epochs']} epochs, "
        f"batch {data['batch']}, {data['threads']} torch threads"
    )
    print(
        f"FLOPs per image: training step {train_flops / 1e6:.1f} M, "
        f"scoring {score_flops / 1e6:.1f} M; float32 matmul peak {peak:.0f} GFLOP/s\n"
    )
    print(
        "| | fit img/s | fit GFLOP/s (% peak) | score img/s | score GFLOP/s (% peak) |"
    )
    print("|---|---|---|---|---|")
    for name, (fit_rate, score_rate) in rows.items():
        fit_gf, score_gf = fit_rate * train_flops / 1e9, score_rate * score_flops / 1e9
        print(
            f"| {name} | {fit_rate:.0f} | {fit_gf:.1f} ({100 * fit_gf / peak:.0f}%) "
            f"| {score_rate:.0f} | {score_gf:.1f} ({100 * score_gf / peak:.0f}%) |"
        )
    print(
        f"\nratios vs hand-written: fit (training loop) {result['fit_ratio']:.3f}, "
        "fit (whole, incl. threshold and latent statistics passes) "
        f"{result['whole_fit_ratio']:.3f}, scoring {result['score_ratio']:.3f}"
    )
    default_rate = result["default_detector_score_rate"]
    print(
        f"default detector (score_type='auto'): {default_rate:.0f} img/s, "
        f"{rows['skvae (whole fit)'][1] / default_rate:.2f}x the scoring time of "
        "the VAE alone; "
        f"scoring seconds skvae {np.round(scores['skvae'], 3).tolist()}, "
        f"loop at its best batch ({best_batch}) {np.round(scores['loop'], 3).tolist()}"
    )
    if "default_float32_score_rate" in result:
        float32_rate = result["default_float32_score_rate"]
        print(
            f"its classifier scored in {result['default_detector_precision']}; "
            f"in float32: {float32_rate:.0f} img/s, "
            f"{rows['skvae (whole fit)'][1] / float32_rate:.2f}x the VAE alone"
        )
    if "default_score_flops" in result:
        default_flops = result["default_score_flops"]
        default_gf = default_rate * default_flops / 1e9
        print(
            f"default detector's networks: {default_flops / 1e6:.1f} MFLOP per "
            f"scored image ({default_flops / score_flops:.1f}x the VAE's), "
            f"{default_gf:.1f} GFLOP/s ({100 * default_gf / peak:.0f}% of peak; "
            "the neighbour searches are NumPy, not counted)"
        )
    print(
        "loop scoring img/s by batch: "
        + ", ".join(
            f"{batch}: {n / min(times):.0f}"
            for batch, times in scores["loop_by_batch"].items()
        )
    )
    trains = result["train_seconds"]
    print(
        f"training seconds (alternating repeats): "
        f"skvae {np.round(trains['skvae'], 2).tolist()}, "
        f"loop {np.round(trains['loop'], 2).tolist()}"
    )


def _data_of(result):
    """What was measured; results written before the runner kept it in args."""
    if "data" in result:
        threads = result["environment"]["torch_threads"]
        return {**result["data"], "threads": threads}
    old = result["args"]
    return {
        "n_images": old["n_images"],
        "source": "Fashion-MNIST",
        "epochs": old["epochs"],
        "batch": old["batch_size"],
        "threads": old["threads"],
    }
