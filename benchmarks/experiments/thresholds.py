"""Do the detector's thresholds keep their promises on new normal data?

For each split, fits the default ``VAEOutlierDetector`` twice on the same
normal training data: with held-out calibration (``calibration_fraction=0.2``,
the default) and with thresholds from the training scores
(``calibration_fraction=None``). At nominal levels alpha it records the
realised false-positive rate on the held-out normal test images (which no
fit saw), the detection rate on the anomalies, and, for the calibrated fit,
the false-discovery rate and power of ``predict_with_fdr`` on a test batch
with a fixed share of anomalies. Also ROC-AUC of both fits (the price of
training on a fifth less data).

Records go to ``OUT/NAME.jsonl`` (one line per split, resumed on restart;
``--name`` defaults to the data set and protocol); ``summarize`` prints the
tables (see :func:`table`).

    python -m benchmarks thresholds run --protocol one-class --dataset fashion-mnist
    python -m benchmarks thresholds run --protocol one-class --dataset fashion-mnist \\
        --fits calibrated --name fmnist_one_bh
    python -m benchmarks thresholds run --protocol multi-class \\
        --dataset fashion-mnist --splits 4
    python -m benchmarks thresholds run --protocol multi-class --dataset digits \\
        --splits 20 --name digits
    python -m benchmarks thresholds summarize
"""

import math
import time
from pathlib import Path

import numpy as np
from scipy.stats import betabinom
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark import benchmark_splits
from skvae.conformal import benjamini_hochberg, conformal_pvalues, conformal_threshold
from skvae.datasets import load_digit_images, load_fashion_mnist

from .._shared import append_jsonl, environment, read_jsonl

LEVELS = (0.01, 0.05, 0.10)
DEFAULT_TABLES = [
    "Fashion-MNIST, one normal class=fmnist_one,fmnist_one_bh",
    "Fashion-MNIST, five normal classes=fmnist_multi",
    "Digits, five normal classes=digits",
]
# predict_with_fdr is tested on random batches of test images, a tenth of
# them anomalies: the FDR is an expectation over such batches.
FDR_BATCH_SIZE = 100
FDR_BATCH_ANOMALIES = 10
FDR_BATCHES = 200


def add_arguments(parser):
    parser.add_argument(
        "--dataset", choices=["fashion-mnist", "digits"], default="fashion-mnist"
    )
    parser.add_argument(
        "--protocol", choices=["one-class", "multi-class"], default="one-class"
    )
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--max-train-per-class", type=int, default=2000)
    parser.add_argument("--anomaly-share", type=float, default=0.05)
    parser.add_argument(
        "--fits",
        choices=["both", "calibrated"],
        default="both",
        help="'calibrated' skips the fit on all rows (same seed: same model)",
    )
    parser.add_argument(
        "--name", help="records file OUT/NAME.jsonl (default: data set, protocol)"
    )


def add_summary_arguments(parser):
    parser.add_argument(
        "--tables",
        nargs="+",
        default=DEFAULT_TABLES,
        metavar="TITLE=NAME[,BH_NAME]",
        help="records in OUT to tabulate; a second name after a comma takes the "
        "BH columns from a --fits calibrated rerun of the same splits",
    )


def records_name(args):
    short = "fmnist" if args.dataset == "fashion-mnist" else "digits"
    protocol = "one" if args.protocol == "one-class" else "multi"
    return args.name or f"{short}_{protocol}"


def load(dataset):
    if dataset == "fashion-mnist":
        train, test = (load_fashion_mnist(subset=s) for s in ("train", "test"))
    else:
        train, test = (load_digit_images(subset=s) for s in ("train", "test"))
    return train.images, train.target, test.images, test.target


def splits(args):
    """The command ``python -m skvae.benchmark``'s splits for these options."""
    argv = ["--dataset", args.dataset, "--protocol", args.protocol]
    argv += [
        "--random-state",
        str(args.seed),
        "--anomaly-share",
        str(args.anomaly_share),
    ]
    if args.protocol == "multi-class":
        argv += ["--splits", str(args.splits)]
        if args.dataset == "fashion-mnist":
            argv += ["--max-train-per-class", str(args.max_train_per_class)]
    return benchmark_splits(argv)


def unseen_training_images(X_train, y_train, X_fit, normal, limit, rng):
    """Normal-class images of the training pool that the split left unused.

    They are exchangeable with the fitted rows by construction (one pool,
    rows drawn at random), unlike the official test set: their false-positive
    rate tests the conformal guarantee itself, free of any train/test shift.
    """
    used = {row.tobytes() for row in X_fit}
    pool = np.flatnonzero(np.isin(y_train, normal))
    unused = [i for i in pool if X_train[i].tobytes() not in used]
    if not unused:
        return None
    return X_train[rng.choice(unused, min(limit, len(unused)), replace=False)]


def threshold_rates(threshold, normal_scores, anomaly_scores):
    """Flagged share of the normal and of the anomalous test samples."""
    return {
        "fpr": float(np.mean(normal_scores < threshold)),
        "tpr": float(np.mean(anomaly_scores < threshold)),
    }


def fdr_batches(is_inlier, rng):
    """Index arrays of random test batches, each with a tenth of anomalies."""
    normal = np.flatnonzero(is_inlier)
    anomalies = np.flatnonzero(~is_inlier)
    n_normal = FDR_BATCH_SIZE - FDR_BATCH_ANOMALIES
    return [
        np.concatenate(
            [
                rng.choice(normal, n_normal, replace=False),
                rng.choice(anomalies, FDR_BATCH_ANOMALIES, replace=False),
            ]
        )
        for _ in range(FDR_BATCHES)
    ]


def fdr_rates(pvalues, is_anomaly, alpha):
    """Mean false-discovery proportion, power and discoveries of BH per batch."""
    fdp, power, discoveries = [], [], []
    for p, anomaly in zip(pvalues, is_anomaly, strict=True):
        rejected = benjamini_hochberg(p, alpha)
        fdp.append((rejected & ~anomaly).sum() / max(rejected.sum(), 1))
        power.append((rejected & anomaly).sum() / anomaly.sum())
        discoveries.append(rejected.sum())
    return {
        "bh_fdr": float(np.mean(fdp)),
        "bh_power": float(np.mean(power)),
        "bh_discoveries": float(np.mean(discoveries)),
    }


def evaluate_fit(detector, X_eval, is_inlier, batches, X_unseen):
    start = time.perf_counter()
    scores = detector.score_samples(X_eval)
    normal, anomalous = scores[is_inlier], scores[~is_inlier]
    unseen = None if X_unseen is None else detector.score_samples(X_unseen)
    calibration = detector.calibration_scores_
    held_out = detector.calibration_fraction is not None
    result = {
        "roc_auc": float(roc_auc_score(~is_inlier, -scores)),
        "n_calibration": len(calibration),
        "auto_fence": threshold_rates(detector.offset_, normal, anomalous),
        "levels": {},
    }
    for alpha in LEVELS:
        threshold = (
            conformal_threshold(calibration, alpha)
            if held_out
            else np.percentile(calibration, 100 * alpha)
        )
        level = threshold_rates(threshold, normal, anomalous)
        if unseen is not None:
            level["fpr_unseen_train"] = float(np.mean(unseen < threshold))
        if held_out:
            pvalues = [conformal_pvalues(calibration, scores[b]) for b in batches]
            anomaly = [~is_inlier[b] for b in batches]
            level.update(fdr_rates(pvalues, anomaly, alpha))
        result["levels"][str(alpha)] = level
    result["score_seconds"] = time.perf_counter() - start
    return result


def run(args):
    out = Path(args.out) / f"{records_name(args)}.jsonl"
    done = {record["split"] for record in read_jsonl(out)}
    X_train, y_train, _, _ = load(args.dataset)
    for split, description, X_fit, X_eval, is_inlier in splits(args):
        if split in done:
            continue
        is_inlier = np.asarray(is_inlier, dtype=bool)
        rng = np.random.RandomState(args.seed + split)
        batches = fdr_batches(is_inlier, rng)
        X_unseen = unseen_training_images(
            X_train, y_train, X_fit, description["normal"], 5000, rng
        )
        record = {
            "split": split,
            **description,
            "n_train": len(X_fit),
            "n_test_normal": int(is_inlier.sum()),
            "n_test_anomalies": int((~is_inlier).sum()),
            "n_unseen_train": 0 if X_unseen is None else len(X_unseen),
        }
        fits = (("calibrated", 0.2), ("training", None))
        for name, fraction in fits[: 1 if args.fits == "calibrated" else 2]:
            start = time.perf_counter()
            detector = VAEOutlierDetector(
                calibration_fraction=fraction, random_state=args.seed
            ).fit(X_fit)
            fit_seconds = time.perf_counter() - start
            record[name] = evaluate_fit(detector, X_eval, is_inlier, batches, X_unseen)
            record[name]["fit_seconds"] = fit_seconds
        record["environment"] = environment()
        append_jsonl(out, record)
        summary = [
            f"{name} AUC {fit['roc_auc']:.4f} FPR@5% {fit['levels']['0.05']['fpr']:.3f}"
            for name, fit in record.items()
            if name in ("calibrated", "training")
        ]
        print(f"split {split}: " + ", ".join(summary), flush=True)


# -- the report ----------------------------------------------------------------

# For each data set and nominal level alpha: the realised false-positive rate
# on held-out normal test data, calibrated (held-out calibration rows,
# conformal threshold) against the training-score threshold; how many splits
# fall inside the conformal 95% band; the detection rate; and the false
# discovery rate and power of Benjamini-Hochberg on the calibrated p-values,
# over random test batches of 100 images, 10 of them anomalies (bound:
# alpha times the normal share, 0.9 alpha).
#
# The band: with ``n`` calibration scores and ``k = floor(alpha (n + 1))``,
# the false-positive rate of one calibration set is Beta(k, n + 1 - k)
# distributed (Vovk 2012), with mean ``k / (n + 1) <= alpha``; the rate
# realised on ``m`` test normals is then Beta-binomial(m, k, n + 1 - k) / m.
# A split falls inside if its rate lies between that law's 2.5% and 97.5%
# quantiles.

REPORT_LEVELS = ("0.01", "0.05", "0.1")


def band(alpha, n_calibration, m):
    """The conformal 95% band of a realised false-positive rate, and its mean."""
    k = math.floor(alpha * (n_calibration + 1) + 1e-9)
    if k == 0:
        return 0.0, 0.0, 0.0
    law = betabinom(m, k, n_calibration + 1 - k)
    return law.ppf(0.025) / m, law.ppf(0.975) / m, k / (n_calibration + 1)


def pct(values):
    return f"{100 * np.mean(values):.2f}"


def spread(values):
    return f"{100 * np.min(values):.1f}-{100 * np.max(values):.1f}"


def table(name, records):
    n_cal = np.mean([r["calibrated"]["n_calibration"] for r in records])
    n_train = np.mean([r["n_train"] for r in records])
    n_test = np.mean([r["n_test_normal"] for r in records])
    lines = [
        f"### {name}: {len(records)} splits, {n_train:.0f} training images on "
        f"average ({n_cal:.0f} held out to calibrate), {n_test:.0f} normal test "
        "images per split",
        "",
        "| alpha | FPR calibrated: mean (range) | conformal mean | splits in 95% band "
        "| FPR unseen training-pool images | FPR training-score threshold "
        "| detection rate calibrated / training "
        "| BH: FDR (bound) | BH power |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level in REPORT_LEVELS:
        alpha = float(level)
        cal = [r["calibrated"]["levels"][level] for r in records]
        train = [r["training"]["levels"][level] for r in records]
        fpr = [c["fpr"] for c in cal]
        inside, means = 0, []
        for record, rate in zip(records, fpr, strict=True):
            low, high, mean = band(
                alpha, record["calibrated"]["n_calibration"], record["n_test_normal"]
            )
            inside += low <= rate <= high
            means.append(mean)
        unseen = [c["fpr_unseen_train"] for c in cal if "fpr_unseen_train" in c]
        unseen_text = f"{pct(unseen)} ({spread(unseen)})" if unseen else "n/a"
        bh = [c for c in cal if "bh_fdr" in c]
        bh_text = "n/a | n/a"
        if bh:
            bh_text = (
                f"{pct([c['bh_fdr'] for c in bh])} ({100 * alpha * 0.9:.2f}) "
                f"| {pct([c['bh_power'] for c in bh])}"
            )
        lines.append(
            f"| {100 * alpha:g}% | {pct(fpr)} ({spread(fpr)}) | {pct(means)} "
            f"| {inside}/{len(records)} | {unseen_text} "
            f"| {pct([t['fpr'] for t in train])} ({spread([t['fpr'] for t in train])})"
            f" | {pct([c['tpr'] for c in cal])} / {pct([t['tpr'] for t in train])} "
            f"| {bh_text} |"
        )
    auto_cal = [r["calibrated"]["auto_fence"]["fpr"] for r in records]
    auto_train = [r["training"]["auto_fence"]["fpr"] for r in records]
    auc_cal = [r["calibrated"]["roc_auc"] for r in records]
    auc_train = [r["training"]["roc_auc"] for r in records]
    lines += [
        "",
        f"`contamination='auto'` (Tukey fence): FPR {pct(auto_cal)} calibrated, "
        f"{pct(auto_train)} from training scores. ROC-AUC: {pct(auc_cal)} "
        f"calibrated (trained on 80%), {pct(auc_train)} trained on all rows.",
        "",
    ]
    return "\n".join(lines)


def merge_bh(records, bh_records):
    """Copy the BH columns of a calibrated-only rerun into ``records``."""
    by_split = {r["split"]: r["calibrated"]["levels"] for r in bh_records}
    for record in records:
        for level, values in by_split.get(record["split"], {}).items():
            bh = {k: v for k, v in values.items() if k.startswith("bh_")}
            record["calibrated"]["levels"][level].update(bh)
    return records


def summarize(args):
    for argument in args.tables:
        title, names = argument.split("=", 1)
        names = names.split(",")
        records = read_jsonl(Path(args.out) / f"{names[0]}.jsonl")
        if len(names) > 1:
            records = merge_bh(
                records, read_jsonl(Path(args.out) / f"{names[1]}.jsonl")
            )
        print(table(title, records))
