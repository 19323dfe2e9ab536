"""Bits per dimension of a learned-gamma VAE: Fashion-MNIST vs outliers (issue 4).

Dai & Wipf (2019) train a VAE with a learned decoder variance gamma on
Fashion-MNIST and report that it gives MNIST (out-of-distribution) images a
higher bits-per-dimension than Fashion-MNIST test images, for every latent
size. This script repeats the measurement with skvae's default detector
(Gaussian likelihood, ``decoder_var="learned"``), for each latent size:

- fit ``VAEOutlierDetector(latent_dim=k)`` on the first ``--n-train``
  Fashion-MNIST training images (all classes; uint8, scaled by 1/255);
- score ``--n-eval`` images of each set with the IWAE bound on log p(x)
  (``--n-samples`` importance samples) and convert it to bits per dimension
  with ``bits_per_dim(..., discretization=256)``;
- report the mean BPD per set and the learned gamma (``decoder_var_``).

The sets, none downloaded: the training images themselves; Fashion-MNIST
test images; scikit-learn's 8x8 digits upscaled to 20x20 (bilinear) and
centred in a 28x28 frame, as MNIST digits are ("digits"); Fashion-MNIST test
images inverted, ``1 - x`` ("inverted"); uniform noise on [0, 1]
("noise"). Example::

    python -m benchmarks bpd_ood run --latent-dims 16 64 --n-train 6000 --n-eval 1000
"""

import time
from pathlib import Path

import numpy as np
from scipy.ndimage import zoom
from sklearn.datasets import load_digits

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist
from skvae.scoring import bits_per_dim, iwae_scores, latent_noise

from .._shared import environment, read_json, write_json


def add_arguments(parser):
    parser.add_argument("--latent-dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument(
        "--max-epochs", default="auto", help='int, or "auto" (the default)'
    )


def digits_28x28():
    """scikit-learn's digits in [0, 1], upscaled to 20x20 and centred in 28x28."""
    images = load_digits().images / 16.0
    big = np.clip(zoom(images, (1, 2.5, 2.5), order=1), 0.0, 1.0)
    out = np.zeros((len(images), 28, 28), dtype=np.float32)
    out[:, 4:24, 4:24] = big
    return out


def evaluation_sets(train, test, n_eval, rng):
    """The image sets to score, as float32 arrays in [0, 1]."""
    test = test[:n_eval].astype(np.float32) / 255.0
    return {
        "train": train[:n_eval].astype(np.float32) / 255.0,
        "test": test,
        "digits": digits_28x28()[:n_eval],
        "inverted": 1.0 - test,
        "noise": rng.uniform(size=test.shape).astype(np.float32),
    }


def run(args):
    max_epochs = args.max_epochs if args.max_epochs == "auto" else int(args.max_epochs)
    train = load_fashion_mnist(subset="train").images[: args.n_train]
    test = load_fashion_mnist(subset="test").images
    sets = evaluation_sets(train, test, args.n_eval, np.random.RandomState(args.seed))
    rows = []
    for latent_dim in args.latent_dims:
        det = VAEOutlierDetector(
            latent_dim,
            max_epochs=max_epochs,
            transformations=None,  # bits per dimension need the VAE only
            random_state=args.seed,
        )
        start = time.perf_counter()
        det.fit(train)
        # IWAE of the fitted VAE directly: a detector fitted with
        # score_type="iwae" would also score every training image with it.
        noise = latent_noise(args.n_samples, latent_dim, args.seed)
        row = {
            "latent_dim": latent_dim,
            "gamma": float(det.decoder_var_),
            "fit_seconds": time.perf_counter() - start,
        }
        for name, X in sets.items():
            flat = X.reshape(len(X), -1).astype(np.float32)
            log_px = iwae_scores(
                det.net_.module_, flat, noise=noise, input_shape=det.input_shape_
            )
            bpd = bits_per_dim(log_px, 28 * 28, discretization=256)
            row[name] = float(np.mean(bpd))
        rows.append(row)
        print(row, flush=True)

    write_json(
        Path(args.out) / "bpd_ood.json",
        {"environment": environment(), "sets": list(sets), "rows": rows},
    )
    summarize(args)


def summarize(args):
    result = read_json(Path(args.out) / "bpd_ood.json")
    rows = result["rows"]
    names = result.get("sets") or [
        k for k in rows[0] if k not in ("latent_dim", "gamma", "fit_seconds")
    ]
    lines = [
        "| latent | gamma | " + " | ".join(f"{n} BPD" for n in names) + " | fit s |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for row in rows:
        cells = " | ".join(f"{row[n]:.2f}" for n in names)
        lines.append(
            f"| {row['latent_dim']} | {row['gamma']:.4g} | {cells} "
            f"| {row['fit_seconds']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    (Path(args.out) / "bpd_ood.md").write_text(table + "\n")
