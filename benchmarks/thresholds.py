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

Records go to ``--out`` (JSON lines, one per split, resumed on restart); the
report is ``benchmarks/summarize_thresholds.py``.

    OMP_NUM_THREADS=1 python benchmarks/thresholds.py --protocol one-class \\
        --dataset fashion-mnist --out benchmark-results/thresholds/fmnist_one.jsonl
    OMP_NUM_THREADS=1 python benchmarks/thresholds.py --protocol multi-class \\
        --dataset fashion-mnist --splits 4 \\
        --out benchmark-results/thresholds/fmnist_multi.jsonl
    OMP_NUM_THREADS=1 python benchmarks/thresholds.py --protocol multi-class \\
        --dataset digits --splits 20 --out benchmark-results/thresholds/digits.jsonl
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _environment import environment
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.benchmark._run import multi_class_splits, one_class_splits
from skvae.conformal import benjamini_hochberg, conformal_pvalues, conformal_threshold
from skvae.datasets import load_digit_images, load_fashion_mnist

LEVELS = (0.01, 0.05, 0.10)
# predict_with_fdr is tested on random batches of test images, a tenth of
# them anomalies: the FDR is an expectation over such batches.
FDR_BATCH_SIZE = 100
FDR_BATCH_ANOMALIES = 10
FDR_BATCHES = 200


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fashion-mnist", "digits"])
    parser.add_argument("--protocol", choices=["one-class", "multi-class"])
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--max-train-per-class", type=int, default=2000)
    parser.add_argument("--anomaly-share", type=float, default=0.05)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--fits",
        choices=["both", "calibrated"],
        default="both",
        help="'calibrated' skips the fit on all rows (same seed: same model)",
    )
    parser.add_argument("--out", type=Path, required=True)
    return parser.parse_args()


def load(dataset):
    if dataset == "fashion-mnist":
        train, test = (load_fashion_mnist(subset=s) for s in ("train", "test"))
    else:
        train, test = (load_digit_images(subset=s) for s in ("train", "test"))
    return train.images, train.target, test.images, test.target


def splits(args, X_train, y_train, X_test, y_test):
    if args.protocol == "one-class":
        classes = sorted(set(y_train.tolist()))
        return one_class_splits(X_train, y_train, X_test, y_test, classes=classes)
    fmnist = args.dataset == "fashion-mnist"
    max_per_class = args.max_train_per_class if fmnist else None
    return multi_class_splits(
        X_train,
        y_train,
        X_test,
        y_test,
        n_splits=args.splits,
        anomaly_share=args.anomaly_share,
        max_train_per_class=max_per_class,
        random_state=args.random_state,
    )


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


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if args.out.exists():
        done = {json.loads(line)["split"] for line in args.out.read_text().splitlines()}
    data = load(args.dataset)
    X_train, y_train = data[0], data[1]
    for split, description, X_fit, X_eval, is_inlier in splits(args, *data):
        if split in done:
            continue
        is_inlier = np.asarray(is_inlier, dtype=bool)
        rng = np.random.RandomState(args.random_state + split)
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
                calibration_fraction=fraction, random_state=args.random_state
            ).fit(X_fit)
            fit_seconds = time.perf_counter() - start
            record[name] = evaluate_fit(detector, X_eval, is_inlier, batches, X_unseen)
            record[name]["fit_seconds"] = fit_seconds
        record["environment"] = environment(args)
        with args.out.open("a") as file:
            file.write(json.dumps(record) + "\n")
        summary = [
            f"{name} AUC {fit['roc_auc']:.4f} FPR@5% {fit['levels']['0.05']['fpr']:.3f}"
            for name, fit in record.items()
            if name in ("calibrated", "training")
        ]
        print(f"split {split}: " + ", ".join(summary), flush=True)


if __name__ == "__main__":
    main()
