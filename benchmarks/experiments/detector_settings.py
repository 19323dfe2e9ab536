"""A detector setting on the benchmark's splits: quality and seconds per split.

Fits ``VAEOutlierDetector(**PARAMS, random_state=SEED)`` (``--params`` as
JSON; ``{}`` is the default detector) once per split of a
``python -m skvae.benchmark`` command (the same splits, through
``skvae.benchmark.benchmark_splits``) and records its ROC-AUC, average
precision (anomalies positive), fit seconds and scoring seconds. One JSON
line per split goes to ``OUT/NAME.jsonl``; splits already there are skipped,
so an interrupted run continues. ``summarize --names`` prints one row per
run: the mean over its splits.

    python -m benchmarks detector_settings run --name width16_one_class \\
        --params '{"hidden_dims": [16, 32]}' -- --dataset fashion-mnist
    python -m benchmarks detector_settings summarize --names width16_one_class
"""

import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from skvae import VAEOutlierDetector

from .._shared import (
    add_benchmark_options,
    add_params,
    append_jsonl,
    read_jsonl,
    unfinished_splits,
)


def add_summary_arguments(parser):
    parser.add_argument("--name", default="detector_settings", help="OUT/NAME.jsonl")
    parser.add_argument("--names", nargs="+", default=None, help="summarize these")


def add_arguments(parser):
    add_summary_arguments(parser)
    add_params(parser)
    add_benchmark_options(parser)


def score_split(X_fit, X_eval, is_inlier, params, seed):
    """One fit and one scoring pass; ROC-AUC, AP and seconds of each."""
    detector = VAEOutlierDetector(**params, random_state=seed)
    start = time.perf_counter()
    detector.fit(X_fit)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.score_samples(X_eval)
    score_seconds = time.perf_counter() - start
    return {
        "roc_auc": round(100 * roc_auc_score(is_inlier, scores), 2),
        "ap": round(100 * average_precision_score(1 - is_inlier, -scores), 2),
        "fit_seconds": round(fit_seconds, 1),
        "score_seconds": round(score_seconds, 2),
        "n_fit": len(X_fit),
        "n_eval": len(X_eval),
    }


def run(args):
    out = Path(args.out) / f"{args.name}.jsonl"
    for split, _, X_fit, X_eval, is_inlier in unfinished_splits(out, args.options):
        record = {
            "split": split,
            "seed": args.seed,
            "params": args.params,
            "benchmark_options": args.options,
        }
        record.update(score_split(X_fit, X_eval, is_inlier, args.params, args.seed))
        append_jsonl(out, record)
        print(split, record["roc_auc"], record["ap"], record["fit_seconds"], flush=True)


def summarize(args):
    names = args.names or [args.name]
    print("| run | params | splits | ROC-AUC | AP | fit s | score s |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        records = read_jsonl(Path(args.out) / f"{name}.jsonl")
        means = [
            np.mean([r[key] for r in records])
            for key in ("roc_auc", "ap", "fit_seconds", "score_seconds")
        ]
        params = json.dumps(records[0]["params"]) if records else ""
        print(
            f"| {name} | `{params}` | {len(records)} | {means[0]:.2f} | "
            f"{means[1]:.2f} | {means[2]:.1f} | {means[3]:.2f} |"
        )
