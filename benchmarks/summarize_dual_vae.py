"""Tabulate the dual VAE experiments written by ``benchmarks/dual_vae.py``.

    python benchmarks/summarize_dual_vae.py [--results benchmarks/results/dual_vae]

Prints two Markdown tables (one row per scenario, run and seed; the newest
result of each) and writes it to ``<results>.md``.
"""

import argparse
import json
import pathlib

from dual_vae import RUNS

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
    for path in sorted(pathlib.Path(results).glob("*.jsonl")):
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="benchmarks/results/dual_vae")
    args = parser.parse_args()
    results = load(args.results)
    text = "\n\n".join(markdown(results, columns) for columns in TABLES.values())
    print(text)
    pathlib.Path(f"{args.results}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
