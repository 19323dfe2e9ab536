"""Which score suits rows of features: every candidate sum from one fit per split.

On the benchmark's 19 tables (breast cancer, wine and flat digits with the
other classes as anomalies; ADBench's four synthetic kinds on breast cancer,
wine, diabetes and flat digits), at one training contamination, fits one
``VAEOutlierDetector`` per split whose ``score_type`` is a tuple of every
part studied, sums the standardised parts (``score_parts``) into each
candidate score, and ranks each candidate, in turn, against the baselines of
the ``python -m skvae.benchmark`` runs of the same splits (``--baselines``,
the folder holding one run per table, by default the contamination
experiment's ``tables_LEVEL``). ``--params`` passes detector keyword
arguments as JSON (a training setting to compare; its records go to
``OUT/NAME_LEVEL.jsonl`` with ``--name NAME``). The splits are the benchmark's
(``skvae.benchmark.benchmark_splits`` with the same options). Flat digits'
64 features are 8x8 images to the detector: there the candidates keep the
default score of 8x8 images (``auto_terms``; before commit 7b7f2a9 the
three image parts without the ELBO). Records go to
``OUT/contamination_LEVEL.jsonl`` (one line per table and split, resumed),
the table to ``OUT/contamination_LEVEL.md``.

    python -m benchmarks table_score_parts run --train-contamination 0.05
"""

from pathlib import Path

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark import benchmark_splits
from skvae.terms import auto_terms

from .._shared import RESULTS, add_params, append_jsonl, read_jsonl
from .contamination import mean_auc_by_method, named_failures
from .detection import load

FLAT_PARTS = ("elbo", "reconstruction", "latent_knn", "input_knn")
IMAGE_DEFAULT = auto_terms((1, 8, 8), transformations="auto")
CANDIDATES = {
    "elbo + input_knn": ("elbo", "input_knn"),
    "elbo + latent_knn (previous)": ("elbo", "latent_knn"),
    "elbo + latent_knn + input_knn": ("elbo", "latent_knn", "input_knn"),
    "reconstruction + latent_knn + input_knn": (
        "reconstruction",
        "latent_knn",
        "input_knn",
    ),
    "latent_knn + input_knn": ("latent_knn", "input_knn"),
    "input_knn": ("input_knn",),
    "latent_knn": ("latent_knn",),
    "elbo": ("elbo",),
}
BASELINES = (
    "IsolationForest",
    "LOF",
    "PyOD OCSVM",
    "PyOD VAE",
    "PyOD AutoEncoder",
    "PyOD DeepSVDD",
)


def tables():
    """(folder name, data set, synthetic kind) of the 19 tables."""
    real = [(name, name, None) for name in ("breast-cancer", "wine", "digits-flat")]
    synthetic = [
        (f"{name}_{kind}", name, kind)
        for kind in ("local", "global", "dependency", "clustered")
        for name in ("breast-cancer", "wine", "diabetes", "digits-flat")
    ]
    return real + synthetic


def split_record(table, split, X_fit, X_eval, is_inlier, seed, params=None):
    """Fit once; each candidate's ROC-AUC on the split."""
    images = X_fit.shape[1] == 64  # read as 8x8 images
    parts = FLAT_PARTS
    if images:
        parts = tuple(dict.fromkeys((*FLAT_PARTS[:3], *IMAGE_DEFAULT)))
    detector = VAEOutlierDetector(score_type=parts, random_state=seed, **params or {})
    detector.fit(X_fit)
    scores = detector.score_parts(X_eval)
    aucs = {}
    for name, names in CANDIDATES.items():
        names = IMAGE_DEFAULT if images else names
        total = sum(scores[part] for part in names)
        aucs[name] = 100 * roc_auc_score(is_inlier, total)
    return {"table": table, "split": split, "images": images, "roc_auc": aucs}


def level_name(args):
    level = f"{round(100 * args.train_contamination):02d}"
    return f"{args.name}_{level}" if args.name else f"contamination_{level}"


def add_arguments(parser):
    parser.add_argument("--splits", type=int, default=5)
    add_params(parser)
    add_summary_arguments(parser)


def add_summary_arguments(parser):
    parser.add_argument("--train-contamination", type=float, default=0.0)
    parser.add_argument(
        "--name", help="records under OUT/NAME_LEVEL (default: contamination_LEVEL)"
    )
    parser.add_argument(
        "--baselines",
        help="folder of the benchmark's table runs (default: the contamination "
        "experiment's tables_LEVEL)",
    )


def run(args):
    """Append one JSON line per (table, split); skip the ones already there."""
    out = Path(args.out) / f"{level_name(args)}.jsonl"
    done = {(r["table"], r["split"]) for r in read_jsonl(out)}
    for table, dataset, kind in tables():
        argv = ["--dataset", dataset, "--splits", str(args.splits)]
        argv += ["--anomaly-share", "0.1", "--random-state", "0"]
        argv += ["--train-contamination", str(args.train_contamination)]
        argv += ["--synthetic", kind] if kind else []
        for split, _, X_fit, X_eval, is_inlier in benchmark_splits(argv):
            if (table, split) in done:
                continue
            record = split_record(
                table, split, X_fit, X_eval, is_inlier, args.seed, args.params
            )
            record["params"] = args.params
            append_jsonl(out, record)
            print(table, split, f"{record['roc_auc']['elbo + input_knn']:.1f}")
    summarize(args)


def rank_table(records_path, baselines_dir):
    """Each candidate's mean rank against the baselines, and its mean per table."""
    records = read_jsonl(records_path)
    names = [table for table, _, _ in tables()]
    folders = [Path(baselines_dir) / table for table in names]
    runs = [mean_auc_by_method(r) for r in named_failures([load(f) for f in folders])]
    baseline = np.array(
        [[np.mean(list(run[m].values())) for run in runs] for m in BASELINES]
    )
    lines = [
        "| candidate | mean rank | " + " | ".join(names) + " |",
        "|---" * (len(names) + 2) + "|",
    ]
    for candidate in CANDIDATES:
        means = np.array(
            [
                np.mean([r["roc_auc"][candidate] for r in records if r["table"] == t])
                for t in names
            ]
        )
        both = np.nan_to_num(np.vstack([means, baseline]), nan=-np.inf)
        ranks = [rankdata(-both[:, j])[0] for j in range(len(names))]
        cells = " | ".join(f"{v:.1f}" for v in means)
        lines.append(f"| {candidate} | {np.mean(ranks):.2f} | {cells} |")
    for m, means in zip(BASELINES, baseline, strict=True):
        cells = " | ".join(f"{v:.1f}" for v in means)
        lines.append(f"| {m} | | {cells} |")
    return "\n".join(lines)


def summarize(args):
    name = level_name(args)
    level = name[-2:]
    baselines = args.baselines or RESULTS / "contamination" / f"tables_{level}"
    text = rank_table(Path(args.out) / f"{name}.jsonl", baselines)
    print(text)
    (Path(args.out) / f"{name}.md").write_text(text + "\n")
