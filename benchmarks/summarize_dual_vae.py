"""Tabulate the dual VAE experiments written by ``benchmarks/dual_vae.py``.

    python benchmarks/summarize_dual_vae.py [--results benchmarks/results/dual_vae]

Prints a Markdown table (one row per scenario and run; the newest result of
each) and writes it to ``<results>.md``.
"""

import argparse
import json
import pathlib

from dual_vae import RUNS

COLUMNS = (
    "scenario",
    "run",
    "data",
    "latent fg+bg",
    "background AUC (background code)",
    "background AUC (foreground code)",
    "cell accuracy outside",
    "cell accuracy inside",
    "inside, background on / off",
    "cell AUC outside / inside",
    "background removed: accuracy outside / inside on / inside off",
    "fit s",
)


def _auc_list(values):
    if values is None:
        return "-"
    return " / ".join(f"{100 * v:.1f}" for v in values)


def row(result):
    params = result["params"]
    if result["model"] == "DualVAETransformer":
        latent = f"{params['latent_dim']}+{params['background_latent_dim']}"
        if params["mixing"] != "full":
            latent += f" ({params['mixing']})"
    else:
        latent = f"{params['latent_dim']} (single VAE)"
    return (
        result["scenario"],
        result["run"],
        "binary" if result["binarize"] else "raw",
        latent,
        _auc_list(result["background_auc"]),
        _auc_list(result["foreground_code_background_auc"]),
        f"{100 * result['accuracy_outside']:.1f}",
        f"{100 * result['accuracy_inside']:.1f}",
        f"{100 * result['accuracy_inside_bg_on']:.1f} / "
        f"{100 * result['accuracy_inside_bg_off']:.1f}",
        f"{100 * result['cell_auc_outside']:.1f} / "
        f"{100 * result['cell_auc_inside']:.1f}",
        _removed(result),
        f"{result['fit_seconds']:.0f}",
    )


def _removed(result):
    if "removed_accuracy_outside" not in result:
        return "-"
    return " / ".join(
        f"{100 * result[f'removed_accuracy_{k}']:.1f}"
        for k in ("outside", "inside_bg_on", "inside_bg_off")
    )


def load(results):
    """The newest result per (scenario, run), in the scenarios' and runs' order."""
    newest = {}
    for path in sorted(pathlib.Path(results).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            result = json.loads(line)
            newest[result["scenario"], result["run"]] = result
    order = {"X90": 0, "X50": 1, "X90,20": 2}
    runs = list(RUNS)
    return [
        newest[key]
        for key in sorted(newest, key=lambda k: (order.get(k[0], 9), runs.index(k[1])))
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="benchmarks/results/dual_vae")
    args = parser.parse_args()
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row(r)) + " |" for r in load(args.results)]
    table = "\n".join(lines)
    print(table)
    pathlib.Path(f"{args.results}.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
