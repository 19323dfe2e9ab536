import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skvae import VAEOutlierDetector, VAETransformer
from skvae._callbacks import FiniteLossGuard

from .conftest import TINY_MLP

pytestmark = pytest.mark.compat


def _explode_in_epoch(monkeypatch, epoch):
    """Make the training loss nan from the given epoch on."""
    get_loss = VAETransformer._net_class.get_loss

    def exploding(net, *args, **kwargs):
        loss = get_loss(net, *args, **kwargs)
        if len(net.history) >= epoch:
            return loss * torch.tensor(float("nan"))
        return loss

    monkeypatch.setattr(VAETransformer._net_class, "get_loss", exploding)


def test_divergence_keeps_last_finite_weights(monkeypatch, blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    _explode_in_epoch(monkeypatch, 3)
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 6}, random_state=0)
    with pytest.warns(
        ConvergenceWarning, match="diverged.*epoch 3.*weights of epoch 2"
    ):
        det.fit(X_train)
    assert np.all(np.isfinite(det.score_samples(X_test)))
    assert np.isfinite(det.offset_)


def test_divergence_in_first_epoch_raises(monkeypatch, blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    _explode_in_epoch(monkeypatch, 1)
    with pytest.raises(
        ValueError, match=r"diverged.*first epoch.*Lower lr \(now 0.001\)"
    ):
        VAETransformer(**TINY_MLP).fit(X_train)


def test_huge_learning_rate_gives_a_clear_error(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 20}, lr=1e4, random_state=0)
    with pytest.raises(ValueError, match=r"diverged.*Lower lr \(now 10000.0\)"):
        det.fit(X_train * 1e3)
    assert not hasattr(det, "offset_")


def test_guard_snapshots_each_epoch_and_drops_the_copy_after_training(
    monkeypatch, blobs_with_outliers
):
    X_train, _ = blobs_with_outliers
    snapshots = []
    on_epoch_end = FiniteLossGuard.on_epoch_end

    def record(self, net, **kwargs):
        on_epoch_end(self, net, **kwargs)
        snapshots.append((self.last_good_epoch_, self.last_good_state_))

    monkeypatch.setattr(FiniteLossGuard, "on_epoch_end", record)
    det = VAETransformer(**{**TINY_MLP, "max_epochs": 2}).fit(X_train)
    assert [epoch for epoch, _ in snapshots] == [1, 2]
    for name, tensor in det.net_.module_.state_dict().items():
        torch.testing.assert_close(snapshots[-1][1][name], tensor)
    # The copy served its purpose; it must not travel with the estimator.
    assert dict(det.net_.callbacks_)["finite_loss"].last_good_state_ is None


def test_warm_start_continues_training(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    vae = VAETransformer(
        **{**TINY_MLP, "max_epochs": 3}, warm_start=True, random_state=0
    )
    vae.fit(X_train)
    weights = {k: v.clone() for k, v in vae.net_.module_.state_dict().items()}
    first_losses = list(vae.history_[:, "train_loss"])
    vae.set_params(max_epochs=1, lr=1e-12).fit(X_train)
    # A step of lr=1e-12 cannot move the weights: they were kept, not rebuilt.
    for name, tensor in vae.net_.module_.state_dict().items():
        if name.startswith(("encoder", "decoder")):
            torch.testing.assert_close(tensor, weights[name])
    assert list(vae.history_[:3, "train_loss"]) == first_losses
    assert len(vae.history_) == 4


def test_warm_start_uses_the_current_training_settings(blobs_with_outliers):
    """Non-regression: a warm fit resumed with the old max_epochs, lr and beta."""
    X_train, _ = blobs_with_outliers
    vae = VAETransformer(**{**TINY_MLP, "max_epochs": 2}, warm_start=True)
    vae.fit(X_train)
    vae.set_params(max_epochs=5, lr=3e-4, beta=0.5, batch_size=16).fit(X_train)
    assert len(vae.history_) == 2 + 5
    assert vae.net_.max_epochs == 5
    assert vae.net_.optimizer_.param_groups[0]["lr"] == 3e-4
    assert vae.net_.criterion_.beta == 0.5
    assert vae.net_.batch_size == 16


def test_warm_start_rebuilds_when_architecture_changes(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    vae = VAETransformer(**{**TINY_MLP, "max_epochs": 2}, warm_start=True).fit(X_train)
    vae.set_params(latent_dim=3).fit(X_train)
    assert len(vae.history_) == 2
    assert vae.transform(X_train[:2]).shape == (2, 3)


def test_cold_start_refits_from_scratch(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    vae = VAETransformer(**{**TINY_MLP, "max_epochs": 2}).fit(X_train)
    net = vae.net_
    vae.fit(X_train)
    assert vae.net_ is not net
    assert len(vae.history_) == 2


def test_extreme_inputs_give_finite_scores(fitted_blob_detector):
    """Clipped log-variances keep far-out samples from overflowing to inf."""
    det = fitted_blob_detector
    far = np.full((3, 5), 1e6, dtype=np.float32)
    scores = det.score_samples(far)
    assert np.all(np.isfinite(scores))
    assert np.all(det.predict(far) == -1)


# -- persistence -------------------------------------------------------------


def test_save_load_round_trip_keeps_predictions(tmp_path, fitted_conv_detector, digits):
    import skvae

    images, _ = digits
    path = tmp_path / "detector.skvae"
    skvae.save(fitted_conv_detector, path)
    loaded = skvae.load(path)
    np.testing.assert_array_equal(
        loaded.score_samples(images[:50]),
        fitted_conv_detector.score_samples(images[:50]),
    )
    assert loaded.offset_ == fitted_conv_detector.offset_


def test_metadata_is_saved_with_the_model(tmp_path, fitted_conv_detector):
    import skvae

    metadata = {"size": [8, 8], "color": "grayscale"}
    path = skvae.save(fitted_conv_detector, tmp_path / "m.skvae", metadata=metadata)
    loaded, stored = skvae.load(path, with_metadata=True)
    assert stored == metadata and loaded.offset_ == fitted_conv_detector.offset_
    plain = skvae.save(fitted_conv_detector, tmp_path / "plain.skvae")
    assert skvae.load(plain, with_metadata=True)[1] == {}


def test_load_refuses_incompatible_version(tmp_path, fitted_conv_detector, monkeypatch):
    import skvae
    from skvae import _persistence

    path = tmp_path / "old.skvae"
    monkeypatch.setattr(_persistence, "__version__", "0.0.3")
    skvae.save(fitted_conv_detector, path)
    monkeypatch.setattr(_persistence, "__version__", "0.1.0")
    with pytest.raises(
        ValueError, match=r"saved with skvae 0.0.3.*Install skvae==0.0.3"
    ):
        skvae.load(path)


def test_load_refuses_foreign_pickles(tmp_path):
    import pickle

    import skvae

    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ValueError, match="not a file written by skvae.save"):
        skvae.load(path)


def test_gpu_saved_model_loads_on_cpu(tmp_path, fitted_conv_detector, digits):
    """A model saved with device='cuda' loads on a CPU-only machine.

    Without a GPU the weights cannot really live on CUDA; the test marks the
    net as a CUDA net before saving, which drives skorch's device mapping on
    load (a DeviceWarning, then CPU) exactly as a GPU-trained file does.
    """
    import pickle

    from skorch.exceptions import DeviceWarning

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    images, _ = digits
    expected = fitted_conv_detector.score_samples(images[:20])
    detector = pickle.loads(pickle.dumps(fitted_conv_detector))
    detector.net_.device = "cuda"
    detector.device = "cuda"
    blob = pickle.dumps(detector)
    with pytest.warns(DeviceWarning, match="no CUDA devices"):
        loaded = pickle.loads(blob)
    assert torch.device(loaded.net_.device).type == "cpu"
    np.testing.assert_array_equal(loaded.score_samples(images[:20]), expected)


# -- streaming large inputs -------------------------------------------------


@pytest.fixture(scope="module")
def uint8_memmap(tmp_path_factory, digits):
    images, _ = digits
    n = 5000  # above LAZY_VALIDATION_ROWS: validated batch by batch
    path = tmp_path_factory.mktemp("memmap") / "images.u8"
    rows = np.resize(np.round(images * 255).astype(np.uint8), (n, 8, 8))
    memmap = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, 8, 8))
    memmap[:] = rows
    memmap.flush()
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 8, 8))


def test_memmap_scores_equal_in_memory_scores(uint8_memmap, fitted_conv_detector):
    in_memory = np.asarray(uint8_memmap)[:4096]  # below the lazy threshold
    lazy = fitted_conv_detector.score_samples(uint8_memmap)
    np.testing.assert_array_equal(
        lazy[:4096], fitted_conv_detector.score_samples(in_memory)
    )


def _count_validated_rows(monkeypatch):
    """Record the length of every slice ``_validate_rows`` converts."""
    from skvae import _base

    seen = []
    validate_rows = _base._BaseVAE._validate_rows

    def spy(self, rows):
        seen.append(len(rows))
        return validate_rows(self, rows)

    monkeypatch.setattr(_base._BaseVAE, "_validate_rows", spy)
    return seen


def test_large_arrays_are_validated_slice_by_slice(monkeypatch, fitted_conv_detector):
    import skvae._outlier

    seen = _count_validated_rows(monkeypatch)
    # The detector scores a chunk of rows at a time; each is validated alone.
    monkeypatch.setattr(skvae._outlier, "SCORE_CHUNK_ROWS", 1000)
    X = np.random.RandomState(0).rand(5000, 64).astype(np.float32)
    fitted_conv_detector.score_samples(X)
    assert max(seen) <= 1000 and sum(seen) == 5000


def test_non_finite_value_deep_in_a_large_array_raises(fitted_conv_detector):
    X = np.random.RandomState(0).rand(5000, 64).astype(np.float32)
    X[4900, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted_conv_detector.score_samples(X)


def test_large_array_structure_is_checked_up_front(fitted_conv_detector):
    with pytest.raises(ValueError, match="expecting 64"):
        fitted_conv_detector.score_samples(np.zeros((5000, 10)))


LARGE_FIT = {"hidden_dims": (4, 8), "latent_dim": 2, "max_epochs": 1, "batch_size": 256}


def _fit_on(estimator, X, monkeypatch, *, lazy):
    from skvae import _base

    if not lazy:
        monkeypatch.setattr(_base, "LAZY_VALIDATION_ROWS", len(X) + 1)
    fitted = estimator.fit(X)
    monkeypatch.undo()
    return fitted


@pytest.mark.slow
@pytest.mark.parametrize(
    "estimator",
    [
        VAEOutlierDetector(**LARGE_FIT, early_stopping=True, random_state=0),
        VAETransformer(**LARGE_FIT, random_state=0),
    ],
    ids=["detector", "transformer"],
)
def test_fit_on_a_large_memmap_equals_fit_in_memory(
    estimator, uint8_memmap, monkeypatch
):
    """Read batch by batch, the memmap trains the same bits as an array."""
    from sklearn.base import clone

    lazy = _fit_on(clone(estimator), uint8_memmap, monkeypatch, lazy=True)
    eager = _fit_on(clone(estimator), uint8_memmap, monkeypatch, lazy=False)
    X = uint8_memmap[:300]
    if isinstance(estimator, VAEOutlierDetector):
        np.testing.assert_array_equal(lazy.score_samples(X), eager.score_samples(X))
        np.testing.assert_array_equal(
            lazy.calibration_scores_, eager.calibration_scores_
        )
    else:
        np.testing.assert_array_equal(lazy.transform(X), eager.transform(X))


def test_fit_never_converts_a_large_array_whole(monkeypatch, uint8_memmap):
    from skvae import _base

    seen = _count_validated_rows(monkeypatch)
    VAEOutlierDetector(**LARGE_FIT, random_state=0).fit(uint8_memmap)
    # The up-front check, the training batches and the scoring passes each
    # read a chunk at a time.
    assert max(seen) <= _base.LAZY_VALIDATION_ROWS
    assert sum(seen) > 2 * len(uint8_memmap)


def test_non_finite_value_deep_in_a_large_training_array_fails_before_training():
    X = np.random.RandomState(0).rand(5000, 64).astype(np.float32)
    X[4900, 3] = np.inf
    detector = VAEOutlierDetector(**LARGE_FIT)
    with pytest.raises(ValueError, match="infinity"):
        detector.fit(X)
    assert not hasattr(detector, "net_")


# -- reproducibility across processes and interruption ----------------------

FIT_IN_SUBPROCESS = """
import numpy as np
from skvae import VAEOutlierDetector
X = np.random.RandomState(1).normal(size=(200, 5)).astype(np.float32)
det = VAEOutlierDetector(hidden_dims=(16,), latent_dim=2, max_epochs=5,
                         batch_size=32, random_state=7).fit(X)
np.save({path!r}, det.score_samples(X))
"""


@pytest.mark.multiprocess
def test_same_random_state_same_scores_across_processes(tmp_path):
    import subprocess
    import sys

    paths = [tmp_path / f"scores{i}.npy" for i in range(2)]
    # Side by side: two processes at once must agree as well.
    fits = [
        subprocess.Popen([sys.executable, "-c", FIT_IN_SUBPROCESS.format(path=str(p))])
        for p in paths
    ]
    assert [fit.wait(timeout=300) for fit in fits] == [0, 0]
    np.testing.assert_array_equal(np.load(paths[0]), np.load(paths[1]))


def test_pickle_holds_the_weights_once(fitted_conv_detector):
    """The net builds its module from a factory: no second copy as a parameter."""
    net = fitted_conv_detector.net_
    assert not isinstance(net.module, torch.nn.Module)
    assert not isinstance(
        fitted_conv_detector.transformation_net_.module, torch.nn.Module
    )
    size = len(pickle.dumps(fitted_conv_detector))
    modules = [net.module_, fitted_conv_detector.transformation_net_.module_]
    n_weights = sum(p.numel() for m in modules for p in m.parameters())
    n_points = sum(
        term.index_.points_.size
        for _, term in fitted_conv_detector.score_term_.terms_
        if hasattr(term, "index_")
    )
    assert n_points > 0
    # Weights plus Adam's two moments and the nearest-neighbour points, 4
    # bytes each, plus a margin for the rest; a second copy of the weights
    # would add another 4 per weight.
    assert size < 4 * (3 * n_weights + n_points) + 100_000


def test_unpickling_with_another_version_warns(fitted_conv_detector, monkeypatch):
    from skvae import _base
    from skvae._persistence import InconsistentVersionWarning

    monkeypatch.setattr(_base, "__version__", "0.0.3")
    data = pickle.dumps(fitted_conv_detector)
    monkeypatch.undo()
    with pytest.warns(InconsistentVersionWarning, match="pickled with skvae 0.0.3"):
        pickle.loads(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        pickle.loads(pickle.dumps(fitted_conv_detector))
