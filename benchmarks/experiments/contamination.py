"""Training data with anomalies in it, and tables: runs and their summary.

``run`` is ``detection``'s: ``python -m skvae.benchmark`` with the options
after ``--``, into ``OUT/NAME``. ``summarize`` reads the runs' records in
``OUT`` and prints markdown tables (written to ``OUT/summary.md``):

- ``--levels``: one-class runs of one data set at several training
  contaminations (``level=folder``): every method's mean ROC-AUC per level
  and what it loses from the first level to the last; and per class for the
  default and the two reference baselines.
- ``--seeds``: one-class runs of the default at several seeds
  (``seed=folder``; the first also holds the baselines): each class's mean
  and spread (max - min) over the seeds, and its gap to the best baseline.
- ``--probe``: the records of the ``score_parts`` experiment: each
  candidate score's mean ROC-AUC per contamination level, over the classes
  every level holds.
- ``--multi``: runs with several normal classes (``name=folder``): each
  method's mean ROC-AUC, mean AP and worst split against the best baseline.
- ``--tables``: folders of tabular runs (one sub-folder per table): the mean
  ROC-AUC of the default and every baseline per table, and their mean rank
  over the tables (1 = best; methods tied share the mean of their ranks; the
  default's parts are left out of the ranking); each to
  ``OUT/FOLDER.md``.

    python -m benchmarks contamination run --name fmnist_one_class_05 -- \\
        --dataset fashion-mnist --train-contamination 0.05 --methods skvae lof
    python -m benchmarks contamination summarize
"""

from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from .._shared import RESULTS, read_jsonl
from .detection import DEFAULT, load
from .detection import add_arguments as add_arguments  # the same runs
from .detection import run as run
from .detection import table as split_table

REFERENCES = ("IsolationForest", "PyOD VAE")


def add_summary_arguments(parser):
    parser.add_argument(
        "--levels",
        nargs="*",
        default=[
            "0=fmnist_one_class_00",
            "5=fmnist_one_class_05",
            "10=fmnist_one_class_10",
        ],
        help="level=folder",
    )
    parser.add_argument(
        "--seeds",
        nargs="*",
        default=[
            "0=fmnist_one_class_00",
            "1=fmnist_one_class_00_seed1",
            "2=fmnist_one_class_00_seed2",
        ],
        help="seed=folder",
    )
    parser.add_argument(
        "--probe",
        default=str(RESULTS / "score_parts" / "one_class.jsonl"),
        help="records of the score_parts experiment",
    )
    parser.add_argument(
        "--multi",
        nargs="*",
        default=[
            "fmnist-first-five=fashion-mnist_first_five_5",
            "fmnist-random=fashion-mnist_random_5",
            "digits-first-five=digits_first_five_5",
            "digits-random=digits_random_5",
        ],
        help="name=folder",
    )
    parser.add_argument(
        "--tables", nargs="*", default=["tables_00", "tables_05"], help="folders"
    )


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
    records = read_jsonl(path)
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


def summarize(args):
    out = Path(args.out)
    pairs = [(name, out / folder) for name, folder in _split(args.levels)]
    parts = []
    if pairs:
        text, n_splits = levels_table(pairs)
        parts.append(f"### Training contamination ({n_splits} classes)\n\n{text}\n")
    seeds = [(name, out / folder) for name, folder in _split(args.seeds)]
    if seeds:
        text = seeds_table(seeds)
        parts.append(f"### The clean default over seeds\n\n{text}\n")
    if args.probe:
        text, classes = probe_table(out / args.probe)
        parts.append(f"### Score parts (classes {classes})\n\n{text}\n")
    for name, folder in _split(args.multi):
        text, _, n_splits = split_table(load(out / folder))
        parts.append(f"### {name} ({n_splits} splits)\n\n{text}\n")
    markdown = "\n".join(parts)
    print(markdown)
    (out / "summary.md").write_text(markdown)
    for folder in args.tables:
        tables = sorted(
            (table.name, table)
            for table in (out / folder).iterdir()
            if (table / "records.jsonl").exists()
        )
        text = f"### Tables\n\n{tables_table(_table_order(tables))}\n"
        print(text)
        (out / f"{folder}.md").write_text(text)


def _split(items):
    return [item.split("=", 1) for item in items]


def _table_order(tables):
    """The real tables first, then each synthetic kind (as the docs list them)."""
    kinds = ("", "_local", "_global", "_dependency", "_clustered")
    datasets = ("breast-cancer", "wine", "diabetes", "digits-flat")

    def key(item):
        name = item[0]
        kind = next((k for k in kinds[1:] if name.endswith(k)), "")
        dataset = name[: len(name) - len(kind)]
        rank = datasets.index(dataset) if dataset in datasets else len(datasets)
        return kinds.index(kind), rank, name

    return sorted(tables, key=key)
