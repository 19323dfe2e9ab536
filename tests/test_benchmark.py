import json

import numpy as np
import pytest

from skvae.benchmark import run_benchmark
from skvae.benchmark._command import main
from skvae.benchmark._methods import METHODS
from skvae.benchmark._report import summary_table


@pytest.mark.slow
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
    expected = {"IsolationForest", "skvae[auto]", "skvae[orientation]"}
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


def test_roc_figure_draws_records_stored_without_curves(tmp_path):
    """Records read back with their fpr/tpr stripped must not crash the plot."""
    from skvae.benchmark._report import plot_roc_curves

    records = [
        {"method": "skvae", "split": 0, "normal": [0], "roc_auc": 0.9},
        {
            "method": "LOF",
            "split": 0,
            "normal": [0],
            "roc_auc": 0.8,
            "fpr": [0.0, 1.0],
            "tpr": [0.0, 1.0],
        },
    ]
    plot_roc_curves(records, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").stat().st_size > 0


@pytest.mark.parametrize(
    "dataset, synthetic, n_features",
    [("wine", None, 13), ("digits-flat", None, 64), ("diabetes", "clustered", 10)],
)
def test_command_runs_tables(dataset, synthetic, n_features, tmp_path, monkeypatch):
    seen, run = [], METHODS["isolation-forest"]

    def isolation_forest(X_train, X_test, **kwargs):
        seen.append((X_train, X_test))
        return run(X_train, X_test, **kwargs)

    monkeypatch.setitem(METHODS, "isolation-forest", isolation_forest)
    argv = ["--dataset", dataset, "--splits", "2", "--anomaly-share", "0.1"]
    argv += ["--synthetic", synthetic] if synthetic else []
    argv += ["--methods", "isolation-forest", "--output-dir", str(tmp_path)]
    mean_auc = main(argv)
    assert 0.6 < mean_auc <= 1.0
    records = json.loads((tmp_path / "results.json").read_text())["records"]
    assert [r["split"] for r in records] == [0, 1]
    for X_train, X_test in seen:
        assert X_train.shape[1] == X_test.shape[1] == n_features
        # Standardised by the training rows.
        np.testing.assert_allclose(X_train.mean(0), 0, atol=1e-5)
    if synthetic:
        assert {r["synthetic"] for r in records} == {synthetic}


def test_table_without_anomaly_class_needs_synthetic(tmp_path):
    with pytest.raises(SystemExit, match="pass --synthetic"):
        main(
            ["--dataset", "diabetes", "--methods", "lof", "--output-dir", str(tmp_path)]
        )


def test_a_failing_method_is_recorded_as_nan_and_the_run_goes_on(monkeypatch):
    def broken(X_train, X_test, **kwargs):
        raise ValueError("too few rows for a batch")

    monkeypatch.setitem(METHODS, "pyod-vae", broken)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = np.r_[np.zeros(40, int), np.ones(20, int)]
    with pytest.warns(RuntimeWarning, match="pyod-vae failed on split 0 .*too few"):
        records = run_benchmark(
            X, y, X, y, classes=[0], methods=["pyod-vae", "isolation-forest"]
        )
    by_method = {r["method"]: r for r in records}
    assert np.isnan(by_method["pyod-vae"]["roc_auc"])
    assert "too few rows" in by_method["pyod-vae"]["error"]
    assert by_method["IsolationForest"]["roc_auc"] > 0.4
