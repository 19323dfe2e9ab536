"""Dai & Wipf (2019) table 1: bits per dimension of a learned-gamma VAE (issue 19).

Dai & Wipf train a VAE with a learned decoder variance gamma on
Fashion-MNIST and report the bits per dimension (BPD) of its training and
test images and of MNIST, for latent sizes kappa from 16 to 512: the
outliers stay above the test images at every kappa. This script repeats it
with the paper's network, built through skvae's public parameters:

- inputs: Fashion-MNIST (all 60,000 training images), zero-padded to 32x32
  as the paper's inputs are (the model models the padded image, so the BPD
  is per 32x32 = 1,024 dimensions);
- ``VAETransformer(latent_dim=kappa, hidden_dims=(64, 128, 256),
  kernel_size=5, batch_norm=True, activation="relu", lr=1e-4,
  decoder_var="learned")``: three 5x5 stride-2 convolutions with batch
  normalisation and ReLU, flattened (4x4x256) to two dense heads for mu and
  log sigma; the mirrored decoder; Adam at 1e-4. ``--gamma jointly`` learns
  gamma by gradient descent with the network (the paper's way) instead of
  skvae's closed-form optimum per batch;
- ``train`` saves a resumable checkpoint (weights, optimizer, history) and
  a copy of the weights after every epoch: run the same command again to
  continue a run that stopped;
- ``evaluate`` scores every saved epoch on the sets below with the
  importance-weighted bound (``--n-samples`` draws) on the probability of
  the 8-bit image (:func:`skvae.scoring.discrete_iwae_scores`), and with
  the density approximation used before (:func:`skvae.scoring.iwae_scores`
  plus 8 bits);
- ``summarize`` writes the table and the training curves.

Outlier sets, none downloaded: scikit-learn's 8x8 digits upscaled to 20x20
and centred in 32x32 as MNIST digits are ("digits", an MNIST stand-in);
digits typeset in DejaVu fonts with MNIST's size normalisation ("rendered",
a stand-in with sharp strokes);
Fashion-MNIST test images inverted (``255 - x``) and uniform 8-bit noise.
Example (one thread per process; two processes run side by side)::

    python -m benchmarks bpd_dai_wipf run train --kappa 16 --epochs 6 --batch-size 16
    python -m benchmarks bpd_dai_wipf run evaluate --kappa 16
    python -m benchmarks bpd_dai_wipf summarize
"""

import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import center_of_mass, zoom
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from skvae import VAETransformer
from skvae.datasets import load_fashion_mnist
from skvae.nn import make_vae
from skvae.scoring import (
    bits_per_dim,
    discrete_iwae_scores,
    iwae_scores,
    latent_noise,
    map_batches,
)

from .._shared import environment

CHECKPOINTS = Path(os.environ.get("SKVAE_CHECKPOINTS", "/tmp/skvae_dai_wipf"))
SIDE = 32


def add_arguments(parser):
    parser.add_argument("command", choices=["train", "evaluate"])
    parser.add_argument("--kappa", type=int, default=16)
    parser.add_argument(
        "--gamma", choices=["closed_form", "jointly"], default="closed_form"
    )
    parser.add_argument(
        "--width", type=int, default=1, help="multiply the paper's channels"
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--n-curve", type=int, default=300)
    parser.add_argument(
        "--curve-only", action="store_true", help="evaluate new epochs, no table"
    )


def pad_to_32(images):
    """Zero-pad (n, 28, 28) uint8 images to (n, 32, 32), centred."""
    margin = (SIDE - images.shape[-1]) // 2
    return np.pad(images, ((0, 0), (margin, margin), (margin, margin)))


def run_name(args):
    suffix = "" if args.gamma == "closed_form" else "_gamma_jointly"
    if args.width != 1:
        suffix += f"_width{args.width}"
    return f"kappa{args.kappa}{suffix}"


class EpochSnapshot(Callback):
    """Save the module's weights after every epoch, as ``epoch_<n>.pt``."""

    def __init__(self, dirname):
        self.dirname = Path(dirname)

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        steps = sum(len(row["batches"]) for row in net.history)
        torch.save(
            {"state_dict": net.module_.state_dict(), "epoch": epoch, "steps": steps},
            self.dirname / f"epoch_{epoch}.pt",
        )


class CheckpointedTransformer(VAETransformer):
    """A VAETransformer whose fit saves and resumes skorch checkpoints."""

    checkpoint_dir = None

    def _extra_callbacks(self):
        latest = Checkpoint(monitor=None, dirname=str(self.checkpoint_dir / "latest"))
        return [
            ("checkpoint", latest),
            ("resume", LoadInitState(latest)),
            ("snapshot", EpochSnapshot(self.checkpoint_dir)),
        ]


def make_vae_gamma_jointly(*args, **kwargs):
    """:func:`skvae.nn.make_vae` with gamma a parameter, learned by Adam."""
    module = make_vae(*args, **kwargs)
    likelihood = module.likelihood
    likelihood.learn_var = False  # no closed-form update
    log_var = likelihood.log_var.detach().clone()
    del likelihood.log_var
    likelihood.log_var = torch.nn.Parameter(log_var)
    return module


# The paper's network, as estimator parameters (also those of make_vae).
PAPER_NETWORK = {
    "hidden_dims": (64, 128, 256),
    "kernel_size": 5,
    "batch_norm": True,
    "activation": "relu",
    "decoder_var": "learned",
}


def network(width=1):
    """The paper's network parameters, its channels multiplied by ``width``."""
    channels = tuple(width * c for c in PAPER_NETWORK["hidden_dims"])
    return {**PAPER_NETWORK, "hidden_dims": channels}


def paper_model(args, max_epochs):
    model = CheckpointedTransformer(
        latent_dim=args.kappa,
        **network(args.width),
        lr=1e-4,
        batch_size=args.batch_size,
        max_epochs=max_epochs,
        random_state=args.seed,
        verbose=1,
    )
    if args.gamma == "jointly":
        model._module_factory = staticmethod(make_vae_gamma_jointly)
    return model


def epochs_done(checkpoint_dir):
    history = checkpoint_dir / "latest" / "history.json"
    if not history.exists():
        return 0
    return len(json.loads(history.read_text()))


def train(args):
    checkpoint_dir = CHECKPOINTS / run_name(args)
    (checkpoint_dir / "latest").mkdir(parents=True, exist_ok=True)
    done = epochs_done(checkpoint_dir)
    if done >= args.epochs:
        print(f"{run_name(args)}: {done} epochs done already")
        return
    X = load_fashion_mnist(subset="train", return_X_y=True)[0][: args.n_train]
    X = pad_to_32(X.reshape(-1, 28, 28))
    model = paper_model(args, max_epochs=args.epochs - done)
    model.checkpoint_dir = checkpoint_dir
    start = time.perf_counter()
    model.fit(X)
    record = {
        "run": run_name(args),
        "epochs": len(model.history_),
        "steps": sum(len(row["batches"]) for row in model.history_),
        "seconds_this_run": time.perf_counter() - start,
        "gamma": float(model.decoder_var_),
        "environment": environment(),
    }
    (checkpoint_dir / "train.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record)[:300])


def run(args):
    {"train": train, "evaluate": evaluate}[args.command](args)


def digits_32x32():
    """scikit-learn's digits upscaled to 20x20 and centred in 32x32, as uint8.

    MNIST digits fill a 20x20 box centred in 28x28; padded to 32x32 as the
    Fashion-MNIST inputs are, the box sits in the middle of 32x32.
    """
    images = load_digits().images / 16.0
    big = np.clip(zoom(images, (1, 2.5, 2.5), order=1), 0.0, 1.0)
    out = np.zeros((len(images), SIDE, SIDE), dtype=np.uint8)
    out[:, 6:26, 6:26] = np.round(big * 255).astype(np.uint8)
    return out


def rendered_digits_32x32(n, seed):
    """Typeset digits drawn like MNIST's, as uint8 ``(n, 32, 32)``.

    A second MNIST stand-in, with MNIST's sharp strokes at 28x28 (the
    upscaled 8x8 digits are smooth blobs): a random digit in one of matplotlib's
    DejaVu fonts (regular or bold, sans, serif or mono), rotated by up to 15
    degrees, cropped, scaled so its longer side is 20 pixels, placed with
    its centre of mass at the centre of 28x28 (MNIST's normalisation), then
    padded to 32x32. About 82% of the 28x28 pixels are black, as in MNIST.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rng = np.random.default_rng(seed)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    for i in range(n):
        figure = Figure(figsize=(1, 1), dpi=112, facecolor="black")
        canvas = FigureCanvasAgg(figure)
        family, weight = RENDER_FONTS[rng.integers(len(RENDER_FONTS))]
        figure.text(
            0.5,
            0.5,
            str(rng.integers(10)),
            color="white",
            ha="center",
            va="center",
            fontsize=rng.uniform(60, 80),
            family=family,
            weight=weight,
            rotation=rng.uniform(-15, 15),
        )
        canvas.draw()
        ink = np.asarray(canvas.buffer_rgba())[..., 0] / 255.0
        rows, cols = np.nonzero(ink > 0.1)
        ink = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        digit = np.clip(zoom(ink, 20 / max(ink.shape), order=1), 0.0, 1.0)
        centre_row, centre_col = center_of_mass(digit)
        height, width = digit.shape
        top = int(np.clip(round(14 - centre_row), 0, 28 - height))
        left = int(np.clip(round(14 - centre_col), 0, 28 - width))
        out[i, top : top + height, left : left + width] = digit
    return pad_to_32(np.round(out * 255).astype(np.uint8))


RENDER_FONTS = [
    ("DejaVu Sans", "normal"),
    ("DejaVu Sans", "bold"),
    ("DejaVu Serif", "normal"),
    ("DejaVu Serif", "bold"),
    ("DejaVu Sans Mono", "bold"),
]


def evaluation_sets(n_eval, seed):
    """The 8-bit image sets to score, ``(n, 32, 32)`` uint8 each."""
    train = load_fashion_mnist(subset="train", return_X_y=True)[0][:n_eval]
    test = pad_to_32(
        load_fashion_mnist(subset="test", return_X_y=True)[0][:n_eval].reshape(
            -1, 28, 28
        )
    )
    rng = np.random.default_rng(seed)
    return {
        "train": pad_to_32(train.reshape(-1, 28, 28)),
        "test": test,
        "digits": digits_32x32()[:n_eval],
        "rendered": rendered_digits_32x32(n_eval, seed),
        "inverted": 255 - test,
        "noise": rng.integers(0, 256, size=test.shape, dtype=np.uint8),
    }


def load_snapshot(path, kappa, width=1):
    """The module of a saved epoch, in eval mode."""
    module = make_vae((1, SIDE, SIDE), kappa, **network(width))
    snapshot = torch.load(path, weights_only=True)
    module.load_state_dict(snapshot["state_dict"])
    return module.eval(), snapshot


def set_bpd(module, images, noise, *, density=False):
    """Mean and standard error of the BPD of ``images`` (uint8, (n, 32, 32))."""
    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    kwargs = {"noise": noise, "input_shape": (1, SIDE, SIDE), "batch_size": 250}
    if density:
        bpd = bits_per_dim(
            iwae_scores(module, X, **kwargs), X.shape[1], discretization=256
        )
    else:
        bpd = bits_per_dim(discrete_iwae_scores(module, X, **kwargs), X.shape[1])
    return float(bpd.mean()), float(bpd.std(ddof=1) / np.sqrt(len(bpd)))


def black_and_other_bits(module, images):
    """Where the bits go: mean bits of black and of other pixels, at z = mu.

    Per pixel ``-log2 P(x_d | z = mu(x))`` under the discretised Gaussian
    (one decoder pass, the posterior mean; the KL term is left out), split
    by whether the 8-bit pixel is 0.
    """

    def per_pixel_bits(module, x):
        mu, _ = module.encode(x)
        params = module.decode(mu, module.decoder_context(x))
        log_mass = module.likelihood.log_prob_discrete_per_feature(x, params)
        return -log_mass.flatten(start_dim=1) / np.log(2)

    X = images.reshape(len(images), -1).astype(np.float32) / 255.0
    bits = map_batches(
        per_pixel_bits, module, X, input_shape=(1, SIDE, SIDE), batch_size=250
    )
    black = images.reshape(len(images), -1) == 0
    return {
        "black_fraction": float(black.mean()),
        "bits_per_black_pixel": float(bits[black].mean()),
        "bits_per_other_pixel": float(bits[~black].mean()),
    }


def snapshots(checkpoint_dir):
    paths = checkpoint_dir.glob("epoch_*.pt")
    return sorted(paths, key=lambda path: int(path.stem.split("_")[1]))


def evaluate(args):
    """Score each saved epoch (the curve) and the last one in full (the table)."""
    checkpoint_dir = CHECKPOINTS / run_name(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    noise = latent_noise(args.n_samples, args.kappa, args.seed)
    sets = evaluation_sets(args.n_eval, args.seed)
    curve_path = out / f"{run_name(args)}_curve.jsonl"
    curve = {row["epoch"]: row for row in read_curve(curve_path)}
    paths = snapshots(checkpoint_dir)
    for path in paths:
        module, snapshot = load_snapshot(path, args.kappa, args.width)
        row = curve.setdefault(
            snapshot["epoch"], {"epoch": snapshot["epoch"], "steps": snapshot["steps"]}
        )
        row["gamma"] = module.likelihood.variance
        missing = [name for name in CURVE_SETS if name not in row]
        for name in missing:
            row[name] = set_bpd(module, sets[name][: args.n_curve], noise)[0]
        if missing:
            lines = [json.dumps(curve[epoch]) for epoch in sorted(curve)]
            curve_path.write_text("\n".join(lines) + "\n")
            print(json.dumps(row))
    if args.curve_only:
        return
    module, snapshot = load_snapshot(paths[-1], args.kappa, args.width)
    start = time.perf_counter()
    table = {
        "run": run_name(args),
        "kappa": args.kappa,
        "gamma_learning": args.gamma,
        "epoch": snapshot["epoch"],
        "steps": snapshot["steps"],
        "gamma": module.likelihood.variance,
        "n_eval": args.n_eval,
        "n_samples": args.n_samples,
        "discrete": {
            name: set_bpd(module, images, noise) for name, images in sets.items()
        },
        "density": {
            name: set_bpd(module, images, noise, density=True)
            for name, images in sets.items()
        },
        "pixels": {
            name: black_and_other_bits(module, images) for name, images in sets.items()
        },
    }
    table["seconds"] = time.perf_counter() - start
    table["environment"] = environment()
    (out / f"{run_name(args)}_table.json").write_text(json.dumps(table, indent=1))
    print(json.dumps({k: table[k] for k in ("run", "steps", "gamma", "discrete")}))


# Dai & Wipf (2019), table 1: BPD per latent size kappa, and the learned gamma.
PAPER = {
    16: {"train": 2.375, "test": 2.805, "mnist": 9.598, "gamma": 0.0055},
    32: {"train": 2.208, "test": 2.690, "mnist": 8.618, "gamma": 0.0040},
    64: {"train": 2.084, "test": 2.562, "mnist": 6.294, "gamma": 0.0030},
    128: {"train": 2.009, "test": 2.424, "mnist": 4.958, "gamma": 0.0024},
    256: {"train": 2.054, "test": 2.397, "mnist": 4.578, "gamma": 0.0023},
    512: {"train": 2.020, "test": 2.301, "mnist": 4.351, "gamma": 0.0024},
}
CURVE_SETS = ("train", "test", "digits", "rendered")
ROWS = {
    "train": "Fashion-MNIST train",
    "test": "Fashion-MNIST test",
    "digits": "upscaled 8x8 digits (MNIST stand-in; paper: MNIST)",
    "rendered": "typeset digits (MNIST stand-in; paper: MNIST)",
    "inverted": "Fashion-MNIST test inverted",
    "noise": "uniform noise",
}


def summarize(args):
    """Write the table (markdown) and the training curves (PNG)."""
    out = Path(args.out)
    tables = sorted(
        (json.loads(path.read_text()) for path in out.glob("*_table.json")),
        key=lambda table: (table["gamma_learning"], table["kappa"]),
    )
    lines = [
        "# Dai & Wipf (2019) table 1 with the paper's network",
        "",
        "Bits per dimension (lower = more likely), mean over the first "
        f"{tables[0]['n_eval']} images of each set, "
        f"IWAE bound with {tables[0]['n_samples']} importance samples; "
        "'ours' is the probability of the 8-bit image under the discretised "
        "Gaussian decoder (`discrete_iwae_scores`), 'density' the old point "
        "approximation (`iwae_scores` + 8 bits). Paper: its table 1 (MNIST "
        "where we have the digits stand-in).",
        "",
    ]
    header = ["set"]
    for table in tables:
        label = f"kappa {table['kappa']}"
        if table["gamma_learning"] != "closed_form":
            label += " (gamma jointly)"
        header += [f"{label}: ours", "density", "paper"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, title in ROWS.items():
        cells = [title]
        for table in tables:
            mean, sem = table["discrete"][name]
            paper_name = "mnist" if name in ("digits", "rendered") else name
            paper = PAPER.get(table["kappa"], {}).get(paper_name)
            cells += [
                f"{mean:.3f} ± {sem:.3f}",
                f"{table['density'][name][0]:.2f}",
                "-" if paper is None else f"{paper:.3f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["gamma"]
    for table in tables:
        paper = PAPER.get(table["kappa"], {}).get("gamma")
        cells += [f"{table['gamma']:.4f}", "", "-" if paper is None else f"{paper:.4f}"]
    lines.append("| " + " | ".join(cells) + " |")
    cells = ["Adam steps (batch)"]
    for table in tables:
        batch = table["environment"]["args"].get("batch_size", "?")
        cells += [f"{table['steps']:,} ({batch})", "", "200,000"]
    lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Where the bits go (at z = mu, without the KL term): share of black "
        "pixels, mean bits per black pixel, mean bits per other pixel.",
        "",
        "| set | "
        + " | ".join(f"{t['run']}: black, bits black, bits other" for t in tables)
        + " |",
        "|" + "---|" * (1 + len(tables)),
    ]
    for name, title in ROWS.items():
        cells = [title]
        for table in tables:
            pixels = table["pixels"][name]
            cells.append(
                f"{pixels['black_fraction']:.1%}, "
                f"{pixels['bits_per_black_pixel']:.2f}, "
                f"{pixels['bits_per_other_pixel']:.2f}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Curves (BPD of the first images of each set, per epoch):", ""]
    for table in tables:
        for row in read_curve(out / f"{table['run']}_curve.jsonl"):
            lines.append(
                f"- {table['run']} epoch {row['epoch']} ({row['steps']:,} steps): "
                f"train {row['train']:.3f}, test {row['test']:.3f}, "
                f"digits {row['digits']:.3f}, typeset {row['rendered']:.3f}, "
                f"gamma {row['gamma']:.4f}"
            )
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot_curves(tables, out)
    print("\n".join(lines))


def read_curve(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def training_loss_bpd(run):
    """Per-step training loss (negative ELBO, nats per image) as density BPD."""
    history = json.loads((CHECKPOINTS / run / "latest" / "history.json").read_text())
    losses = np.array(
        [batch["train_loss"] for row in history for batch in row["batches"]]
    )
    return losses / (SIDE * SIDE * np.log(2)) + 8


def plot_curves(tables, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = [CHECKPOINTS / t["run"] / "latest" / "history.json" for t in tables]
    if not all(path.exists() for path in histories):
        # The loss panel reads the training checkpoints, which stay on the
        # machine that trained: keep the committed figure.
        print(f"no training checkpoints in {CHECKPOINTS}: curves.png left as it is")
        return
    fig, (ax_loss, ax_bpd) = plt.subplots(1, 2, figsize=(11, 5.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for table, color in zip(tables, colors, strict=False):
        run = table["run"]
        loss = training_loss_bpd(run)
        window = max(1, min(200, len(loss) // 5))
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax_loss.plot(np.arange(window, len(loss) + 1), smooth, color=color, label=run)
        curve = read_curve(out / f"{run}_curve.jsonl")
        steps = [row["steps"] for row in curve]
        for name, style in (("test", "o-"), ("digits", "s--"), ("rendered", "^:")):
            values = [row[name] for row in curve]
            ax_bpd.plot(steps, values, style, color=color, label=f"{run} {name}")
        paper = PAPER.get(table["kappa"])
        if paper:
            ax_bpd.axhline(paper["test"], color=color, lw=0.8)
    ax_loss.set(
        xlabel="Adam step",
        ylabel="density BPD of the training batch (200-step mean)",
        title="Training loss",
    )
    ax_bpd.set(
        xlabel="Adam step",
        ylabel="BPD (discretised, IWAE)",
        title="BPD per epoch (thin line: the paper's test BPD)",
    )
    ax_loss.legend(fontsize=8)
    paper_tests = [PAPER[t["kappa"]]["test"] for t in tables if t["kappa"] in PAPER]
    ax_bpd.set_ylim(bottom=min([*paper_tests, 3.0]) - 0.2)
    # Below the axes: inside, it would hide the curves or the paper's lines.
    ax_bpd.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.tight_layout()
    images = Path("docs/images/bpd_dai_wipf")
    images.mkdir(parents=True, exist_ok=True)
    fig.savefig(images / "curves.png", dpi=110)
