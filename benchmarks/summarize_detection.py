"""Summarise the detection benchmarks: each option on each benchmark, and the targets.

Reads the ``records.jsonl`` of ``python -m skvae.benchmark`` runs (one folder
per benchmark) and prints, per benchmark, every skvae option and baseline
with its mean ROC-AUC, mean average precision, total fit seconds and its
worst gap to the best baseline of a split; then the issue's checks for the
default (``skvae[auto]``). Writes the tables as markdown and the records
without their ROC curves as JSON (small enough to commit).

    python benchmarks/summarize_detection.py \\
        fmnist-one-class=benchmark-results/fmnist-one-class \\
        fmnist-multi=benchmark-results/fmnist-multi \\
        digits-multi=benchmark-results/digits-multi \\
        breast-cancer=benchmark-results/breast-cancer \\
        --out benchmarks/results/detection
"""

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT = "skvae[auto]"


def load(folder):
    with open(Path(folder) / "records.jsonl") as f:
        records = [json.loads(line) for line in f if line.strip()]
    for record in records:
        record.pop("fpr", None)
        record.pop("tpr", None)
    return records


def table(records):
    """Markdown rows per method, best mean ROC-AUC first; and the default's checks."""
    methods = list(dict.fromkeys(r["method"] for r in records))
    splits = sorted({r["split"] for r in records})
    auc = {(r["method"], r["split"]): 100 * r["roc_auc"] for r in records}
    ap = {(r["method"], r["split"]): 100 * r["average_precision"] for r in records}
    fit = {(r["method"], r["split"]): r["fit_seconds"] for r in records}
    baselines = [m for m in methods if not m.startswith("skvae")]
    best_baseline = {s: max(auc[m, s] for m in baselines) for s in splits}
    rows = []
    for m in methods:
        if any((m, s) not in auc for s in splits):
            continue
        gaps = [auc[m, s] - best_baseline[s] for s in splits]
        rows.append(
            (
                m,
                np.mean([auc[m, s] for s in splits]),
                np.mean([ap[m, s] for s in splits]),
                min(gaps),
                sum(fit[m, s] for s in splits),
            )
        )
    rows.sort(key=lambda row: -row[1])
    lines = [
        "| method | mean ROC-AUC | mean AP | worst split vs best baseline | fit s |",
        "|---|---|---|---|---|",
    ]
    for m, mean_auc, mean_ap, worst, seconds in rows:
        name = f"**{m}**" if m == DEFAULT else m
        cells = [f"{mean_auc:.2f}", f"{mean_ap:.2f}", f"{worst:+.2f}", f"{seconds:.0f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = {}
    if all((DEFAULT, s) in auc for s in splits):
        by_name = {row[0]: row for row in rows}
        default = by_name[DEFAULT]
        best_auc = max(by_name[m][1] for m in baselines)
        best_ap = max(by_name[m][2] for m in baselines)
        checks = {
            "mean ROC-AUC": round(default[1], 2),
            "best baseline mean ROC-AUC": round(best_auc, 2),
            "mean AP": round(default[2], 2),
            "best baseline mean AP": round(best_ap, 2),
            "worst split vs best baseline": round(default[3], 2),
            "fit s / PyOD VAE fit s": round(default[4] / by_name["PyOD VAE"][4], 2)
            if "PyOD VAE" in by_name
            else None,
        }
    return "\n".join(lines), checks, len(splits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="+", help="name=folder")
    parser.add_argument("--out", default=None, help="prefix of the .md and .json")
    args = parser.parse_args()
    markdown, everything = [], {}
    for item in args.benchmarks:
        name, folder = item.split("=", 1)
        records = load(folder)
        text, checks, n_splits = table(records)
        markdown.append(f"### {name} ({n_splits} splits)\n\n{text}\n")
        markdown.append(f"Default checks: `{json.dumps(checks)}`\n")
        everything[name] = {"checks": checks, "records": records}
    print("\n".join(markdown))
    if args.out:
        Path(f"{args.out}.md").write_text("\n".join(markdown))
        with open(f"{args.out}.json", "w") as f:
            json.dump(everything, f, indent=0)


if __name__ == "__main__":
    main()
