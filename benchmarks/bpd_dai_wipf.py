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
and centred in 32x32 as MNIST digits are ("digits", the MNIST stand-in);
Fashion-MNIST test images inverted (``255 - x``) and uniform 8-bit noise.
Example (one thread per process; two processes run side by side)::

    python benchmarks/bpd_dai_wipf.py train --kappa 16 --epochs 6 \\
        --batch-size 16 --out benchmarks/results/bpd_dai_wipf
    python benchmarks/bpd_dai_wipf.py evaluate --kappa 16 \\
        --out benchmarks/results/bpd_dai_wipf
    python benchmarks/bpd_dai_wipf.py summarize \\
        --out benchmarks/results/bpd_dai_wipf
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from _environment import environment
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from skvae import VAETransformer
from skvae.datasets import load_fashion_mnist
from skvae.nn import make_vae

CHECKPOINTS = Path(os.environ.get("SKVAE_CHECKPOINTS", "/tmp/skvae_dai_wipf"))
SIDE = 32


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["train", "evaluate", "summarize"])
    parser.add_argument("--kappa", type=int, default=16)
    parser.add_argument(
        "--gamma", choices=["closed_form", "jointly"], default="closed_form"
    )
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-eval", type=int, default=1000)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--epochs-to-evaluate", type=int, nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/bpd_dai_wipf")
    return parser.parse_args(argv)


def pad_to_32(images):
    """Zero-pad (n, 28, 28) uint8 images to (n, 32, 32), centred."""
    margin = (SIDE - images.shape[-1]) // 2
    return np.pad(images, ((0, 0), (margin, margin), (margin, margin)))


def run_name(args):
    suffix = "" if args.gamma == "closed_form" else "_gamma_jointly"
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


def paper_model(args, max_epochs):
    model = CheckpointedTransformer(
        latent_dim=args.kappa,
        hidden_dims=(64, 128, 256),
        kernel_size=5,
        batch_norm=True,
        activation="relu",
        decoder_var="learned",
        lr=1e-4,
        batch_size=args.batch_size,
        max_epochs=max_epochs,
        random_state=args.random_state,
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
        "environment": environment(args),
    }
    (checkpoint_dir / "train.json").write_text(json.dumps(record, indent=1))
    print(json.dumps(record)[:300])


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    {"train": train, "evaluate": evaluate, "summarize": summarize}[args.command](args)


def evaluate(args):
    raise NotImplementedError


def summarize(args):
    raise NotImplementedError


if __name__ == "__main__":
    main()
