"""Merge several ``python -m skvae.benchmark`` output folders into one table.

Each folder holds the ``results.json`` of one run (e.g. one run per inlier
class, or one for skvae and one for the baselines). Only the classes that
every method finished are kept, so every mean is over the same classes. The
merged markdown table, a JSON without the ROC curves (small enough to
commit) and the ROC plot are written. Example::

    python benchmarks/merge_one_class.py benchmark-results/fmnist-*/class* \\
        --out benchmarks/results/fmnist_one_class --plot docs/images/fmnist_roc.png
"""

import argparse
import json
from pathlib import Path

from skvae.benchmark._report import plot_roc_curves, summary_table

FASHION_MNIST = [
    "T-shirt",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Boot",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--out", required=True, help="path stem for .md and .json")
    parser.add_argument("--plot", default=None)
    args = parser.parse_args(argv)

    records, runs = [], []
    for folder in args.folders:
        path = Path(folder) / "results.json"
        if not path.exists():
            continue
        run = json.loads(path.read_text())
        records += run["records"]
        runs.append(run["metadata"])
    methods = {r["method"] for r in records}
    done = {
        c
        for c in {r["inlier_class"] for r in records}
        if {r["method"] for r in records if r["inlier_class"] == c} == methods
    }
    records = [r for r in records if r["inlier_class"] in done]
    table = summary_table(records, FASHION_MNIST)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(table + "\n")
    small = [{k: v for k, v in r.items() if k not in ("fpr", "tpr")} for r in records]
    out.with_suffix(".json").write_text(
        json.dumps({"runs": runs, "classes": sorted(done), "records": small}, indent=1)
        + "\n"
    )
    if args.plot:
        plot_roc_curves(records, args.plot, FASHION_MNIST)


if __name__ == "__main__":
    main()
