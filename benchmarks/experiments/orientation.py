"""The classifier's part of the image default: orientation against transformation.

Fits ``VAEOutlierDetector(random_state=SEED)`` once per split of a
``python -m skvae.benchmark`` command, its ``score_type`` the default's parts
for the images' shape (``skvae.terms.auto_terms``) plus ``"transformation"``,
the part ``"orientation"`` replaced. Each part is standardised by its own
training scores, so the two sums below are exactly what the default and the
previous default score from this one fit: ``orientation``, the default's
parts, and ``transformation``, the same with the transformation's
log-probability in place of the orientation's. One JSON line per split goes
to ``OUT/NAME.jsonl`` with each sum's ROC-AUC and average precision
(anomalies positive) and each part's ROC-AUC alone; splits already there
are skipped. ``summarize --names`` prints one row per run: means over its
splits and the change.

    python -m benchmarks orientation run --name fashion-mnist_one_class_00 \\
        -- --dataset fashion-mnist
    python -m benchmarks orientation summarize --names fashion-mnist_one_class_00
"""

import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from skvae import VAEOutlierDetector
from skvae.terms import auto_terms

from .._shared import add_benchmark_options, append_jsonl, read_jsonl, unfinished_splits

NEW, OLD = "orientation", "transformation"


def add_summary_arguments(parser):
    parser.add_argument("--name", default="orientation", help="OUT/NAME.jsonl")
    parser.add_argument("--names", nargs="+", default=None, help="summarize these")
    parser.add_argument(
        "--per-split",
        action="store_true",
        help="one row per split, a column per run (runs of the same splits, "
        "e.g. seeds), with their mean and spread",
    )


def add_arguments(parser):
    add_summary_arguments(parser)
    add_benchmark_options(parser)


def _image_shape(X):
    """The detector's reading of ``X``: (C, H, W) of its images."""
    side = int(round(np.sqrt(np.prod(X.shape[1:]))))
    return (1, side, side) if X.ndim == 2 else (1, *X.shape[1:])


def score_split(X_fit, X_eval, is_inlier, seed):
    """One fit; ROC-AUC and AP of both sums, and each part alone."""
    default = auto_terms(_image_shape(X_fit), transformations="auto")
    if NEW not in default:
        raise ValueError(f"The default for these images, {default}, has no {NEW!r}.")
    start = time.perf_counter()
    detector = VAEOutlierDetector(score_type=(*default, OLD), random_state=seed)
    parts = detector.fit(X_fit).score_parts(X_eval)
    sums = {
        NEW: sum(parts[name] for name in default),
        OLD: sum(parts[OLD if name == NEW else name] for name in default),
    }
    record = {"default_parts": list(default)}
    for name, scores in sums.items():
        record[name] = round(100 * roc_auc_score(is_inlier, scores), 2)
        ap = average_precision_score(1 - is_inlier, -scores)
        record[f"{name}_ap"] = round(100 * ap, 2)
    record["parts_roc_auc"] = {
        name: round(100 * roc_auc_score(is_inlier, scores), 2)
        for name, scores in parts.items()
    }
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def run(args):
    out = Path(args.out) / f"{args.name}.jsonl"
    for split, _, X_fit, X_eval, is_inlier in unfinished_splits(out, args.options):
        record = {"split": split, "seed": args.seed, "benchmark_options": args.options}
        record.update(score_split(X_fit, X_eval, is_inlier, args.seed))
        append_jsonl(out, record)
        print(split, record[NEW], record[OLD], flush=True)


def summarize(args):
    names = args.names or [args.name]
    if args.per_split:
        _summarize_per_split(args.out, names)
        return
    print(
        f"| run | splits | {NEW} ROC-AUC / AP | {OLD} ROC-AUC / AP | change "
        "| splits ahead |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        records = read_jsonl(Path(args.out) / f"{name}.jsonl")
        if not records:
            continue
        new, old, new_ap, old_ap = (
            np.mean([r[key] for r in records])
            for key in (NEW, OLD, f"{NEW}_ap", f"{OLD}_ap")
        )
        ahead = sum(r[NEW] > r[OLD] for r in records)
        print(
            f"| {name} | {len(records)} | {new:.2f} / {new_ap:.2f} | "
            f"{old:.2f} / {old_ap:.2f} | {new - old:+.2f} / {new_ap - old_ap:+.2f} "
            f"| {ahead} of {len(records)} |"
        )


def _summarize_per_split(out, names):
    """ROC-AUC of each split (rows) in each run (columns), mean and spread."""
    runs = [
        {record["split"]: record for record in read_jsonl(Path(out) / f"{name}.jsonl")}
        for name in names
    ]
    splits = sorted(set.intersection(*(set(run) for run in runs)))
    print(f"| split | {' | '.join(names)} | mean | spread | {OLD}: mean | change |")
    print("|---" * (len(names) + 5) + "|")
    for split in splits:
        new = [run[split][NEW] for run in runs]
        old = np.mean([run[split][OLD] for run in runs])
        cells = " | ".join(f"{v:.2f}" for v in new)
        print(
            f"| {split} | {cells} | {np.mean(new):.2f} | {np.ptp(new):.2f} | "
            f"{old:.2f} | {np.mean(new) - old:+.2f} |"
        )
    means = [np.mean([run[split][NEW] for split in splits]) for run in runs]
    old = np.mean([run[split][OLD] for run in runs for split in splits])
    cells = " | ".join(f"{v:.2f}" for v in means)
    print(
        f"| mean | {cells} | {np.mean(means):.2f} | | {old:.2f} | "
        f"{np.mean(means) - old:+.2f} |"
    )
