"""Tables and the figure-6 plot from benchmarks/grad2vae.py's JSON lines.

    cd benchmarks
    python summarize_grad2vae.py results/grad2vae/one_class_*.jsonl \\
        --out results/grad2vae.md --figure ../docs/images/grad2vae/curves.png
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from grad2vae import CLASS_NAMES, PAPER_AUC  # noqa: E402

CURVE_CLASSES = (6, 0, 8)  # Shirt first: the class the paper's number is hardest on


def load(paths):
    rows = [json.loads(line) for path in paths for line in Path(path).open()]
    return {(r["class"], r["model"]): r for r in rows}


def table(results):
    classes = sorted({c for c, _ in results})
    columns = [
        ("Grad2VAE ELBO", "grad2vae", "auc_elbo"),
        ("Grad2VAE recon.", "grad2vae", "auc_reconstruction"),
        ("Grad2VAE auto", "grad2vae", "auc_auto"),
        ("vanilla ELBO", "vanilla", "auc_elbo"),
        ("vanilla auto", "vanilla", "auc_auto"),
        ("skvae default", "default", "auc_auto"),
        ("Grad2VAE pixel AUC", "grad2vae", "pixel_auc"),
        ("default pixel AUC", "default", "pixel_auc"),
    ]
    head = "| class | paper Grad2VAE | " + " | ".join(c[0] for c in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 2)]
    sums = np.zeros(len(columns) + 1)
    for c in classes:
        values = [PAPER_AUC[c]] + [results[(c, m)][k] for _, m, k in columns]
        sums += values
        lines.append(
            f"| {CLASS_NAMES[c]} | " + " | ".join(f"{v:.2f}" for v in values) + " |"
        )
    mean = sums / len(classes)
    lines.append("| **mean** | " + " | ".join(f"**{v:.2f}**" for v in mean) + " |")
    return "\n".join(lines)


def cost_table(results, cost_path):
    lines = ["| model | s/epoch in the protocol run (median) | fit (s) |"]
    lines.append("|---|---|---|")
    for model in ("grad2vae", "vanilla", "default"):
        rows = [r for (c, m), r in results.items() if m == model]
        epoch = np.median([r["seconds_per_epoch"] for r in rows])
        fit = np.median([r["fit_seconds"] for r in rows])
        lines.append(f"| {model} | {epoch:.1f} | {fit:.0f} |")
    if cost_path.exists():
        cost = json.loads(cost_path.read_text())
        lines += ["", "| network | s/step (best of 3) | s/epoch of 6000 | x exact |"]
        lines.append("|---|---|---|---|")
        for name, seconds in cost["seconds_per_step"].items():
            lines.append(
                f"| {name} | {seconds:.3f} | "
                f"{cost['seconds_per_epoch_6000'][name]:.1f} | "
                f"{cost['ratio_to_exact'][name]:.2f} |"
            )
    return "\n".join(lines)


def curve_table(results):
    lines = ["| class | model | " + " | ".join(f"ep {e}" for e in (1, 2, 5, 10, 24))]
    lines[0] += " |"
    lines.append("|---|---|" + "---|" * 5)
    for c in CURVE_CLASSES:
        for model in ("grad2vae", "vanilla"):
            curve = results[(c, model)]["test_auc_elbo"]
            picks = [curve[min(e, len(curve)) - 1] for e in (1, 2, 5, 10, 24)]
            lines.append(
                f"| {CLASS_NAMES[c]} | {model} | "
                + " | ".join(f"{v:.1f}" for v in picks)
                + " |"
            )
    return "\n".join(lines)


def figure(results, path):
    fig, axes = plt.subplots(1, len(CURVE_CLASSES), figsize=(12, 3.6), sharey=False)
    for ax, c in zip(axes, CURVE_CLASSES, strict=True):
        for model, style in (("grad2vae", "-"), ("vanilla", "--")):
            curve = results[(c, model)]["test_auc_elbo"]
            ax.plot(range(1, len(curve) + 1), curve, style, label=model)
        ax.axhline(PAPER_AUC[c], color="grey", lw=0.8, ls=":", label="paper (table 1)")
        ax.set_title(f"{CLASS_NAMES[c]} (normal class)")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test ROC-AUC of the ELBO (%)")
    axes[0].legend(loc="center right")
    fig.suptitle(
        "One-class Fashion-MNIST: test AUC after each epoch (2,000 test images)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out", default="benchmarks/results/grad2vae.md")
    parser.add_argument("--figure", default="docs/images/grad2vae/curves.png")
    args = parser.parse_args(argv)
    results = load(args.results)
    cost_path = Path(args.results[0]).with_name("cost.json")
    text = "\n\n".join(
        [
            "## One-class ROC-AUC (%), full test set",
            table(results),
            "## Figure 6: test ROC-AUC of the ELBO after epoch e (2,000 test images)",
            curve_table(results),
            "## Cost",
            cost_table(results, cost_path),
        ]
    )
    Path(args.out).write_text(text + "\n")
    figure(results, Path(args.figure))
    print(text)


if __name__ == "__main__":
    main()
