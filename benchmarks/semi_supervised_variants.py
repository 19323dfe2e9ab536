"""Prototype variants of the joint VAEClassifier, on the protocol of semi_supervised.py.

Each variant patches the library's training or module *in this process only*,
to measure an idea before it is built properly (or dropped). The numbers in
docs/semi_supervised.md ("Closing the last half point") come from here. The
patches reach into private internals, so this script may need updating when
those change; the library's own options are passed with ``--set``. The
runs quoted in the docs' "Closing the last half point" were made before
``swa_start`` and ``vat_eps`` existed and equal ``--set swa_start=None
vat_eps=0`` now.

Variants (combine with ``+``, e.g. ``ema+features``):

- ``plain``: the library as it is;
- ``cosine``: cosine annealing of the learning rate to 0 over ``max_epochs``;
- ``ema``: the fitted weights are an exponential moving average (decay
  ``--ema-decay``) of the weights after every step;
- ``features``: the classifier head reads the encoder's flattened
  convolutional features instead of the latent code; the student prediction
  for the pseudo-labels sees them through dropout (``--dropout``), the teacher
  without; virtual adversarial training (``vat_eps``) acts on this head;
- ``features-view``: as ``features``, but the student prediction comes from a
  shifted and mirrored copy of the image (:func:`skvae._data.shift_flip`),
  while the VAE and the teacher see the clean image;
- ``features-cutout``: as ``features-view``, and a random square of side
  ``--cutout`` pixels of the student's view is set to 0 (a stronger
  augmentation, as FixMatch's).

The virtual adversarial training prototype that became the library's
``vat_eps`` lived here until commit 8f04dbe. Its rows in the results file
have ``"variant": "vat"`` and record the L2 radius of the step over a whole
28x28 image as ``vat_eps`` (the library's per-feature value times 28) and the
power-iteration step as ``vat_xi``; ``plain --set vat_eps=E`` runs the
library's version.

Example::

    python benchmarks/semi_supervised_variants.py ema --model-seed 1 \\
        --max-epochs 10 --out /tmp/variants.jsonl
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from semi_supervised import hide_labels, load, parse_assignments  # benchmarks/
from skorch.callbacks import Callback, LRScheduler
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from skvae import VAEClassifier
from skvae._data import shift_flip
from skvae.nn import VAEOutput, _semi
from skvae.nn._blocks import mlp

VARIANTS = (
    "plain",
    "cosine",
    "ema",
    "features",
    "features-view",
    "features-cutout",
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variant", help="'+'-joined names from " + ", ".join(VARIANTS))
    parser.add_argument("--n-labels", type=int, default=2000)
    parser.add_argument("--max-epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--cutout", type=int, default=8)
    parser.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE")
    parser.add_argument("--n-unlabeled", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--random-state", type=int, default=0, help="labeled subset")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-proba", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("variants.jsonl"))
    return parser.parse_args(argv)


def add_callback(name, make_callback):
    """Append a callback to every net VAEClassifier builds from now on."""
    build_net = VAEClassifier._build_net

    def patched(self, spec, seed, n_samples):
        net = build_net(self, spec, seed, n_samples)
        net.callbacks = [*(net.callbacks or []), (name, make_callback(net))]
        return net

    VAEClassifier._build_net = patched


class ExponentialAverage(Callback):
    """Replace the weights by their exponential moving average at the end."""

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.average_ = AveragedModel(
            net.module_, multi_avg_fn=get_ema_multi_avg_fn(self.decay)
        )

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            self.average_.update_parameters(net.module_)

    def on_train_end(self, net, **kwargs):
        net.module_.load_state_dict(self.average_.module.state_dict())


def cutout(x, side):
    """Zero one random ``side`` x ``side`` square of each image."""
    n, _, h, w = x.shape
    top = torch.randint(0, h - side + 1, (n,)).tolist()
    left = torch.randint(0, w - side + 1, (n,)).tolist()
    x = x.clone()
    for image, i, j in zip(x, top, left, strict=True):
        image[:, i : i + side, j : j + side] = 0
    return x


def head_on_features(dropout, two_views, cutout_side=0):
    """Patch SemiSupervisedVAE so that its head reads the encoder's features."""
    cls = _semi.SemiSupervisedVAE
    init = cls.__init__

    def __init__(self, encoder, decoder, likelihood, n_classes, latent_dim, **kw):
        init(self, encoder, decoder, likelihood, n_classes, latent_dim, **kw)
        hidden = kw.get("head_hidden_dims", (128,))
        self.head = mlp(
            [encoder.mu.in_features, *hidden, n_classes], final_activation=False
        )

    def features(self, x):
        return self.encoder.features(x).flatten(start_dim=1)

    def forward(self, x):
        h = features(self, x)
        mu, logvar = self.encoder.mu(h), self.encoder.logvar(h)
        z = self.reparameterize(mu, logvar)
        teacher = self.head(h)
        adversarial = None
        if not self.training:
            return VAEOutput(self.decode(z), mu, logvar, teacher, teacher)
        if self.vat_eps > 0:
            adversarial = _semi.virtual_adversarial_kl(
                self.classify, x, teacher, self.vat_eps
            )
        if two_views:
            view = shift_flip(x)
            if cutout_side:
                view = cutout(view, cutout_side)
            h = features(self, view)
        logits = self.head(F.dropout(h, dropout, training=True))
        return VAEOutput(self.decode(z), mu, logvar, logits, teacher, adversarial)

    cls.__init__ = __init__
    cls.forward = forward
    cls.classify = lambda self, x: self.head(features(self, x))


def apply_variant(args):
    for part in args.variant.split("+"):
        if part == "cosine":
            add_callback(
                "lr_schedule",
                lambda net: LRScheduler(
                    policy=torch.optim.lr_scheduler.CosineAnnealingLR,
                    T_max=net.max_epochs,
                ),
            )
        elif part == "ema":
            add_callback("ema", lambda net: ExponentialAverage(args.ema_decay))
        elif part in ("features", "features-view", "features-cutout"):
            head_on_features(
                args.dropout,
                two_views=part != "features",
                cutout_side=args.cutout if part == "features-cutout" else 0,
            )
        elif part != "plain":
            raise SystemExit(f"unknown variant {part!r}; choose from {VARIANTS}")


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    apply_variant(args)
    X, y, X_test, y_test = load(args)
    X_fit, y_partial = hide_labels(X, y, args.n_labels, args)
    params = {
        "latent_dim": 16,
        "max_epochs": args.max_epochs,
        "batch_size": args.batch_size,
        "random_state": args.model_seed,
        **parse_assignments(args.set),
    }
    clf = VAEClassifier(**params)
    start = time.perf_counter()
    clf.fit(X_fit, y_partial)
    fit_seconds = time.perf_counter() - start
    proba = clf.predict_proba(X_test)
    if args.save_proba is not None:
        np.save(args.save_proba, proba)
    row = {
        "variant": args.variant,
        "n_labels": args.n_labels,
        "max_epochs": args.max_epochs,
        "model_seed": args.model_seed,
        "set": args.set,
        "accuracy": float(np.mean(clf.classes_[proba.argmax(1)] == y_test)),
        "fit_seconds": fit_seconds,
    }
    print(json.dumps(row), flush=True)
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
