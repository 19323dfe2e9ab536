"""Tables of benchmarks/thresholds.py's records, as Markdown.

For each data set and nominal level alpha: the realised false-positive rate
on held-out normal test data, calibrated (held-out calibration rows,
conformal threshold) against the training-score threshold; how many splits
fall inside the conformal 95% band; the detection rate; and the false
discovery rate and power of Benjamini-Hochberg on the calibrated p-values,
over random test batches of 100 images, 10 of them anomalies (bound:
alpha times the normal share, 0.9 alpha).

The band: with ``n`` calibration scores and ``k = floor(alpha (n + 1))``,
the false-positive rate of one calibration set is Beta(k, n + 1 - k)
distributed (Vovk 2012), with mean ``k / (n + 1) <= alpha``; the rate
realised on ``m`` test normals is then Beta-binomial(m, k, n + 1 - k) / m.
A split falls inside if its rate lies between that law's 2.5% and 97.5%
quantiles.

    python benchmarks/summarize_thresholds.py \\
        "Fashion-MNIST one class"=benchmark-results/thresholds/fmnist_one.jsonl ...

A second path after a comma (``name=records.jsonl,bh.jsonl``) takes the BH
columns from a ``--fits calibrated`` rerun of the same splits.
"""

import json
import math
import sys

import numpy as np
from scipy.stats import betabinom

LEVELS = ("0.01", "0.05", "0.1")


def load(path):
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


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
    for level in LEVELS:
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


def main(argv):
    for argument in argv:
        name, paths = argument.split("=", 1)
        paths = paths.split(",")
        records = load(paths[0])
        if len(paths) > 1:
            records = merge_bh(records, load(paths[1]))
        print(table(name, records))


if __name__ == "__main__":
    main(sys.argv[1:])
