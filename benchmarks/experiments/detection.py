"""Detection quality: runs of ``python -m skvae.benchmark`` and their tables.

``run`` calls the shipped command with the options after ``--``, writing
into ``OUT/NAME`` (``records.jsonl`` saved as each method and split
finishes, an interrupted run continued; ``results.md``, ``results.json``).
``summarize`` prints, per run folder, every skvae option and baseline with
its mean ROC-AUC, mean average precision, worst gap to the best baseline of
a split and total fit seconds, then the checks of the default
(``skvae[auto]``), and writes them to ``OUT/summary.md``.

    python -m benchmarks detection run --name fmnist_one_class -- \\
        --dataset fashion-mnist --methods skvae isolation-forest pyod-vae
    python -m benchmarks detection summarize --runs fmnist_one_class
"""

import json
from pathlib import Path

import numpy as np

from .._shared import read_jsonl, run_detection_command

DEFAULT = "skvae[auto]"


def add_arguments(parser):
    parser.add_argument("--name", required=True, help="the run's folder in OUT")
    parser.add_argument(
        "options",
        nargs="*",
        help="after --: the options of python -m skvae.benchmark",
    )


def add_summary_arguments(parser):
    parser.add_argument(
        "--runs", nargs="*", help="run folders in OUT (default: every one)"
    )


def run(args):
    run_detection_command(
        args.options, Path(args.out) / args.name, threads=args.threads, seed=args.seed
    )


def load(folder):
    """A run's records without their ROC curves."""
    records = read_jsonl(Path(folder) / "records.jsonl")
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


def summarize(args):
    out = Path(args.out)
    names = args.runs or sorted(
        folder.name for folder in out.iterdir() if (folder / "records.jsonl").exists()
    )
    markdown = []
    for name in names:
        text, checks, n_splits = table(load(out / name))
        markdown.append(f"### {name} ({n_splits} splits)\n\n{text}\n")
        markdown.append(f"Default checks: `{json.dumps(checks)}`\n")
    print("\n".join(markdown))
    (out / "summary.md").write_text("\n".join(markdown))
