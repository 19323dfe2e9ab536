"""The dual VAE's three experiments (Eichen's thesis, chapter 3), by the public API.

For each scenario of :func:`skvae.datasets.make_cells` ("X90", "X50",
"X90,20") this trains, on 2,000 images, the thesis' dual VAE (foreground
latent 4, background latent 1, receptive fields 6 and 30, pooling 30,
weight 450, Bernoulli likelihood, binarised data, 30 epochs), variants of it,
and a single VAE of the same total latent size, then measures on 2,000 fresh
images of the same scenario:

- ``background_auc``: per background cell, the ROC-AUC of the best column of
  the background code (of any column for the single VAE) against the cell's
  true state, read either way up (a latent's sign is arbitrary);
  ``foreground_code_background_auc``: the same over the foreground code's
  columns, i.e. how much of the background leaks into it;
- per foreground cell, the accuracy of the thresholded reconstruction (the
  cell's mean reconstructed value > 0.5 on binarised data, > half a cell's
  value on raw data) against the cell's true state, and the ROC-AUC of that
  mean value, for cells inside a background cell (overlapping it) and
  outside; inside cells also split by the background cell's state;
- whether the background code is used at all: its mean KL per unit (a
  collapsed unit has ~0), the mean absolute error of the background
  reconstruction against g(x), and the ROC-AUC of the background
  reconstruction in each background cell's pooling window against the
  cell's state;
- the same for the dual VAE's reconstruction with the background removed
  (``reconstruct_foreground(X, remove_background=True)``, prefix
  ``removed_``): if the model separates, the cells under an active
  background cell show there as they are.

Each run appends one JSON line to ``OUT/<scenario>.jsonl`` and writes the
reconstruction figure and the latent-exploration grid (one latent unit at
-5 and +5, the others 0, decoded by the foreground decoder) to
``--figures``; ``summarize`` writes the two tables to ``OUT/dual_vae.md``::

    python -m benchmarks dual_vae run --scenarios X90 X50 X90,20
    python -m benchmarks dual_vae summarize
"""

import json
import pathlib
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from skvae import DualVAETransformer, VAETransformer
from skvae.datasets import make_cells
from skvae.plotting import plot_dual_reconstructions, plot_latent_traversal

from .._shared import append_jsonl

# The thesis' model; every run starts from it.
STUDY = {
    "latent_dim": 4,
    "background_latent_dim": 1,
    "foreground_receptive_field": 6,
    "background_receptive_field": 30,
    "pool_size": 30,
    "background_weight": 450.0,
    "likelihood": "bernoulli",
    "mixing": "full",
    "weight_background_kl": True,
}
RUNS = {
    "study": {"model": "dual", "params": {}},
    "single": {"model": "single", "params": {}},
    "into_foreground": {"model": "dual", "params": {"mixing": "into_foreground"}},
    # One foreground unit per cell, one background unit per background cell.
    "wide": {
        "model": "dual",
        "params": {"latent_dim": 10, "mixing": "into_foreground"},
        "background_latent": "per_cell",
    },
    # The background KL counted once: only the likelihood of g(x) weighted.
    "study_kl1": {"model": "dual", "params": {"weight_background_kl": False}},
    "wide_kl1": {
        "model": "dual",
        "params": {
            "latent_dim": 10,
            "mixing": "into_foreground",
            "weight_background_kl": False,
        },
        "background_latent": "per_cell",
    },
    "raw_wide_kl1": {
        "model": "dual",
        "params": {
            "likelihood": "gaussian",
            "latent_dim": 10,
            "mixing": "into_foreground",
            "weight_background_kl": False,
        },
        "background_latent": "per_cell",
        "binarize": False,
    },
    "single_wide": {"model": "single", "params": {"latent_dim": 10}, "add_bg": True},
    # The thesis' suggestion: keep the grey levels instead of binarising.
    "raw": {
        "model": "dual",
        "params": {"likelihood": "gaussian"},
        "binarize": False,
    },
    "raw_wide": {
        "model": "dual",
        "params": {
            "likelihood": "gaussian",
            "latent_dim": 10,
            "mixing": "into_foreground",
        },
        "background_latent": "per_cell",
        "binarize": False,
    },
    "raw_single_wide": {
        "model": "single",
        "params": {"likelihood": "gaussian", "latent_dim": 10},
        "add_bg": True,
        "binarize": False,
    },
}
FIGURE_RUNS = {
    "study",
    "wide",
    "study_kl1",
    "wide_kl1",
    "additive_wide_kl1",
    "raw_wide_kl1",
}
N_TRAIN = N_TEST = 2000


def build(run, n_background, epochs, seed):
    """The estimator of one run."""
    params = {**STUDY, **run["params"]}
    if run.get("background_latent") == "per_cell":
        params["background_latent_dim"] = n_background
    common = {"max_epochs": epochs, "random_state": seed}
    if run["model"] == "dual":
        return DualVAETransformer(**params, **common)
    latent = params["latent_dim"] + (
        n_background if run.get("add_bg") else params["background_latent_dim"]
    )
    return VAETransformer(latent, likelihood=params["likelihood"], **common)


def best_column_auc(Z, state):
    """Highest ROC-AUC of one column of ``Z`` against ``state``, either way up."""
    if Z.shape[1] == 0 or state.min() == state.max():
        return float("nan")
    aucs = [roc_auc_score(state, column) for column in Z.T]
    return float(max(max(a, 1 - a) for a in aucs))


def background_use(estimator, X_test, truth):
    """Whether the background code is used: its KL and its decoder's output.

    A code can rank images by background state (``background_auc``) and
    still be collapsed: near the prior, with a decoder that ignores it.
    """
    Z = estimator.transform(X_test)[:, estimator.latent_dim :]
    module = estimator.net_.module_
    with torch.no_grad():
        x = torch.as_tensor(X_test[:, None])
        _, logvar = module.encode(x)
    logvar = logvar[:, estimator.latent_dim :].numpy()
    kl = 0.5 * (Z**2 + np.exp(logvar) - 1 - logvar)
    reconstruction = estimator.reconstruct_background(X_test)
    target = estimator.background_target(X_test)
    flat = reconstruction.reshape(len(X_test), -1)
    # Each background cell's pooling window: where its mask pools brightest.
    masks = truth["background_masks"].astype(np.float32)
    windows = estimator.background_target(masks).reshape(len(masks), -1)
    windows = windows.argmax(axis=1)
    return {
        "background_code_kl": [float(v) for v in kl.mean(axis=0)],
        "background_reconstruction_error": float(
            np.abs(reconstruction - target).mean()
        ),
        # Higher reconstructed value in the cell's window = "on"; not
        # either way up.
        "background_reconstruction_auc": [
            float(roc_auc_score(truth["background"][:, j], flat[:, window]))
            for j, window in enumerate(windows)
        ],
    }


def cell_metrics(reconstruction, truth, threshold):
    """Accuracy and ROC-AUC of each foreground cell's mean reconstruction."""
    masks = truth["foreground_masks"]
    background_masks = truth["background_masks"]
    means = np.stack([reconstruction[:, m].mean(axis=1) for m in masks], axis=1)
    predicted = means > threshold
    correct = predicted == truth["foreground"].astype(bool)
    overlaps = [(background_masks & m).any(axis=(1, 2)) for m in masks]
    groups = {"inside": [], "outside": [], "inside_bg_on": [], "inside_bg_off": []}
    aucs = {"inside": [], "outside": []}
    for cell, overlap in enumerate(overlaps):
        where = "inside" if overlap.any() else "outside"
        groups[where].append(correct[:, cell].mean())
        state = truth["foreground"][:, cell]
        aucs[where].append(roc_auc_score(state, means[:, cell]))
        if overlap.any():
            background_on = truth["background"][:, overlap].any(axis=1)
            groups["inside_bg_on"].append(correct[background_on, cell].mean())
            groups["inside_bg_off"].append(correct[~background_on, cell].mean())
    out = {f"accuracy_{k}": float(np.mean(v)) for k, v in groups.items()}
    out.update({f"cell_auc_{k}": float(np.mean(v)) for k, v in aucs.items()})
    out["accuracy_per_cell"] = [float(a) for a in correct.mean(axis=0)]
    out["inside_cells"] = [i for i, o in enumerate(overlaps) if o.any()]
    return out


def run_one(scenario, name, epochs, seed, figures):
    run = RUNS[name]
    binarize = run.get("binarize", True)
    X, _ = make_cells(N_TRAIN, scenario=scenario, binarize=binarize, random_state=seed)
    X_test, truth = make_cells(
        N_TEST, scenario=scenario, binarize=binarize, random_state=seed + 1000
    )
    n_background = truth["background"].shape[1]
    estimator = build(run, n_background, epochs, seed)
    start = time.perf_counter()
    estimator.fit(X)
    fit_seconds = time.perf_counter() - start
    Z = estimator.transform(X_test)
    is_dual = isinstance(estimator, DualVAETransformer)
    n_bg = estimator.background_latent_dim if is_dual else Z.shape[1]
    background_code, foreground_code = Z[:, Z.shape[1] - n_bg :], Z[:, :-n_bg]
    if is_dual:
        reconstruction = estimator.reconstruct_foreground(X_test)
    else:
        reconstruction = estimator.inverse_transform(Z)
    threshold = 0.5 if binarize else 0.45  # half an active cell's 0.9
    result = {
        "scenario": scenario,
        "run": name,
        "model": type(estimator).__name__,
        "params": estimator.get_params(),
        "binarize": binarize,
        "epochs": epochs,
        "seed": seed,
        "fit_seconds": fit_seconds,
        "test_score": float(estimator.score(X_test)),
        "background_auc": [
            best_column_auc(background_code, truth["background"][:, j])
            for j in range(n_background)
        ],
        "foreground_code_background_auc": [
            best_column_auc(foreground_code, truth["background"][:, j])
            for j in range(n_background)
        ]
        if is_dual
        else None,
        **cell_metrics(reconstruction, truth, threshold),
    }
    if is_dual:
        result.update(background_use(estimator, X_test, truth))
        removed = estimator.reconstruct_foreground(X_test, remove_background=True)
        metrics = cell_metrics(removed, truth, threshold)
        result.update({f"removed_{k}": v for k, v in metrics.items()})
    if name in FIGURE_RUNS:
        write_figures(estimator, X_test, truth, figures / f"{_slug(scenario)}_{name}")
    return result


def write_figures(estimator, X_test, truth, stem):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Rows with the background on and off (and the second cell on, if any).
    state = truth["background"]
    rows = list(np.flatnonzero(state[:, 0] == 1)[:3])
    rows += list(np.flatnonzero(state[:, 0] == 0)[:2])
    if state.shape[1] > 1:
        rows += list(np.flatnonzero(state[:, 1] == 1)[:1])
    labels = [
        f"background {''.join(str(v) for v in state[i])}\n"
        f"{truth['foreground'][i].sum()} cells on"
        for i in rows
    ]
    fig = plot_dual_reconstructions(
        estimator, X_test[rows], with_background_removed=True, row_labels=labels
    )
    fig.savefig(f"{stem}_reconstructions.png", dpi=90)
    plt.close(fig)
    fig = plot_latent_traversal(estimator, n_steps=2, span=5.0)
    fig.savefig(f"{stem}_latent_exploration.png", dpi=90)
    plt.close(fig)


def write_data_figure(path, seed=1):
    """Six images of each scenario, one row each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 6, figsize=(9, 4.9), layout="constrained")
    for row, scenario in zip(axes, ("X90", "X50", "X90,20"), strict=True):
        X, truth = make_cells(6, scenario=scenario, random_state=seed)
        for ax, image, state in zip(row, X, truth["background"], strict=True):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("background " + "".join(map(str, state)), fontsize="small")
        row[0].set_ylabel(scenario)
    fig.suptitle("make_cells: the thesis' three scenarios (binarised)")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _slug(scenario):
    return scenario.replace(",", "_")


def add_arguments(parser):
    parser.add_argument("--scenarios", nargs="+", default=["X90", "X50", "X90,20"])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--figures", default="docs/images/dual_vae")
    parser.add_argument(
        "--data-figure",
        action="store_true",
        help="only write <figures>/cells.png, sample images of each scenario",
    )


def run(args):
    out, figures = pathlib.Path(args.out), pathlib.Path(args.figures)
    figures.mkdir(parents=True, exist_ok=True)
    if args.data_figure:
        write_data_figure(figures / "cells.png")
        return
    for scenario in args.scenarios:
        for name in args.runs:
            result = run_one(scenario, name, args.epochs, args.seed, figures)
            append_jsonl(out / f"{_slug(scenario)}.jsonl", result)
            print(
                f"{scenario} {name}: bg AUC {result['background_auc']} "
                f"acc in/out {result['accuracy_inside']:.3f}/"
                f"{result['accuracy_outside']:.3f} ({result['fit_seconds']:.0f} s)",
                flush=True,
            )


# -- the report ------------------------------------------------------------------

# Two tables: what the codes hold, and how the foreground cells come out.
TABLES = {
    "codes": (
        "scenario",
        "run",
        "seed",
        "data",
        "latent fg+bg",
        "background AUC, background code",
        "background AUC, foreground code",
        "background code KL (nats)",
        "g(x) reconstruction AUC",
        "fit s",
    ),
    "cells": (
        "scenario",
        "run",
        "seed",
        "latent fg+bg",
        "accuracy outside",
        "accuracy inside (bg on / off)",
        "cell AUC outside / inside",
        "background removed: accuracy outside / inside (bg on / off)",
        "background removed: cell AUC inside",
    ),
}


def _auc_list(values):
    if values is None:
        return "-"
    return " / ".join(f"{100 * v:.1f}" for v in values)


def _percent(result, key):
    return f"{100 * result[key]:.1f}"


def fields(result):
    """Every table cell of one result, by column name."""
    params = result["params"]
    if result["model"] == "DualVAETransformer":
        latent = f"{params['latent_dim']}+{params['background_latent_dim']}"
        options = [params["mixing"]] if params["mixing"] != "full" else []
        if params.get("composition", "none") != "none":
            options.append(params["composition"])
        if not params.get("weight_background_kl", True):
            options.append("KL once")
        if options:
            latent += f" ({', '.join(options)})"
    else:
        latent = f"{params['latent_dim']} (single VAE)"
    out = {
        "scenario": result["scenario"],
        "run": result["run"],
        "seed": str(result["seed"]),
        "data": "binary" if result["binarize"] else "raw",
        "latent fg+bg": latent,
        "background AUC, background code": _auc_list(result["background_auc"]),
        "background AUC, foreground code": _auc_list(
            result["foreground_code_background_auc"]
        ),
        "background code KL (nats)": " / ".join(
            f"{v:.2f}" for v in result.get("background_code_kl", [])
        )
        or "-",
        "g(x) reconstruction AUC": _auc_list(
            result.get("background_reconstruction_auc")
        ),
        "fit s": f"{result['fit_seconds']:.0f}",
        "accuracy outside": _percent(result, "accuracy_outside"),
        "accuracy inside (bg on / off)": f"{_percent(result, 'accuracy_inside')} "
        f"({_percent(result, 'accuracy_inside_bg_on')} / "
        f"{_percent(result, 'accuracy_inside_bg_off')})",
        "cell AUC outside / inside": f"{_percent(result, 'cell_auc_outside')} / "
        f"{_percent(result, 'cell_auc_inside')}",
    }
    removed = "removed_accuracy_outside" in result
    out["background removed: accuracy outside / inside (bg on / off)"] = (
        f"{_percent(result, 'removed_accuracy_outside')} / "
        f"{_percent(result, 'removed_accuracy_inside')} "
        f"({_percent(result, 'removed_accuracy_inside_bg_on')} / "
        f"{_percent(result, 'removed_accuracy_inside_bg_off')})"
        if removed
        else "-"
    )
    out["background removed: cell AUC inside"] = (
        _percent(result, "removed_cell_auc_inside") if removed else "-"
    )
    return out


def markdown(results, columns):
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for result in results:
        cells = fields(result)
        lines.append("| " + " | ".join(cells[c] for c in columns) + " |")
    return "\n".join(lines)


def load(results):
    """Return the newest result per (scenario, run, seed), in a fixed order."""
    newest = {}
    for path in sorted(pathlib.Path(results).glob("X*.jsonl")):  # one per scenario
        for line in path.read_text().splitlines():
            result = json.loads(line)
            newest[result["scenario"], result["run"], result["seed"]] = result
    order = {"X90": 0, "X50": 1, "X90,20": 2}
    # Runs of options since removed (in older result files) go last.
    runs = list(RUNS)

    def run_order(name):
        return runs.index(name) if name in runs else len(runs)

    return [
        newest[key]
        for key in sorted(
            newest, key=lambda k: (order.get(k[0], 9), run_order(k[1]), k[2])
        )
    ]


def summarize(args):
    results = load(args.out)
    text = "\n\n".join(markdown(results, columns) for columns in TABLES.values())
    print(text)
    (pathlib.Path(args.out) / "dual_vae.md").write_text(text + "\n")
