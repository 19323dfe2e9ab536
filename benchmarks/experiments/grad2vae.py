"""Grad2VAE on one-class Fashion-MNIST: the paper's protocol, its figure 6, its cost.

Abukmeil et al. (2022) report 96.37 mean ROC-AUC for Grad2VAE on one-class
Fashion-MNIST (table 1) and faster convergence than a vanilla VAE (figure 6).
For each normal class this script trains, on that class's 6,000 training
images, with the paper's settings (latent 32, batch 128, Adam at 1e-3
multiplied by ``--lr-drop`` after half of ``--epochs``):

- ``grad2vae``: ``VAEOutlierDetector(architecture="grad2vae")``;
- ``vanilla``: the same encoder and decoder without the attention module
  (the vanilla VAE of the same size of figure 6);

and, in the same run, ``default``: ``VAEOutlierDetector()`` with all its
defaults. Each model scores the full test set (10,000 images; the class is
normal, the nine others anomalies) with several score types; the two paper
models also score a fixed, seeded 2,000-image subset of the test set after
every epoch (figure 6). ``pixel_auc`` is a second protocol: the ROC-AUC of the
reconstruction as a per-pixel predictor of the binarised image (x > 0.5), over
the normal class's test images only, a number that needs no anomalies.

Each (class, model) result is appended to ``OUT/NAME.jsonl`` (JSON lines)
as it finishes; a rerun skips what is there. ``--cost`` instead times
training steps of the exact curvature against Hutchinson's estimate by
double back-propagation (``OUT/cost.json``). ``summarize`` reads every
``OUT/one_class*.jsonl`` and writes the tables (``OUT/grad2vae.md``) and the
figure-6 plot. Examples::

    python -m benchmarks grad2vae run --classes 0 2 4 6 8 --name one_class_a
    python -m benchmarks grad2vae run --cost
    python -m benchmarks grad2vae summarize
"""

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from skorch.callbacks import Callback, LRScheduler
from torch.optim.lr_scheduler import StepLR

from skvae import VAEOutlierDetector
from skvae.datasets import load_fashion_mnist, one_class_split
from skvae.nn import (
    VAE,
    BernoulliLikelihood,
    GaussianLikelihood,
    Grad2VAEDecoder,
    Grad2VAEEncoder,
    NegativeELBO,
    make_vae,
)
from skvae.scoring import elbo_scores, reconstructed_means, reconstruction_scores

from .._shared import (
    FASHION_MNIST_SHORT_NAMES,
    append_jsonl,
    environment,
    read_jsonl,
    write_json,
)

CLASS_NAMES = FASHION_MNIST_SHORT_NAMES
# Table 1 of the paper, Grad2VAE column, Fashion-MNIST rows.
PAPER_AUC = (96.54, 95.88, 96.59, 96.29, 96.49, 96.39, 96.65, 96.05, 96.58, 96.42)
FINAL_SCORES = ("elbo", "reconstruction", "auto")
CURVE_ROWS = 2000


def add_arguments(parser):
    parser.add_argument("--classes", type=int, nargs="+", default=list(range(10)))
    parser.add_argument(
        "--models", nargs="+", default=["grad2vae", "vanilla", "default"]
    )
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-drop", type=float, default=0.01)
    parser.add_argument("--hidden-dims", type=int, nargs=2, default=[32, 64])
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--cost-steps", type=int, default=5)
    parser.add_argument("--cost-repeats", type=int, default=3)
    parser.add_argument("--name", default="one_class", help="records OUT/NAME.jsonl")


def add_summary_arguments(parser):
    parser.add_argument(
        "--figure",
        default="docs/images/grad2vae/curves.png",
        help="where to draw figure 6",
    )


class TestAUCPerEpoch(Callback):
    """Record the test ROC-AUC of the ELBO and reconstruction after each epoch."""

    def __init__(self, X, is_inlier, input_shape):
        self.X, self.is_inlier, self.input_shape = X, is_inlier, input_shape

    def on_epoch_end(self, net, **kwargs):
        start = time.perf_counter()
        module = net.module_
        module.eval()
        kwargs = {"input_shape": self.input_shape, "device": net.device}
        for name, scores in (
            ("elbo", elbo_scores),
            ("reconstruction", reconstruction_scores),
        ):
            auc = roc_auc_score(self.is_inlier, scores(module, self.X, **kwargs))
            net.history.record(f"test_auc_{name}", 100 * auc)
        module.train()
        net.history.record("eval_seconds", time.perf_counter() - start)


def _vanilla_factory(
    input_shape,
    latent_dim,
    *,
    hidden_dims,
    kernel_size=3,
    likelihood="gaussian",
    decoder_var=1.0,
    architecture=None,
):
    """The Grad2VAE's encoder and decoder without the attention module."""
    return VAE(
        Grad2VAEEncoder(input_shape, latent_dim, hidden_dims, kernel_size),
        Grad2VAEDecoder(input_shape, latent_dim, hidden_dims, kernel_size),
        _likelihood(likelihood, decoder_var),
    )


def _likelihood(name, decoder_var):
    """The decoder distribution the estimators' parameters name."""
    if name == "bernoulli":
        return BernoulliLikelihood()
    if decoder_var == "learned":
        return GaussianLikelihood(1.0, learn_var=True)
    return GaussianLikelihood(decoder_var)


def paper_detector(model, args, curve):
    """A detector with the paper's settings, a step LR drop and the test curve."""

    class PaperSchedule(VAEOutlierDetector):
        if model == "vanilla":
            _module_factory = staticmethod(_vanilla_factory)

        def _extra_callbacks(self):
            step = max(1, args.epochs // 2)
            return [
                *super()._extra_callbacks(),
                ("lr_drop", LRScheduler(StepLR, step_size=step, gamma=args.lr_drop)),
                ("test_auc", TestAUCPerEpoch(*curve, (1, 28, 28))),
            ]

    return PaperSchedule(
        args.latent_dim,
        architecture="grad2vae",
        hidden_dims=tuple(args.hidden_dims),
        batch_size=args.batch_size,
        lr=args.lr,
        max_epochs=args.epochs,
        transformations=None,
        calibration_fraction=None,
        random_state=args.seed,
    )


def pixel_auc(detector, X_normal):
    """ROC-AUC of the reconstructions as per-pixel predictors of x > 0.5."""
    module = detector.net_.module_
    flat = X_normal.reshape(len(X_normal), -1).astype(np.float32) / 255
    means = reconstructed_means(module, flat, input_shape=detector.input_shape_)
    return 100 * roc_auc_score((flat > 0.5).ravel(), means.ravel())


def scores_of(detector, score_type, X):
    """The fitted detector's score ("auto"), or one of its VAE's own scores."""
    if score_type == "auto":
        return detector.score_samples(X)
    score = {"elbo": elbo_scores, "reconstruction": reconstruction_scores}[score_type]
    flat = X.reshape(len(X), -1).astype(np.float32) / 255
    return score(detector.net_.module_, flat, input_shape=detector.input_shape_)


def run_one(model, label, data, args):
    X_train, X_test, is_inlier, curve = data
    if model == "default":
        detector = VAEOutlierDetector(random_state=args.seed)
    else:
        detector = paper_detector(model, args, curve)
    start = time.perf_counter()
    detector.fit(X_train)
    fit_seconds = time.perf_counter() - start
    history = detector.history_
    result = {
        "class": label,
        "name": CLASS_NAMES[label],
        "model": model,
        "fit_seconds": fit_seconds,
        "epochs": len(history),
        "seconds_per_epoch": float(np.median(history[:, "dur"])),
    }
    score_types = FINAL_SCORES if model != "default" else ("auto", "elbo")
    for score_type in score_types:
        result[f"auc_{score_type}"] = 100 * roc_auc_score(
            is_inlier, scores_of(detector, score_type, X_test)
        )
    result["pixel_auc"] = pixel_auc(detector, X_test[is_inlier == 1])
    if model != "default":
        for key in ("test_auc_elbo", "test_auc_reconstruction", "train_loss"):
            result[key] = [float(v) for v in history[:, key]]
        result["eval_seconds"] = float(np.sum(history[:, "eval_seconds"]))
    return result


def curve_subset(X_test, is_inlier, seed):
    rows = np.random.default_rng(seed).choice(len(X_test), CURVE_ROWS, replace=False)
    X_curve = X_test[rows].reshape(CURVE_ROWS, -1).astype(np.float32) / 255
    return X_curve, is_inlier[rows]


def run_protocol(args):
    out = Path(args.out) / f"{args.name}.jsonl"
    done = {(r["class"], r["model"]) for r in read_jsonl(out)}
    X_train, y_train = load_fashion_mnist(subset="train", return_X_y=True)
    X_test, y_test = load_fashion_mnist(subset="test", return_X_y=True)
    for label in args.classes:
        X_normal, X_all, is_inlier = one_class_split(
            X_train, y_train, X_test, y_test, inlier_class=label
        )
        curve = curve_subset(X_all, is_inlier, args.seed)
        for model in args.models:
            if (label, model) in done:
                continue
            result = run_one(model, label, (X_normal, X_all, is_inlier, curve), args)
            result["environment"] = environment()
            append_jsonl(out, result)
            print(
                f"{CLASS_NAMES[label]:8s} {model:9s} "
                + " ".join(
                    f"{k}={v:.2f}"
                    for k, v in result.items()
                    if "auc" in k and isinstance(v, float)
                )
                + f" fit={result['fit_seconds']:.0f}s",
                flush=True,
            )


def hutchinson_diagonal(encoder, a, unit_weights, n_probes):
    """Hutchinson's estimate of the exact diagonal, by double back-propagation."""
    mu = encoder.mu(encoder.features[1](a).flatten(start_dim=1))
    (grad,) = torch.autograd.grad((mu @ unit_weights[0]).sum(), a, create_graph=True)
    estimate = 0.0
    for _ in range(n_probes):
        probe = 2.0 * torch.randint(0, 2, a.shape).to(a.dtype) - 1.0
        (hvp,) = torch.autograd.grad((grad * probe).sum(), a, create_graph=True)
        estimate = estimate + probe * hvp / n_probes
    return estimate.unsqueeze(1)


def step_seconds(module, X, steps):
    optimizer = torch.optim.Adam(module.parameters(), 1e-3)
    criterion = NegativeELBO()
    module.train()
    start = time.perf_counter()
    for i in range(steps):
        x = X[i * 128 : (i + 1) * 128]
        output = module(x)
        loss = criterion(*module.elbo_terms(x, output), output=output)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def run_cost(args):
    """Seconds per training step: exact curvature, Hutchinson, vanilla, plain conv."""
    X_train, _ = load_fashion_mnist(subset="train", return_X_y=True)
    X = torch.as_tensor(X_train[: 128 * args.cost_steps] / 255, dtype=torch.float32)
    X = X.view(-1, 1, 28, 28)
    shape, latent, hidden = (1, 28, 28), args.latent_dim, tuple(args.hidden_dims)

    def grad2vae(n_probes=None):
        module = make_vae(
            shape,
            latent,
            hidden_dims=hidden,
            architecture="grad2vae",
            decoder_var="learned",
        )
        if n_probes is not None:
            encoder = module.encoder
            encoder.mean_hessian_diagonal = lambda a, v, w: hutchinson_diagonal(
                encoder, a, w, n_probes
            )
        return module

    builders = {
        "grad2vae_exact": grad2vae,
        "grad2vae_hutchinson_1": lambda: grad2vae(1),
        "grad2vae_hutchinson_4": lambda: grad2vae(4),
        "vanilla_same_size": lambda: _vanilla_factory(
            shape, latent, hidden_dims=hidden, decoder_var="learned"
        ),
        "conv_default_layout": lambda: make_vae(
            shape, latent, hidden_dims=hidden, decoder_var="learned"
        ),
    }
    best = {name: math.inf for name in builders}
    for _ in range(args.cost_repeats):  # alternate, keep the best of each
        for name, build in builders.items():
            torch.manual_seed(0)
            best[name] = min(best[name], step_seconds(build(), X, args.cost_steps))
    steps_per_epoch = math.ceil(6000 / 128)
    result = {
        "seconds_per_step": best,
        "seconds_per_epoch_6000": {k: v * steps_per_epoch for k, v in best.items()},
        "ratio_to_exact": {k: v / best["grad2vae_exact"] for k, v in best.items()},
        "environment": environment(),
    }
    write_json(Path(args.out) / "cost.json", result)
    for name, seconds in best.items():
        epoch = seconds * steps_per_epoch
        ratio = seconds / best["grad2vae_exact"]
        print(f"{name:24s} {seconds:.3f} s/step {epoch:6.1f} s/epoch x{ratio:.2f}")


def run(args):
    if args.cost:
        run_cost(args)
    else:
        run_protocol(args)


# -- the report ------------------------------------------------------------

CURVE_CLASSES = (6, 0, 8)  # Shirt first: the class the paper's number is hardest on


def load(paths):
    rows = [row for path in paths for row in read_jsonl(path)]
    return {(r["class"], r["model"]): r for r in rows}


def table(results):
    classes = sorted({c for c, _ in results})
    columns = [
        ("Grad2VAE ELBO", "grad2vae", "auc_elbo"),
        ("Grad2VAE recon.", "grad2vae", "auc_reconstruction"),
        ("Grad2VAE auto", "grad2vae", "auc_auto"),
        ("vanilla ELBO", "vanilla", "auc_elbo"),
        ("vanilla auto", "vanilla", "auc_auto"),
        ("skvae default", "default", "auc_auto"),
        ("Grad2VAE pixel AUC", "grad2vae", "pixel_auc"),
        ("default pixel AUC", "default", "pixel_auc"),
    ]
    head = "| class | paper Grad2VAE | " + " | ".join(c[0] for c in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    sums = np.zeros(len(columns) + 1)
    for c in classes:
        values = [PAPER_AUC[c]] + [results[(c, m)][k] for _, m, k in columns]
        sums += values
        lines.append(
            f"| {CLASS_NAMES[c]} | " + " | ".join(f"{v:.2f}" for v in values) + " |"
        )
    mean = sums / len(classes)
    lines.append("| **mean** | " + " | ".join(f"**{v:.2f}**" for v in mean) + " |")
    return "\n".join(lines)


def cost_table(results, cost_path):
    lines = ["| model | s/epoch in the protocol run (median) | fit (s) |"]
    lines.append("|---|---|---|")
    for model in ("grad2vae", "vanilla", "default"):
        rows = [r for (c, m), r in results.items() if m == model]
        epoch = np.median([r["seconds_per_epoch"] for r in rows])
        fit = np.median([r["fit_seconds"] for r in rows])
        lines.append(f"| {model} | {epoch:.1f} | {fit:.0f} |")
    if cost_path.exists():
        cost = json.loads(cost_path.read_text())
        lines += ["", "| network | s/step (best of 3) | s/epoch of 6000 | x exact |"]
        lines.append("|---|---|---|---|")
        for name, seconds in cost["seconds_per_step"].items():
            lines.append(
                f"| {name} | {seconds:.3f} | "
                f"{cost['seconds_per_epoch_6000'][name]:.1f} | "
                f"{cost['ratio_to_exact'][name]:.2f} |"
            )
    return "\n".join(lines)


def curve_table(results):
    lines = ["| class | model | " + " | ".join(f"ep {e}" for e in (1, 2, 5, 10, 24))]
    lines[0] += " |"
    lines.append("|---|---|" + "---|" * 5)
    for c in CURVE_CLASSES:
        for model in ("grad2vae", "vanilla"):
            curve = results[(c, model)]["test_auc_elbo"]
            picks = [curve[min(e, len(curve)) - 1] for e in (1, 2, 5, 10, 24)]
            lines.append(
                f"| {CLASS_NAMES[c]} | {model} | "
                + " | ".join(f"{v:.1f}" for v in picks)
                + " |"
            )
    return "\n".join(lines)


def figure(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_CLASSES), figsize=(12, 3.6), sharey=False)
    for ax, c in zip(axes, CURVE_CLASSES, strict=True):
        for model, style in (("grad2vae", "-"), ("vanilla", "--")):
            curve = results[(c, model)]["test_auc_elbo"]
            ax.plot(range(1, len(curve) + 1), curve, style, label=model)
        ax.axhline(PAPER_AUC[c], color="grey", lw=0.8, ls=":", label="paper (table 1)")
        ax.set_title(f"{CLASS_NAMES[c]} (normal class)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test ROC-AUC of the ELBO (%)")
    axes[0].legend(loc="center right")
    fig.suptitle(
        "One-class Fashion-MNIST: test AUC after each epoch (2,000 test images)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarize(args):
    out = Path(args.out)
    results = load(sorted(out.glob("one_class*.jsonl")))
    text = "\n\n".join(
        [
            "## One-class ROC-AUC (%), full test set",
            table(results),
            "## Figure 6: test ROC-AUC of the ELBO after epoch e (2,000 test images)",
            curve_table(results),
            "## Cost",
            cost_table(results, out / "cost.json"),
        ]
    )
    (out / "grad2vae.md").write_text(text + "\n")
    figure(results, Path(args.figure))
    print(text)
