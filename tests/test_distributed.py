"""The paths past one machine, on loopback: Dask and data-parallel training."""

import multiprocessing
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae.distributed import fit_data_parallel, map_blocks
from skvae.distributed._data_parallel import _read_shared_data, _write_shared_data

from .conftest import TINY_CONV

pytestmark = [pytest.mark.compat, pytest.mark.multiprocess]

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

TINY_FAST = {**TINY_CONV, "max_epochs": 10}


@pytest.fixture(scope="module")
def dask_client():
    """A two-worker LocalCluster on loopback, one thread per worker process."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def fitted(digits):
    images, y = digits
    X = images[:300]
    labels = np.where(np.arange(300) % 3 == 0, y[:300], -1)
    return {
        "detector": VAEOutlierDetector(**TINY_FAST, random_state=0).fit(X),
        "transformer": VAETransformer(**TINY_FAST, random_state=0).fit(X),
        "classifier": VAEClassifier(**TINY_FAST, random_state=0).fit(X, labels),
    }


@pytest.mark.parametrize(
    "name, method, row_shape",
    [
        ("detector", "decision_function", ()),
        ("detector", "score_samples", ()),
        ("detector", "predict", ()),
        ("transformer", "transform", (4,)),
        ("classifier", "predict_proba", (10,)),
        ("classifier", "predict", ()),
    ],
)
def test_map_blocks_equals_in_memory_call(
    dask_client, fitted, digits, name, method, row_shape
):
    images = digits[0][300:800]
    # Uneven row chunks, and a split image axis that map_blocks must merge.
    X = da.from_array(images, chunks=((137, 200, 163), (4, 4), (8,)))
    estimator = fitted[name]
    lazy = map_blocks(estimator, X, method)
    assert lazy.shape == (len(images), *row_shape)
    assert lazy.chunks[0] == (137, 200, 163)
    expected = getattr(estimator, method)(images)
    np.testing.assert_array_equal(lazy.compute(), expected)


def test_map_blocks_inverse_transform_restores_image_shape(dask_client, fitted):
    transformer = fitted["transformer"]
    Z = np.random.RandomState(0).normal(size=(90, 4)).astype(np.float32)
    lazy = map_blocks(transformer, da.from_array(Z, chunks=40), "inverse_transform")
    assert lazy.shape == (90, 8, 8)
    np.testing.assert_array_equal(lazy.compute(), transformer.inverse_transform(Z))


@pytest.mark.parametrize(
    "method, X, match",
    [
        ("fit", da.zeros((4, 8, 8)), "cannot be mapped block by block"),
        ("decision_function", np.zeros((4, 8, 8)), "must be a dask.array.Array"),
    ],
)
def test_map_blocks_rejects_bad_calls(fitted, method, X, match):
    with pytest.raises(ValueError, match=match):
        map_blocks(fitted["detector"], X, method)


def test_grid_search_on_joblib_dask_backend_matches_serial(dask_client, digits):
    X = digits[0][:240]
    search = GridSearchCV(
        VAETransformer(**{**TINY_CONV, "max_epochs": 5}, random_state=0),
        {"latent_dim": [2, 4]},
        cv=2,
    )
    serial = clone(search).fit(X)
    with joblib.parallel_backend("dask"):
        on_dask = clone(search).set_params(n_jobs=-1).fit(X)
    np.testing.assert_allclose(
        on_dask.cv_results_["mean_test_score"],
        serial.cv_results_["mean_test_score"],
        rtol=1e-6,
    )
    assert on_dask.best_params_ == serial.best_params_


@pytest.fixture(scope="module")
def two_process_fit(digits_one_class, tmp_path_factory):
    X_train, _, _ = digits_one_class
    # From a memmap: the workers map its file themselves (the other
    # data-parallel fits pass arrays, which go through a written copy).
    path = tmp_path_factory.mktemp("memmap") / "train.npy"
    np.save(path, X_train)
    detector = VAEOutlierDetector(**TINY_CONV, random_state=0)
    fitted = fit_data_parallel(detector, np.load(path, mmap_mode="r"), n_processes=2)
    return detector, fitted


def test_data_parallel_fit_matches_single_process_quality(
    two_process_fit, digits_one_class, fitted_conv_detector
):
    _, X_test, is_inlier = digits_one_class
    unfitted, parallel = two_process_fit
    single = fitted_conv_detector  # the same parameters, fitted in one process
    auc_single = roc_auc_score(is_inlier, single.score_samples(X_test))
    auc_parallel = roc_auc_score(is_inlier, parallel.score_samples(X_test))
    assert auc_parallel > 0.95
    assert auc_parallel == pytest.approx(auc_single, abs=0.02)
    # Held-out inliers: a mean ELBO per image no more than 5% below.
    inliers = X_test[is_inlier == 1]
    elbo_single = single.score(inliers)
    assert parallel.score(inliers) >= elbo_single - 0.05 * abs(elbo_single)
    assert not hasattr(unfitted, "net_")


def test_data_parallel_fit_splits_each_global_batch(two_process_fit, digits_one_class):
    X_train, _, _ = digits_one_class
    _, parallel = two_process_fit
    history = parallel.history_
    assert len(history) == TINY_CONV["max_epochs"]
    # 120 images less 24 held out to calibrate, global batch 32 = 16 per
    # process over a 48-image shard: the same 3 optimizer steps per epoch as
    # one process.
    batch_sizes = [batch["train_batch_size"] for batch in history[-1, "batches"]]
    assert batch_sizes == [16, 16, 16]
    # The model trains on; its module is the plain VAE, not the DDP wrapper.
    assert type(parallel.net_.module_).__name__ != "DistributedDataParallel"
    assert parallel.predict(X_train).shape == (len(X_train),)


def _saved_images(tmp_path, mode="r"):
    images = np.arange(200 * 8 * 8, dtype=np.float32).reshape(200, 8, 8)
    np.save(tmp_path / "images.npy", images)
    return images, np.load(tmp_path / "images.npy", mmap_mode=mode)


@pytest.mark.parametrize(
    "view",
    [
        lambda X: X,
        lambda X: X[37:150],
        lambda X: np.asarray(X[5:60]),
        lambda X: X[10:20].T,  # Fortran-ordered
        lambda X: X[3].reshape(-1),
    ],
    ids=["whole", "rows", "asarray", "transposed", "reshaped"],
)
def test_a_memmap_reaches_the_workers_from_its_own_file(tmp_path, view):
    images, mapped = _saved_images(tmp_path)
    X, y = view(mapped), np.arange(3)
    folder = tmp_path / "shared"
    folder.mkdir()
    data_file = _write_shared_data(X, y, folder)
    assert data_file.stat().st_size < 2000  # where the rows lie, not the rows
    X_read, y_read = _read_shared_data(data_file)
    assert isinstance(X_read, np.memmap) and X_read.filename == mapped.filename
    np.testing.assert_array_equal(X_read, view(images))
    np.testing.assert_array_equal(y_read, y)


@pytest.mark.parametrize(
    "make_X",
    [
        lambda tmp_path: _saved_images(tmp_path)[1][::2],  # strided view
        lambda tmp_path: _saved_images(tmp_path, mode="c")[1],  # copy-on-write
        lambda tmp_path: _saved_images(tmp_path)[0],  # in memory
    ],
    ids=["strided", "copy-on-write", "in-memory"],
)
def test_other_data_reaches_the_workers_as_one_written_copy(tmp_path, make_X):
    X = make_X(tmp_path)
    if isinstance(X, np.memmap) and X.mode == "c":
        X[0, 0, 0] = -1.0  # in this process's pages only, not in the file
    folder = tmp_path / "shared"
    folder.mkdir()
    data_file = _write_shared_data(X, None, folder)
    assert data_file.stat().st_size >= X.nbytes
    X_read, y_read = _read_shared_data(data_file)
    np.testing.assert_array_equal(X_read, X)
    assert y_read is None


@pytest.mark.parametrize("n_processes", [0, 1.5, "2"])
def test_fit_data_parallel_rejects_bad_process_counts(n_processes):
    with pytest.raises(ValueError, match="n_processes must be a positive int"):
        fit_data_parallel(
            VAEOutlierDetector(), np.zeros((4, 8, 8)), n_processes=n_processes
        )


def test_fit_data_parallel_refuses_to_run_in_a_starting_worker(monkeypatch):
    monkeypatch.setattr(
        multiprocessing.current_process(), "_inheriting", True, raising=False
    )
    with pytest.raises(RuntimeError, match="if __name__ == .__main__.:"):
        fit_data_parallel(VAEOutlierDetector(), np.zeros((4, 8, 8)))


def test_a_script_without_a_main_guard_fails_instead_of_hanging(tmp_path):
    # Each worker imports the script and calls fit_data_parallel again. The
    # data (100 KB, more than a pipe holds) once went through the launch
    # pipe, whose write then blocked for good when a worker died first.
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            from sklearn.datasets import load_digits
            from skvae import VAEOutlierDetector
            from skvae.distributed import fit_data_parallel

            X = load_digits().images[:200] / 16.0
            fit_data_parallel(VAEOutlierDetector(max_epochs=1), X, n_processes=2)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0
    assert 'if __name__ == "__main__":' in result.stderr


def test_data_parallel_divergence_raises_like_one_process(digits_one_class):
    # Every process stops at the same batch (they agree on the loss being
    # finite), so the run ends with the usual error instead of hanging.
    X_train, _, _ = digits_one_class
    detector = VAEOutlierDetector(**TINY_CONV, lr=1e4, random_state=0)
    with pytest.raises(ValueError, match=r"diverged.*Lower lr \(now 10000.0\)"):
        fit_data_parallel(detector, X_train * 1e3, n_processes=2)


@pytest.mark.parametrize("head_mode", ["joint", "frozen"])
def test_data_parallel_classifier_matches_single_process(digits, head_mode):
    images, y = digits
    labels = np.where(np.arange(400) % 4 == 0, y[:400], -1)  # 100 labels
    # lr=1e-2: 20 epochs reach 0.67 / 0.70 single-process accuracy here (40 at
    # the default lr: 0.54 / 0.66), so the launch overhead dominates.
    params = {**TINY_CONV, "max_epochs": 20, "lr": 1e-2}
    classifier = VAEClassifier(**params, head_mode=head_mode, random_state=0)
    parallel = fit_data_parallel(classifier, images[:400], labels, n_processes=2)
    single = clone(classifier).fit(images[:400], labels)
    np.testing.assert_array_equal(parallel.classes_, np.arange(10))
    X_test, y_test = images[400:700], y[400:700]
    accuracy = parallel.score(X_test, y_test)
    assert accuracy > 0.5  # 10 classes: chance is 0.1
    assert accuracy >= single.score(X_test, y_test) - 0.1
