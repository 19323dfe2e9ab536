"""Summarise the benchmarks of contaminated training data and of tables.

Reads the ``records.jsonl`` of ``python -m skvae.benchmark`` runs and prints
markdown tables:

- ``--levels``: one-class runs of one data set at several training
  contaminations (``name=folder`` each, e.g. ``0=...``): every method's mean
  ROC-AUC per level and what it loses from the first level to the last; and
  per class for the default and the two reference baselines.
- ``--tables``: tabular runs (``name=folder`` each): the mean ROC-AUC of
  the default and every baseline per table, and their mean rank over the
  tables (1 = best; methods tied share the mean of their ranks; the
  default's parts are left out of the ranking).
- ``--probe``: the JSON lines of ``benchmarks/contamination_terms.py``:
  each candidate score's mean ROC-AUC per contamination level, over the
  classes every level holds.
- ``--seeds``: one-class runs of the default at several seeds (``seed=folder``;
  the first also holds the baselines): each class's mean and spread
  (max - min) over the seeds, and its gap to the best baseline.
- ``--multi``: runs with several normal classes (``name=folder``): each
  method's mean ROC-AUC, mean AP and worst split against the best baseline
  (``summarize_detection.table``).

    python benchmarks/summarize_contamination.py \\
        --levels 0=DIR/fmnist_one_class_00 5=DIR/fmnist_one_class_05 \\
                 10=DIR/fmnist_one_class_10 \\
        --tables breast-cancer=DIR/tables_00/breast-cancer ... \\
        --multi digits-first-five=DIR/digits_first_five_5 ... \\
        --out benchmarks/results/contamination/summary.md
"""

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from summarize_detection import DEFAULT, load
from summarize_detection import table as split_table

REFERENCES = ("IsolationForest", "PyOD VAE")


def mean_auc_by_method(records):
    """Mean ROC-AUC x100 of each method over the splits it finished."""
    by_method = {}
    for r in records:
        by_method.setdefault(r["method"], {})[r["split"]] = 100 * r["roc_auc"]
    return by_method


def levels_table(levels):
    """Methods x contamination levels, only over the splits every run finished."""
    runs = {name: mean_auc_by_method(load(folder)) for name, folder in levels}
    names = [name for name, _ in levels]
    methods = [m for m in runs[names[0]] if all(m in runs[n] for n in names)]
    splits = sorted(
        set.intersection(*(set(runs[n][m]) for n in names for m in methods))
    )
    lines = [
        "| method | " + " | ".join(f"{n}%" for n in names) + " | loss |",
        "|---" * (len(names) + 2) + "|",
    ]
    rows = []
    for m in methods:
        means = [np.mean([runs[n][m][s] for s in splits]) for n in names]
        rows.append((m, means, means[0] - means[-1]))
    for m, means, loss in sorted(rows, key=lambda row: -row[1][-1]):
        label = f"**{m}**" if m == DEFAULT else m
        cells = " | ".join(f"{v:.2f}" for v in means)
        lines.append(f"| {label} | {cells} | {loss:.2f} |")
    per_class = [
        "",
        "| class | "
        + " | ".join(f"{m} {'/'.join(names)}" for m in (DEFAULT, *REFERENCES))
        + " |",
        "|---" * 4 + "|",
    ]
    for s in splits:
        cells = [
            " / ".join(f"{runs[n][m][s]:.2f}" for n in names)
            for m in (DEFAULT, *REFERENCES)
            if m in methods
        ]
        per_class.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines + per_class), len(splits)


def named_failures(runs_records):
    """Give a failed method's records (named by its key) the method's name."""
    names = {
        r["method_key"]: r["method"]
        for records in runs_records
        for r in records
        if "error" not in r and r["method_key"] != "skvae"
    }
    for records in runs_records:
        for r in records:
            if "error" in r:
                r["method"] = names.get(r["method_key"], r["method"])
    return runs_records


def tables_table(tables):
    """Methods x tables (mean ROC-AUC) and the mean rank over the tables.

    A method that failed on a table (nan) ranks last there.
    """
    loaded = named_failures([load(folder) for _, folder in tables])
    runs = {
        name: mean_auc_by_method(r) for (name, _), r in zip(tables, loaded, strict=True)
    }
    names = [name for name, _ in tables]
    methods = [
        m
        for m in runs[names[0]]
        if all(m in runs[n] for n in names)
        and (m == DEFAULT or not m.startswith("skvae"))
    ]
    means = np.array(
        [[np.mean(list(runs[n][m].values())) for n in names] for m in methods]
    )
    ranked = np.where(np.isnan(means), -np.inf, means)
    ranks = np.array([rankdata(-ranked[:, j]) for j in range(len(names))]).T
    order = np.argsort(ranks.mean(axis=1))
    lines = [
        "| method | mean rank | " + " | ".join(names) + " |",
        "|---" * (len(names) + 2) + "|",
    ]
    for i in order:
        label = f"**{methods[i]}**" if methods[i] == DEFAULT else methods[i]
        cells = " | ".join(f"{v:.1f}" for v in means[i])
        lines.append(f"| {label} | {ranks[i].mean():.2f} | {cells} |")
    return "\n".join(lines)


def probe_table(path):
    """Candidate scores x contamination levels of contamination_terms.py's records."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines()]
    levels = sorted({r["contamination"] for r in records})
    classes = set.intersection(
        *({r["class"] for r in records if r["contamination"] == c} for c in levels)
    )
    candidates = [
        k for k in records[0] if k not in ("class", "contamination", "seed", "seconds")
    ]
    lines = [
        "| score | " + " | ".join(f"{100 * c:g}%" for c in levels) + " |",
        "|---" * (len(levels) + 1) + "|",
    ]
    for name in candidates:
        means = [
            np.mean(
                [
                    r[name]
                    for r in records
                    if r["contamination"] == c and r["class"] in classes
                ]
            )
            for c in levels
        ]
        lines.append(f"| {name} | " + " | ".join(f"{m:.2f}" for m in means) + " |")
    return "\n".join(lines), sorted(classes)


def seeds_table(seeds):
    """Per class: the default's mean and spread over seeds, and the best baseline."""
    runs = [mean_auc_by_method(load(folder)) for _, folder in seeds]
    classes = sorted(set.intersection(*(set(run[DEFAULT]) for run in runs)))
    baselines = [m for m in runs[0] if not m.startswith("skvae")]
    lines = [
        "| class | "
        + " | ".join(f"seed {name}" for name, _ in seeds)
        + " | mean | spread | best baseline | mean - best |",
        "|---" * (len(seeds) + 5) + "|",
    ]
    means = []
    for c in classes:
        values = [run[DEFAULT][c] for run in runs]
        best, best_name = max((runs[0][m][c], m) for m in baselines)
        mean, spread = np.mean(values), np.ptp(values)
        means.append(mean)
        cells = " | ".join(f"{v:.2f}" for v in values)
        lines.append(
            f"| {c} | {cells} | {mean:.2f} | {spread:.2f} | {best:.2f} ({best_name}) "
            f"| {mean - best:+.2f} |"
        )
    per_seed = [np.mean([run[DEFAULT][c] for c in classes]) for run in runs]
    lines.append(
        "| mean | "
        + " | ".join(f"{v:.2f}" for v in per_seed)
        + f" | {np.mean(means):.2f} | | | |"
    )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", nargs="*", default=[], help="level=folder")
    parser.add_argument("--tables", nargs="*", default=[], help="name=folder")
    parser.add_argument("--multi", nargs="*", default=[], help="name=folder")
    parser.add_argument("--probe", default=None, help="contamination_terms.py output")
    parser.add_argument("--seeds", nargs="*", default=[], help="seed=folder")
    parser.add_argument("--out", default=None, help="markdown file to write")
    args = parser.parse_args()
    split = [item.split("=", 1) for item in args.levels]
    parts = []
    if split:
        text, n_splits = levels_table(split)
        parts.append(f"### Training contamination ({n_splits} classes)\n\n{text}\n")
    if args.tables:
        text = tables_table([item.split("=", 1) for item in args.tables])
        parts.append(f"### Tables\n\n{text}\n")
    if args.seeds:
        text = seeds_table([item.split("=", 1) for item in args.seeds])
        parts.append(f"### The clean default over seeds\n\n{text}\n")
    if args.probe:
        text, classes = probe_table(args.probe)
        parts.append(f"### Score parts (classes {classes})\n\n{text}\n")
    for item in args.multi:
        name, folder = item.split("=", 1)
        text, checks, n_splits = split_table(load(folder))
        parts.append(f"### {name} ({n_splits} splits)\n\n{text}\n")
    markdown = "\n".join(parts)
    print(markdown)
    if args.out:
        Path(args.out).write_text(markdown)


if __name__ == "__main__":
    main()
