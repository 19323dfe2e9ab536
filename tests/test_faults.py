"""Faults and load: all-or-nothing fit, Ctrl-C, atomic saves, damaged files, threads."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae._base import _BaseVAE
from skvae.terms import StandardizedSum

from .conftest import TINY_CONV, TINY_MLP

pytestmark = pytest.mark.compat


class Injected(Exception):
    """The failure a test injects."""


def _fail_at(monkeypatch, stage, error):
    """Make ``fit`` raise ``error`` at ``stage``."""

    def fail(*args, **kwargs):
        raise error

    if stage == "vae training":
        monkeypatch.setattr(_BaseVAE, "_fit_vae", fail)
    elif stage == "classifier training":
        monkeypatch.setattr(VAEOutlierDetector, "_fit_transformation_net", fail)
    elif stage == "score fit":
        monkeypatch.setattr(StandardizedSum, "fit_score", fail)
    elif stage == "calibration":
        monkeypatch.setattr(VAEOutlierDetector, "_score_outputs", fail)
    elif stage == "threshold":
        monkeypatch.setattr(VAEOutlierDetector, "_threshold", fail)


STAGES = [
    "vae training",
    "classifier training",
    "score fit",
    "calibration",
    "threshold",
]
ERRORS = [Injected("boom"), KeyboardInterrupt()]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("error", ERRORS, ids=["exception", "ctrl-c"])
def test_failed_first_fit_leaves_an_unfitted_detector(
    stage, error, monkeypatch, digits_one_class
):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    _fail_at(monkeypatch, stage, error)
    with pytest.raises(type(error)):
        det.fit(X_train)
    with pytest.raises(NotFittedError):
        check_is_fitted(det)
    assert vars(det) == vars(VAEOutlierDetector(**det.get_params()))


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("error", ERRORS, ids=["exception", "ctrl-c"])
def test_failed_refit_keeps_the_previous_model_whole(
    stage, error, monkeypatch, digits_one_class
):
    X_train, X_test, _ = digits_one_class
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    det.fit(X_train)
    fitted = {name: value for name, value in vars(det).items() if name.endswith("_")}
    scores, offset = det.score_samples(X_test), det.offset_
    # A refit on other data, with other settings, fails part way.
    det.set_params(random_state=1, contamination=0.2, warm_start=True)
    _fail_at(monkeypatch, stage, error)
    with pytest.raises(type(error)):
        det.fit(X_train[::-1][:100])
    monkeypatch.undo()
    now = {name: value for name, value in vars(det).items() if name.endswith("_")}
    assert now.keys() == fitted.keys()
    assert all(now[name] is value for name, value in fitted.items())
    assert det.offset_ == offset
    np.testing.assert_array_equal(det.score_samples(X_test), scores)


@pytest.mark.parametrize("Estimator", [VAETransformer, VAEClassifier])
def test_other_estimators_fit_all_or_nothing(Estimator, monkeypatch, digits):
    images, y = digits
    est = Estimator(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    est.fit(images[:100], y[:100])
    before = pickle.dumps(est)
    _fail_at(monkeypatch, "vae training", Injected())
    with pytest.raises(Injected):
        est.fit(images[100:200], y[100:200])
    assert pickle.dumps(est) == before


# -- Ctrl-C during training ---------------------------------------------------


def _interrupt_training_at_epoch_3(monkeypatch, blobs_with_outliers):
    """Make every detector network's training raise Ctrl-C after epoch 3."""
    from skorch.callbacks import Callback

    class InterruptAtEpoch3(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 3:
                raise KeyboardInterrupt

    build_net = VAEOutlierDetector._build_net

    def build_with_interrupt(self, spec, seed, n_samples):
        net = build_net(self, spec, seed, n_samples)
        net.callbacks.append(InterruptAtEpoch3())
        return net

    monkeypatch.setattr(VAEOutlierDetector, "_build_net", build_with_interrupt)
    return blobs_with_outliers


def test_keyboard_interrupt_leaves_a_usable_model(monkeypatch, blobs_with_outliers):
    """Ctrl-C stops training (skorch catches it); fit warns and completes."""
    from skvae import TrainingInterruptedWarning

    X_train, X_test = _interrupt_training_at_epoch_3(monkeypatch, blobs_with_outliers)
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 50})
    with pytest.warns(TrainingInterruptedWarning, match="after 3 of 50 epochs"):
        det.fit(X_train)
    assert len(det.history_) == 3 and det.training_interrupted_
    assert np.isfinite(det.offset_)
    assert np.all(np.isfinite(det.score_samples(X_test)))


@pytest.mark.parametrize("refit", [False, True], ids=["new", "refit"])
def test_keyboard_interrupt_aborts_fit_when_the_warning_is_an_error(
    refit, monkeypatch, blobs_with_outliers
):
    """The documented way to abort: the estimator stays as it was before fit."""
    from sklearn.exceptions import NotFittedError

    from skvae import TrainingInterruptedWarning

    X_train, X_test = blobs_with_outliers
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 4}, random_state=0)
    before = det.fit(X_train).score_samples(X_test) if refit else None
    _interrupt_training_at_epoch_3(monkeypatch, blobs_with_outliers)
    det.set_params(max_epochs=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingInterruptedWarning)
        with pytest.raises(TrainingInterruptedWarning):
            det.fit(X_train)
    if refit:
        np.testing.assert_array_equal(det.score_samples(X_test), before)
        assert not det.training_interrupted_ and len(det.history_) == 4
    else:
        with pytest.raises(NotFittedError):
            det.score_samples(X_test)


# -- one input rule: uint8 pixels in any container ----------------------------


@pytest.mark.parametrize(
    "container",
    ["array", "memmap", "DataFrame", "list"],
)
def test_uint8_pixels_are_scaled_alike_in_every_container(
    container, tmp_path, digits, fitted_conv_detector
):
    """One input rule: 8-bit pixels are divided by 255 whatever holds them."""
    images, _ = digits
    pixels = np.round(images[:50] * 255).astype(np.uint8).reshape(50, 64)
    expected = fitted_conv_detector.score_samples(pixels / np.float32(255))
    if container == "memmap":
        X = np.memmap(tmp_path / "px.u8", dtype=np.uint8, mode="w+", shape=(50, 64))
        X[:] = pixels
    elif container == "DataFrame":
        pd = pytest.importorskip("pandas")
        X = pd.DataFrame(pixels, columns=[f"px{i}" for i in range(64)])
    elif container == "list":  # Python ints carry no dtype: used as they are
        X = (pixels / np.float32(255)).tolist()
    else:
        X = pixels
    np.testing.assert_allclose(fitted_conv_detector.score_samples(X), expected)


def test_mixed_dtype_frame_is_not_scaled(fitted_conv_detector):
    """Only an all-uint8 DataFrame holds pixels; a mixed one is used as it is."""
    pd = pytest.importorskip("pandas")
    values = np.random.RandomState(0).rand(5, 64).astype(np.float32)
    frame = pd.DataFrame(values, columns=[f"px{i}" for i in range(64)])
    frame["px0"] = (frame["px0"] > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(
        fitted_conv_detector.score_samples(frame),
        fitted_conv_detector.score_samples(frame.to_numpy(np.float32)),
    )


# -- model files --------------------------------------------------------------


@pytest.fixture(scope="module")
def large_model(digits):
    """A detector whose file takes a while to write (a few MiB of weights)."""
    images, _ = digits
    return VAEOutlierDetector(
        hidden_dims=(256, 512), latent_dim=4, max_epochs=1, transformations=None
    ).fit(images[:64])


SAVE_FOREVER = """
import pickle, sys
import skvae
model = pickle.load(open({blob!r}, "rb"))
print("saving", flush=True)
while True:
    skvae.save(model, {path!r}, format={file_format!r})
"""


@pytest.mark.multiprocess
@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.15])
def test_a_save_killed_midway_leaves_a_loadable_model(
    delay, file_format, tmp_path, large_model, fitted_conv_detector
):
    """SIGKILL at any moment of repeated saves: the file holds the old or new model."""
    import subprocess
    import sys
    import time

    import skvae

    path, blob = tmp_path / "model.skvae", tmp_path / "new.pkl"
    skvae.save(fitted_conv_detector, path)
    blob.write_bytes(pickle.dumps(large_model))
    code = SAVE_FOREVER.format(blob=str(blob), path=str(path), file_format=file_format)
    saver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert saver.stdout.readline().strip() == b"saving"
        time.sleep(delay)
    finally:
        saver.kill()
        saver.wait(timeout=60)
    loaded = skvae.load(path)
    assert loaded.hidden_dims in (fitted_conv_detector.hidden_dims, (256, 512))


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
def test_a_failed_save_keeps_the_previous_file(
    file_format, tmp_path, fitted_conv_detector
):
    import skvae

    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    before = path.read_bytes()

    class Unpicklable(VAEOutlierDetector):
        def __reduce_ex__(self, protocol):
            raise Injected("cannot pickle")

    # The safe format refuses the unknown class; pickle fails while writing.
    with pytest.raises((Injected, TypeError)):
        skvae.save(Unpicklable(), path, format=file_format)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.skvae"]


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "random bytes"])
def test_load_of_a_damaged_file_names_it(
    damage, file_format, tmp_path, fitted_conv_detector
):
    import skvae

    path = skvae.save(
        fitted_conv_detector, tmp_path / "model.skvae", format=file_format
    )
    content = path.read_bytes()
    damaged = {
        "empty": b"",
        "truncated": content[: len(content) // 2],
        "random bytes": np.random.RandomState(0).bytes(len(content)),
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match="model.skvae (is empty|is damaged)") as info:
        skvae.load(path)
    assert info.value.__cause__ is not None
    assert "save the model again" in str(info.value)


# -- load: threads, parallel model selection, repeated fits -------------------


@pytest.mark.parametrize("torch_threads", [1, 2])
def test_threads_scoring_one_model_get_the_same_bits(
    torch_threads, fitted_conv_detector, digits
):
    """Overlapping callers, each scoring on torch's threads; the count restored."""
    from concurrent.futures import ThreadPoolExecutor

    images, _ = digits
    expected = fitted_conv_detector.score_samples(images[:300])
    threads = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Many passes (on worker threads) and one pass (on the caller's).
            rows = [images[:300], images[7:8]] * 4
            results = list(pool.map(fitted_conv_detector.score_samples, rows))
        assert torch.get_num_threads() == torch_threads
    finally:
        torch.set_num_threads(threads)
    for many, one in zip(results[::2], results[1::2], strict=True):
        np.testing.assert_array_equal(many, expected)
        np.testing.assert_array_equal(one, expected[7:8])


@pytest.mark.multiprocess
def test_model_selection_with_two_jobs_equals_one_job(blobs_with_outliers):
    from sklearn.model_selection import GridSearchCV

    X, _ = blobs_with_outliers
    search = {
        n_jobs: GridSearchCV(
            VAETransformer(hidden_dims=(8,), max_epochs=3, random_state=0),
            {"latent_dim": [1, 2]},
            cv=2,
            n_jobs=n_jobs,
        ).fit(X)
        for n_jobs in (1, 2)
    }
    np.testing.assert_array_equal(
        search[1].cv_results_["mean_test_score"],
        search[2].cv_results_["mean_test_score"],
    )


def _anonymous_rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon in /proc/self/status")


def _open_files_and_threads():
    import os
    import threading

    return len(os.listdir("/proc/self/fd")), threading.active_count()


@pytest.mark.skipif(
    not __import__("os").path.isdir("/proc/self/fd"), reason="Linux /proc"
)
def test_repeated_fits_leak_no_memory_threads_or_files(blobs_with_outliers):
    import gc

    X, _ = blobs_with_outliers
    detector = VAEOutlierDetector(hidden_dims=(8,), latent_dim=2, max_epochs=2)
    for _ in range(3):  # warm up allocator pools and lazy imports
        detector.fit(X)
    gc.collect()
    files_before, threads_before = _open_files_and_threads()
    rss_before = _anonymous_rss_kib()
    for _ in range(20):
        detector.fit(X)
    gc.collect()
    files, threads = _open_files_and_threads()
    # A leak grows with each of the 20 fits; the slack of 4 is for what other
    # tests left running in this process (a Dask cluster closing its sockets).
    assert files - files_before <= 4 and threads - threads_before <= 4
    # Twenty fits of a model of a few KiB: any leak of a fit's buffers shows.
    assert _anonymous_rss_kib() - rss_before < 20 * 1024
