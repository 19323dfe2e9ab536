"""The benchmark runner, its experiments, and the docs' citations of results.

Every file under ``benchmarks/results/`` is cited by a page of the docs (the
file itself or a folder holding it), and every ``benchmarks/...`` path a
page cites exists; every ``python -m benchmarks`` command in the docs names
an experiment and action the runner has; experiments use skvae's public API.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")]
)
# A path after "REVISION:" (git show) names a file of another commit.
CITED_PATH = re.compile(r"(?<![:\w/])benchmarks/[\w./*-]*[\w*]")
COMMAND = re.compile(r"python -m benchmarks +(\w+) +(\w+)")
# EXPERIMENT, NAME, OUT: words standing for any one.
PLACEHOLDER = re.compile(r"\b[A-Z]{3,}\b")
# Written by every run beside its results: the provenance, not a table.
RUN_RECORDS = "runs.jsonl"


def _experiments():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.experiments import EXPERIMENTS
    finally:
        sys.path.remove(str(ROOT))
    return EXPERIMENTS


def cited_paths():
    """``benchmarks/...`` paths the pages name, with the page naming each."""
    cited = {}
    for page in PAGES:
        for path in CITED_PATH.findall(page.read_text(encoding="utf-8")):
            if not PLACEHOLDER.search(path):
                cited.setdefault(path.rstrip("."), page.name)
    return cited


def result_files():
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in RESULTS.rglob("*")
        if path.is_file() and path.name != RUN_RECORDS
    )


def test_every_results_file_is_cited():
    # The results folder as a whole cites nothing in particular.
    cited = [c for c in cited_paths() if c.count("/") >= 2]
    patterns = [re.compile(re.escape(c).replace(r"\*", "[^/]*")) for c in cited]

    def is_cited(path):
        # A citation of the file, of a glob matching it, or of a folder above it.
        return any(
            pattern.fullmatch(path) or path.startswith(c.rstrip("/") + "/")
            for c, pattern in zip(cited, patterns, strict=True)
        )

    uncited = [path for path in result_files() if not is_cited(path)]
    assert not uncited, f"results no page cites: {uncited}"


def test_every_cited_path_exists():
    missing = {
        path: page
        for path, page in cited_paths().items()
        if not any(ROOT.glob(path)) and not (ROOT / path).exists()
    }
    assert not missing, f"cited but not in the repository (path: page): {missing}"


def test_documented_commands_name_an_experiment_and_action():
    experiments = _experiments()
    for page in PAGES:
        for experiment, action in COMMAND.findall(page.read_text(encoding="utf-8")):
            if PLACEHOLDER.fullmatch(experiment):
                continue
            assert experiment in experiments, f"{page.name}: no experiment {experiment}"
            assert action in ("run", "summarize"), f"{page.name}: no action {action}"


@pytest.mark.parametrize("name", list(_experiments()))
def test_experiment_modules_use_public_api_only(name):
    source = (ROOT / "benchmarks" / "experiments" / f"{name}.py").read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [alias.name for alias in node.names], []
        else:
            continue
        for module in modules:
            if module.split(".")[0] == "skvae":
                private = [part for part in module.split(".") if part.startswith("_")]
                assert not private, f"{name}: imports {module}"
                assert not [n for n in names if n.startswith("_")], f"{name}: {names}"
    for function in ("add_arguments", "run", "summarize"):
        assert re.search(
            rf"^(def {function}\(|from .* import {function})", source, re.M
        ) or (f"import {function} as {function}" in source), f"{name} lacks {function}"


def test_runner_lists_every_experiment():
    listing = subprocess.run(
        [sys.executable, "-m", "benchmarks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in listing for name in _experiments())


@pytest.mark.parametrize("name", list(_experiments()))
@pytest.mark.parametrize("action", ["run", "summarize"])
def test_every_action_takes_the_shared_options(name, action, capsys):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.__main__ import _parser

        with pytest.raises(SystemExit) as info:
            _parser([name]).parse_args([name, action, "--help"])
    finally:
        sys.path.remove(str(ROOT))
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    assert all(option in help_text for option in ("--threads", "--seed", "--out"))


def test_expected_calibration_error_of_known_predictions():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.experiments.semi_supervised import (
            expected_calibration_error,
            reliability_bins,
        )
    finally:
        sys.path.remove(str(ROOT))
    import numpy as np

    # Two rows at confidence 0.9, one right (gap 0.4); two at 0.6, both
    # right (gap 0.4); a row of NaN probabilities counts as uniform (0.5),
    # wrong (gap 0.5).
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4], [np.nan] * 2])
    bins = reliability_bins(proba, np.zeros(5, int), np.array([0, 1, 0, 0, 1]))
    assert sum(b["count"] for b in bins) == 5
    assert expected_calibration_error(bins) == pytest.approx((4 * 0.4 + 0.5) / 5)
    perfect = reliability_bins(
        np.array([[1.0, 0.0]] * 3), np.zeros(3, int), np.zeros(3)
    )
    assert expected_calibration_error(perfect) == pytest.approx(0.0)


@pytest.mark.parametrize("calls", [1, 3])
def test_best_call_ms_times_each_side_in_runs_of_consecutive_calls(calls):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks._shared import best_call_ms
    finally:
        sys.path.remove(str(ROOT))
    order = []
    functions = {name: (lambda name=name: order.append(name)) for name in "ab"}
    best = best_call_ms(functions, repeats=2, calls=calls)
    assert order == (["a"] * calls + ["b"] * calls) * 2
    assert set(best) == {"a", "b"}
    assert all(0 <= milliseconds < 1e3 for milliseconds in best.values())


def test_semi_supervised_calibration_holds_out_labels_and_scales_probabilities():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.experiments.semi_supervised import calibrated, held_out_labels
    finally:
        sys.path.remove(str(ROOT))
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    y_partial = np.array([-1] * 10 + [0] * 20 + [1] * 5)
    held = held_out_labels(y_partial, 0.2, seed=0)
    assert np.all(y_partial[held] != -1)
    assert np.bincount(y_partial[held]).tolist() == [4, 2]  # 20% of 20; at least 2

    # A model made overconfident (tiny regularisation on noisy labels) gets
    # a temperature above 1 from held-out rows: softer, same predictions.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + rng.normal(scale=1.0, size=400) > 0).astype(int)
    model = LogisticRegression(C=1e4).fit(X[:40] * 20, y[:40])
    scaled = calibrated(model).fit(X[200:] * 20, y[200:])
    before, after = (
        model.predict_proba(X[40:200] * 20),
        scaled.predict_proba(X[40:200] * 20),
    )
    assert np.array_equal(before.argmax(axis=1), after.argmax(axis=1))
    assert after.max(axis=1).mean() < before.max(axis=1).mean()


def test_detector_settings_records_quality_and_seconds_of_one_split():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.experiments.detector_settings import score_split
    finally:
        sys.path.remove(str(ROOT))
    import numpy as np

    rng = np.random.default_rng(0)
    X_fit = rng.normal(size=(120, 6))
    # 40 normal rows, then 10 far from the training rows: labelled 0.
    X_eval = np.vstack([rng.normal(size=(40, 6)), rng.normal(8.0, 1.0, size=(10, 6))])
    is_inlier = np.r_[np.ones(40, int), np.zeros(10, int)]
    record = score_split(
        X_fit, X_eval, is_inlier, {"max_epochs": 3, "score_type": "input_knn"}, 0
    )
    assert record["roc_auc"] == 100.0
    assert record["ap"] == 100.0
    assert (record["n_fit"], record["n_eval"]) == (120, 50)
    assert record["fit_seconds"] >= 0 and record["score_seconds"] >= 0


def test_table_score_parts_scores_flat_digits_as_the_default_scores_them():
    """64 flat features are 8x8 images: every candidate is the detector's default."""
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.experiments.table_score_parts import split_record
    finally:
        sys.path.remove(str(ROOT))
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.metrics import roc_auc_score

    from skvae import VAEOutlierDetector

    X, y = load_digits(return_X_y=True)
    # Close classes, so that the sums with and without the ELBO rank apart.
    normal, other = X[y == 3], X[np.isin(y, (5, 8, 9))]
    X_fit, X_eval = normal[:100], np.vstack([normal[100:140], other[:10]])
    is_inlier = np.r_[np.ones(40, int), np.zeros(10, int)]
    params = {"max_epochs": 2, "latent_dim": 2, "hidden_dims": (4, 8)}
    record = split_record("digits-flat", 0, X_fit, X_eval, is_inlier, 0, params)
    default = VAEOutlierDetector(**params, random_state=0).fit(X_fit)
    expected = 100 * roc_auc_score(is_inlier, default.score_samples(X_eval))
    assert record["images"]
    assert list(record["roc_auc"].values()) == pytest.approx(
        [expected] * len(record["roc_auc"])
    )
