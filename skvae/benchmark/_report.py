"""Turn benchmark records into a markdown table, JSON and a ROC plot."""

import json

import numpy as np


def summary_table(records, class_names=None):
    """Markdown table: ROC-AUC (%) per split, mean ROC-AUC and AP, seconds.

    One-class splits are labelled by their class (``class_names`` if given),
    others by their number. AP is the average precision (%) with the
    anomalies as the positive class. Methods are sorted by mean ROC-AUC, best
    first. Seconds are totals over the splits.
    """
    splits = sorted({r["split"] for r in records})
    methods = _methods_by_mean_auc(records)
    header = ["method", *_split_labels(records, splits, class_names)]
    header += ["mean", "mean AP", "fit s", "score s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method in methods:
        rows = {r["split"]: r for r in records if r["method"] == method}
        aucs = [100 * rows[s]["roc_auc"] if s in rows else np.nan for s in splits]
        aps = [100 * r.get("average_precision", np.nan) for r in rows.values()]
        cells = [f"{auc:.1f}" for auc in aucs]
        fit = sum(r["fit_seconds"] for r in rows.values())
        score = sum(r["score_seconds"] for r in rows.values())
        cells += [f"**{np.mean(aucs):.2f}**", f"{np.mean(aps):.2f}"]
        cells += [f"{fit:.0f}", f"{score:.1f}"]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines)


def _split_labels(records, splits, class_names):
    one_class = all("inlier_class" in r for r in records)
    if not one_class:
        return [f"split {s}" for s in splits]
    return [str(s) if class_names is None else class_names[s] for s in splits]


def _panel_title(record, label):
    if "inlier_class" in record:
        return f"inlier: {label}"
    normal = ", ".join(str(c) for c in record.get("normal", []))
    return f"{label}: normal {normal}" if normal else label


def _methods_by_mean_auc(records):
    means = {}
    for method in dict.fromkeys(r["method"] for r in records):
        means[method] = np.mean(
            [r["roc_auc"] for r in records if r["method"] == method]
        )
    return sorted(means, key=lambda m: -np.nan_to_num(means[m], nan=-1.0))


def write_json(records, path, **metadata):
    """Write the records and the run's metadata (command, machine) as JSON."""
    with open(path, "w") as f:
        json.dump({"metadata": metadata, "records": records}, f, indent=1)


def plot_roc_curves(records, path, class_names=None):
    """One panel per inlier class with every method's ROC curve; saves a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted({r["split"] for r in records})
    methods = _methods_by_mean_auc(records)
    labels = dict(
        zip(classes, _split_labels(records, classes, class_names), strict=True)
    )
    n_cols = min(5, len(classes))
    n_rows = int(np.ceil(len(classes) / n_cols))
    # A lone panel gets room for its legend and the figure's title.
    panel_inches = 3.2 if n_cols > 1 else 5.0
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(max(panel_inches * n_cols, 6.0), panel_inches * n_rows + 0.8),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    colors = plt.get_cmap("tab10")
    for ax, inlier_class in zip(axes.flat, classes, strict=False):
        for i, method in enumerate(methods):
            (r,) = [
                r
                for r in records
                if r["method"] == method and r["split"] == inlier_class
            ]
            # Records read back without their curves (stripped to keep
            # results small) still get their legend entry and ROC-AUC.
            ax.plot(
                r.get("fpr", []),
                r.get("tpr", []),
                color=colors(i % 10),
                linestyle="-" if i < 10 else "--",  # tab10 repeats after 10
                lw=1.2,
                label=f"{method} ({100 * r['roc_auc']:.1f})",
            )
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
        ax.set_title(_panel_title(r, labels[inlier_class]), fontsize=10)
        ax.legend(fontsize=6, loc="lower right")
    for ax in axes.flat[len(classes) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("false positive rate")
    for ax in axes[:, 0]:
        ax.set_ylabel("true positive rate")
    fig.suptitle("ROC curves (ROC-AUC % in the legend)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
