import json

import numpy as np
import pytest

from skvae.benchmark import run_benchmark
from skvae.benchmark.__main__ import main
from skvae.benchmark._report import summary_table


def test_command_writes_table_json_and_plot(tmp_path, capsys):
    mean_auc = main(
        [
            "--dataset",
            "digits",
            "--classes",
            "0",
            "1",
            "--epochs",
            "2",
            "--methods",
            "skvae",
            "skvae-scores",
            "isolation-forest",
            "lof",
            "--train-contamination",
            "0.1",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert 0.5 < mean_auc <= 1.0
    table = (tmp_path / "results.md").read_text()
    assert "| IsolationForest |" in table
    assert "| LOF |" in table
    assert "| skvae[latent_knn] |" in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metadata"]["dataset"] == "digits"
    methods = {r["method"] for r in results["records"]}
    expected = {"IsolationForest", "skvae[auto]", "skvae[transformation]"}
    assert (
        expected | {"skvae-scores[iwae]", "skvae-scores[elbo_mahalanobis]"} <= methods
    )
    assert {r["inlier_class"] for r in results["records"]} == {0, 1}
    assert {r["train_contamination"] for r in results["records"]} == {0.1}
    assert (tmp_path / "roc.png").stat().st_size > 0
    assert "results.md" in capsys.readouterr().out


def test_pyod_methods_report_normality_scores():
    """PyOD scores are flipped, so a perfect detector gets AUC 1, not 0."""
    pytest.importorskip("pyod")
    rng = np.random.RandomState(0)
    X_train = rng.normal(size=(200, 4)).astype(np.float32)
    y_train = np.zeros(200, dtype=int)
    X_test = np.r_[rng.normal(size=(20, 4)), rng.normal(8, 1, size=(20, 4))]
    y_test = np.r_[np.zeros(20, int), np.ones(20, int)]
    X_train = np.r_[X_train, rng.normal(8, 1, size=(5, 4))]
    y_train = np.r_[y_train, np.ones(5, int)]
    records = run_benchmark(
        X_train,
        y_train,
        X_test.astype(np.float32),
        y_test,
        classes=[0],
        methods=["pyod-ocsvm"],
    )
    assert records[0]["roc_auc"] > 0.95


def test_summary_table_sorts_by_mean_auc():
    records = [
        {
            "method": m,
            "split": c,
            "inlier_class": c,
            "roc_auc": auc,
            "average_precision": auc / 2,
            "fit_seconds": 1.0,
            "score_seconds": 0.5,
        }
        for m, c, auc in [("a", 0, 0.6), ("a", 1, 0.8), ("b", 0, 0.9), ("b", 1, 0.9)]
    ]
    lines = summary_table(records, class_names=["zero", "one"]).splitlines()
    assert lines[0] == "| method | zero | one | mean | mean AP | fit s | score s |"
    assert lines[2].startswith("| b | 90.0 | 90.0 | **90.00** | 45.00 | 2 | 1.0 |")
    assert lines[3].startswith("| a | 60.0 | 80.0 | **70.00** |")


@pytest.mark.parametrize("n_splits, min_width", [(1, 600), (3, 900), (10, 1700)])
def test_roc_figure_leaves_room_for_its_title(tmp_path, n_splits, min_width):
    from matplotlib.image import imread

    from skvae.benchmark._report import plot_roc_curves

    fpr = np.linspace(0, 1, 20)
    records = [
        {
            "method": method,
            "method_key": method,
            "split": split,
            "normal": [split],
            "inlier_class": split,
            "roc_auc": auc,
            "fpr": list(fpr),
            "tpr": list(fpr ** (1 - auc)),
        }
        for split in range(n_splits)
        for method, auc in [("skvae", 0.95), ("IsolationForest", 0.9)]
    ]
    plot_roc_curves(records, tmp_path / "roc.png")
    height, width = imread(tmp_path / "roc.png").shape[:2]
    # The figure's title is about 4 inches wide at 110 dpi.
    assert width >= min_width
    assert height >= 400
