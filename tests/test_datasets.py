import gzip

import numpy as np
import pytest
from sklearn.datasets import load_digits

from skvae.datasets import (
    ANOMALY_KINDS,
    DatasetNotFoundError,
    _fashion_mnist,
    load_digit_images,
    load_fashion_mnist,
    make_synthetic_anomalies,
    normal_classes_split,
    one_class_split,
)
from skvae.datasets._fashion_mnist import FILES, read_idx_ubyte

# Captured before the autouse fixture below points the module elsewhere.
REAL_FOLDER = _fashion_mnist.DEFAULT_FOLDER
HAS_REAL_DATA = all(
    (REAL_FOLDER / name).is_file() for name in FILES["train"] + FILES["test"]
)
N_TRAIN, N_TEST = 5, 3


def write_idx(path, array, magic=None):
    """Write ``array`` as a gzip-compressed IDX file of unsigned bytes."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = bytes([0, 0, 0x08, array.ndim])
    header = magic + np.array(array.shape, dtype=">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def write_fashion(folder, first_label=0, parts=("train", "test")):
    """Tiny Fashion-MNIST files; ``first_label`` tells folders apart."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(first_label)
    for part, n in [("train", N_TRAIN), ("test", N_TEST)]:
        if part not in parts:
            continue
        images_file, labels_file = FILES[part]
        images = rng.randint(0, 256, size=(n, 28, 28))
        labels = (first_label + np.arange(n)) % 10
        write_idx(folder / images_file, images)
        write_idx(folder / labels_file, labels)
    return folder


@pytest.fixture(autouse=True)
def no_installed_data(monkeypatch, tmp_path):
    """Hide the system copy and $SKVAE_DATA, so tests see only their own files."""
    monkeypatch.setattr(_fashion_mnist, "DEFAULT_FOLDER", tmp_path / "system")
    monkeypatch.delenv("SKVAE_DATA", raising=False)


@pytest.fixture
def fashion_home(tmp_path):
    return write_fashion(tmp_path / "home")


# --- IDX parsing -------------------------------------------------------------


def test_read_idx_ubyte_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    read = read_idx_ubyte(tmp_path / "a.gz", ndim=3)
    assert read.dtype == np.uint8
    np.testing.assert_array_equal(read, array)
    read[0, 0, 0] = 7  # loaded data must be writable, unlike a frombuffer view


@pytest.mark.parametrize(
    "magic, match",
    [
        (bytes([0, 0, 0x08, 1]), "magic number is 0x00000801, expected 0x00000803"),
        (bytes([0, 0, 0x0D, 3]), "magic number is 0x00000d03"),  # float32 IDX
        (b"\x1f\x8b\x08\x03", "not an IDX file of rank-3 unsigned bytes"),
    ],
)
def test_read_idx_ubyte_rejects_bad_magic_number(tmp_path, magic, match):
    write_idx(tmp_path / "a.gz", np.zeros((2, 4, 4)), magic=magic)
    with pytest.raises(ValueError, match=match):
        read_idx_ubyte(tmp_path / "a.gz", ndim=3)


@pytest.mark.parametrize("extra", [b"", b"\x00"])
def test_read_idx_ubyte_rejects_size_mismatch(tmp_path, extra):
    header = bytes([0, 0, 0x08, 1]) + np.array([4], dtype=">u4").tobytes()
    body = b"\x01\x02\x03" + extra * 2  # 3 or 5 values where the header says 4
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(header + body)
    with pytest.raises(ValueError, match=r"shape \(4,\), i.e. 4 values, but holds"):
        read_idx_ubyte(tmp_path / "a.gz", ndim=1)


def test_read_idx_ubyte_rejects_truncated_header(tmp_path):
    with gzip.open(tmp_path / "a.gz", "wb") as f:
        f.write(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(ValueError, match="ends inside its IDX header"):
        read_idx_ubyte(tmp_path / "a.gz", ndim=3)


def test_read_idx_ubyte_rejects_uncompressed_file(tmp_path):
    (tmp_path / "a.gz").write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(ValueError, match="is not a valid gzip file"):
        read_idx_ubyte(tmp_path / "a.gz", ndim=1)


# --- load_fashion_mnist ------------------------------------------------------


def test_load_fashion_mnist_bunch(fashion_home):
    bunch = load_fashion_mnist(fashion_home)
    assert bunch.images.shape == (N_TRAIN, 28, 28)
    assert bunch.images.dtype == np.uint8
    assert bunch.data.shape == (N_TRAIN, 784)
    assert np.shares_memory(bunch.data, bunch.images)
    np.testing.assert_array_equal(bunch.data, bunch.images.reshape(N_TRAIN, -1))
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, np.arange(N_TRAIN))
    assert bunch.target_names.tolist() == [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    assert bunch.target_names[bunch.target][1] == "Trouser"
    assert "Fashion-MNIST" in bunch.DESCR
    assert bunch.data_home == str(fashion_home)


@pytest.mark.parametrize(
    "subset, n_samples", [("train", N_TRAIN), ("test", N_TEST), ("all", 8)]
)
def test_load_fashion_mnist_subsets(fashion_home, subset, n_samples):
    bunch = load_fashion_mnist(fashion_home, subset=subset)
    assert bunch.images.shape == (n_samples, 28, 28)
    assert bunch.target.shape == (n_samples,)


def test_load_fashion_mnist_all_is_train_then_test(fashion_home):
    train = load_fashion_mnist(fashion_home, subset="train")
    test = load_fashion_mnist(fashion_home, subset="test")
    everything = load_fashion_mnist(fashion_home, subset="all")
    np.testing.assert_array_equal(everything.images[:N_TRAIN], train.images)
    np.testing.assert_array_equal(everything.images[N_TRAIN:], test.images)
    np.testing.assert_array_equal(everything.target, np.r_[train.target, test.target])


def test_load_fashion_mnist_return_X_y(fashion_home):
    X, y = load_fashion_mnist(fashion_home, subset="test", return_X_y=True)
    bunch = load_fashion_mnist(fashion_home, subset="test")
    assert X.shape == (N_TEST, 784)
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X, bunch.data)
    np.testing.assert_array_equal(y, bunch.target)


def first_label(bunch):
    return int(bunch.target[0])


def test_search_order_argument_then_env_then_system(tmp_path, monkeypatch):
    home = write_fashion(tmp_path / "home", first_label=1)
    env = write_fashion(tmp_path / "env", first_label=2)
    write_fashion(tmp_path / "system", first_label=3)
    monkeypatch.setenv("SKVAE_DATA", str(env))
    assert first_label(load_fashion_mnist(home)) == 1
    assert first_label(load_fashion_mnist()) == 2
    monkeypatch.delenv("SKVAE_DATA")
    assert first_label(load_fashion_mnist()) == 3


def test_folders_without_the_files_are_skipped(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    write_fashion(tmp_path / "env", first_label=2)
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    assert first_label(load_fashion_mnist(empty)) == 2


def test_fashion_mnist_subfolder_is_searched(tmp_path, monkeypatch):
    write_fashion(tmp_path / "data" / "fashion-mnist", first_label=4)
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "data"))
    bunch = load_fashion_mnist()
    assert first_label(bunch) == 4
    assert bunch.data_home == str(tmp_path / "data" / "fashion-mnist")


def test_test_subset_needs_only_the_test_files(tmp_path):
    folder = write_fashion(tmp_path / "home", parts=("test",))
    assert len(load_fashion_mnist(folder, subset="test").target) == N_TEST
    with pytest.raises(
        DatasetNotFoundError, match=r"home  \(data_home: holds none of them"
    ):
        load_fashion_mnist(folder, subset="train")


def test_missing_files_error_lists_folders_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("SKVAE_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as excinfo:
        load_fashion_mnist(tmp_path / "home")
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DatasetNotFoundError)
    for folder in ["home", "home/fashion-mnist", "env", "system"]:
        assert f"{tmp_path / folder}  (" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "data_home=<folder>" in message
    assert "SKVAE_DATA environment variable" in message
    assert "does not download" in message


def test_missing_files_error_names_the_missing_file(tmp_path):
    folder = write_fashion(tmp_path / "home")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        DatasetNotFoundError, match=r"home  \(data_home: missing t10k-labels-idx1"
    ):
        load_fashion_mnist(folder, subset="all")


def test_load_fashion_mnist_rejects_mismatched_files(tmp_path):
    folder = write_fashion(tmp_path / "home")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(N_TRAIN + 1))
    with pytest.raises(ValueError, match="holds 5 images but .* holds 6 labels"):
        load_fashion_mnist(folder)


def test_load_fashion_mnist_rejects_unknown_labels(tmp_path):
    folder = write_fashion(tmp_path / "home")
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(N_TRAIN, 10))
    with pytest.raises(ValueError, match="holds the label 10; Fashion-MNIST labels"):
        load_fashion_mnist(folder)


def test_load_fashion_mnist_rejects_labels_as_images(tmp_path):
    folder = write_fashion(tmp_path / "home")
    labels = folder / "train-labels-idx1-ubyte.gz"
    (folder / "train-images-idx3-ubyte.gz").write_bytes(labels.read_bytes())
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz is not an IDX"):
        load_fashion_mnist(folder)


def test_load_fashion_mnist_rejects_unknown_subset(fashion_home):
    with pytest.raises(ValueError, match="'subset' parameter .* Got 'validation'"):
        load_fashion_mnist(fashion_home, subset="validation")


@pytest.mark.skipif(not HAS_REAL_DATA, reason=f"Fashion-MNIST not in {REAL_FOLDER}")
def test_real_fashion_mnist():
    train = load_fashion_mnist(REAL_FOLDER)
    X_test, y_test = load_fashion_mnist(REAL_FOLDER, subset="test", return_X_y=True)
    assert train.images.shape == (60000, 28, 28)
    assert X_test.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(train.target), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test), np.full(10, 1000))
    assert train.target[0] == 9  # the first training image is an ankle boot


# --- load_digit_images -------------------------------------------------------


def sorted_rows(X):
    return X[np.lexsort(X.T[::-1])]


def test_load_digit_images_scales_sklearn_digits():
    bunch = load_digit_images()
    raw = load_digits()
    assert bunch.images.shape == (1797, 8, 8)
    assert bunch.images.dtype == bunch.data.dtype == np.float32
    assert np.shares_memory(bunch.data, bunch.images)
    assert bunch.data.min() == 0.0
    assert bunch.data.max() == 1.0
    np.testing.assert_allclose(bunch.data * 16, raw.data)
    np.testing.assert_array_equal(bunch.target, raw.target)
    np.testing.assert_array_equal(bunch.target_names, np.arange(10))
    assert "divided by 16" in bunch.DESCR


def test_digit_split_partitions_the_data_by_class():
    X_train, y_train = load_digit_images(subset="train", return_X_y=True)
    X_test, y_test = load_digit_images(subset="test", return_X_y=True)
    X_all, y_all = load_digit_images(return_X_y=True)
    assert X_train.shape == (1347, 64)
    assert X_test.shape == (450, 64)
    # Together the two subsets are exactly the data set, each row once.
    np.testing.assert_array_equal(
        sorted_rows(np.r_[np.c_[X_train, y_train], np.c_[X_test, y_test]]),
        sorted_rows(np.c_[X_all, y_all]),
    )
    # Stratified: each class has about a quarter of its images in the test set.
    share = np.bincount(y_test) / np.bincount(y_all)
    np.testing.assert_allclose(share, 0.25, atol=0.01)


def test_digit_split_is_reproducible_and_seeded():
    first = load_digit_images(subset="train", random_state=3)
    again = load_digit_images(subset="train", random_state=3)
    other = load_digit_images(subset="train", random_state=4)
    np.testing.assert_array_equal(first.data, again.data)
    assert not np.array_equal(first.target, other.target)


def test_digit_split_test_size():
    X_test, _ = load_digit_images(subset="test", test_size=100, return_X_y=True)
    assert X_test.shape == (100, 64)


@pytest.mark.parametrize("random_state", [None, np.random.RandomState(0), 1.5])
def test_digit_split_needs_an_int_seed(random_state):
    with pytest.raises(TypeError, match="must be an int, so that the train and"):
        load_digit_images(subset="train", random_state=random_state)


def test_load_digit_images_rejects_unknown_subset():
    with pytest.raises(ValueError, match="'subset' parameter .* Got 'val'"):
        load_digit_images(subset="val")


# --- one_class_split ---------------------------------------------------------


def test_one_class_split_known_answer():
    X_train = np.arange(6)[:, None]
    y_train = np.array([0, 1, 0, 2, 1, 0])
    X_test = np.arange(10, 14)[:, None]
    y_test = [1, 0, 2, 0]
    X_fit, X_eval, is_inlier = one_class_split(
        X_train, y_train, X_test, y_test, inlier_class=0
    )
    np.testing.assert_array_equal(X_fit.ravel(), [0, 2, 5])
    np.testing.assert_array_equal(X_eval, X_test)
    np.testing.assert_array_equal(is_inlier, [0, 1, 0, 1])
    assert is_inlier.dtype == np.int64


def test_one_class_split_keeps_image_shape_and_string_classes():
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    names = np.array(["Bag", "Shirt", "Bag", "Coat"])
    X_fit, X_eval, is_inlier = one_class_split(
        images, names, images, names, inlier_class="Bag"
    )
    assert X_fit.shape == (2, 28, 28)
    assert X_fit.dtype == np.uint8
    assert X_eval.shape == (4, 28, 28)
    np.testing.assert_array_equal(is_inlier, [1, 0, 1, 0])


def test_one_class_split_on_digit_subsets():
    X_train, y_train = load_digit_images(subset="train", return_X_y=True)
    X_test, y_test = load_digit_images(subset="test", return_X_y=True)
    X_fit, X_eval, is_inlier = one_class_split(
        X_train, y_train, X_test, y_test, inlier_class=3
    )
    np.testing.assert_array_equal(X_fit, X_train[y_train == 3])
    np.testing.assert_array_equal(X_eval, X_test)
    assert is_inlier.sum() == np.sum(y_test == 3)


def test_one_class_split_rejects_unknown_class():
    y = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=r"inlier_class=7 does not occur .* \[0, 1\]"):
        one_class_split(np.zeros((3, 2)), y, np.zeros((3, 2)), y, inlier_class=7)


@pytest.mark.parametrize(
    "y_test, kind", [([1, 1, 2], "no inliers"), ([0, 0, 0], "no outliers")]
)
def test_one_class_split_needs_inliers_and_outliers_in_test(y_test, kind):
    y_train = np.array([0, 1, 2])
    with pytest.raises(ValueError, match=f"the test set has {kind}"):
        one_class_split(
            np.zeros((3, 2)), y_train, np.zeros((3, 2)), y_test, inlier_class=0
        )


def test_one_class_split_checks_lengths():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        one_class_split(
            np.zeros((3, 2)), [0, 1], np.zeros((2, 2)), [0, 1], inlier_class=0
        )


@pytest.mark.parametrize("contamination", [0.05, 0.1, 0.5])
def test_one_class_split_mixes_training_anomalies(contamination):
    # Each sample is its own row number, so the rows drawn can be read back.
    y_train = load_digits().target
    X_train = np.arange(len(y_train))[:, None]
    X_test, y_test = X_train[:100], y_train[:100]

    def split():
        return one_class_split(
            X_train,
            y_train,
            X_test,
            y_test,
            inlier_class=3,
            train_contamination=contamination,
            random_state=0,
        )

    X_fit, X_eval, is_inlier = split()
    rows = X_fit.ravel()
    is_anomaly = y_train[rows] != 3
    n_normal = np.sum(y_train == 3)
    assert np.sum(~is_anomaly) == n_normal
    assert is_anomaly.sum() == round(contamination * n_normal / (1 - contamination))
    assert is_anomaly.mean() == pytest.approx(contamination, abs=0.01)
    assert len(set(rows)) == len(rows)
    # Anomalies are spread through the rows, not appended as a block.
    assert np.flatnonzero(is_anomaly)[0] < len(rows) - is_anomaly.sum()
    np.testing.assert_array_equal(X_eval, X_test)
    np.testing.assert_array_equal(is_inlier, y_test == 3)
    np.testing.assert_array_equal(X_fit, split()[0])


def test_normal_classes_split_mixes_training_anomalies():
    y_train = load_digits().target
    X_train = np.arange(len(y_train))[:, None]
    kwargs = dict(normal_classes=[0, 1, 2, 3, 4], random_state=0)
    clean, eval_clean, _ = normal_classes_split(
        X_train, y_train, X_train, y_train, **kwargs
    )
    mixed, eval_mixed, is_inlier = normal_classes_split(
        X_train, y_train, X_train, y_train, train_contamination=0.05, **kwargs
    )
    is_anomaly = y_train[mixed.ravel()] >= 5
    assert np.sum(~is_anomaly) == len(clean)
    assert is_anomaly.sum() == round(0.05 * len(clean) / 0.95)
    assert eval_mixed.shape == eval_clean.shape
    assert np.mean(1 - is_inlier) == pytest.approx(0.05, abs=0.01)


@pytest.mark.parametrize(
    "contamination, match",
    [
        (-0.1, r"must lie in \[0, 1\)"),
        (1.0, r"must lie in \[0, 1\)"),
        (0.9, "the other classes have only 3"),
    ],
)
def test_training_contamination_is_checked(contamination, match):
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    X = np.arange(8.0)[:, None]
    with pytest.raises(ValueError, match=match):
        one_class_split(X, y, X, y, inlier_class=0, train_contamination=contamination)


def test_clean_split_keeps_row_order():
    y = np.array([0, 1, 0, 1, 0])
    X = np.arange(5.0)[:, None]
    X_fit, _, _ = one_class_split(X, y, X, y, inlier_class=0, train_contamination=0)
    np.testing.assert_array_equal(X_fit.ravel(), [0, 2, 4])


# --- make_synthetic_anomalies ------------------------------------------------


@pytest.fixture(scope="module")
def correlated_normal_rows():
    """Two correlated clusters, standardised: 600 rows of 3 features."""
    rng = np.random.RandomState(0)
    mixing = np.array([[1.0, 0.9, 0.0], [0.0, 0.4, 0.0], [0.0, 0.0, 1.0]])
    X = np.r_[
        rng.normal(size=(300, 3)) @ mixing, rng.normal(size=(300, 3)) @ mixing + 4
    ]
    return (X - X.mean(0)) / X.std(0)


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_synthetic_anomalies_shape_and_seed(kind, correlated_normal_rows):
    X = correlated_normal_rows
    a = make_synthetic_anomalies(X, 40, kind=kind, random_state=0)
    b = make_synthetic_anomalies(X, 40, kind=kind, random_state=0)
    assert a.shape == (40, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert make_synthetic_anomalies(X, 0, kind=kind, random_state=0).shape == (0, 3)


def test_global_anomalies_fill_the_widened_box(correlated_normal_rows):
    X = correlated_normal_rows
    a = make_synthetic_anomalies(X, 2000, kind="global", random_state=0)
    assert np.all(a >= 1.1 * X.min(0)) and np.all(a <= 1.1 * X.max(0))
    # Uniform over the box: about as many rows on either side of its centre.
    centre = 1.1 * (X.min(0) + X.max(0)) / 2
    assert np.all(np.abs(np.mean(a > centre, axis=0) - 0.5) < 0.05)


def test_clustered_anomalies_sit_away_from_the_normal_clusters(correlated_normal_rows):
    X = correlated_normal_rows
    a = make_synthetic_anomalies(X, 200, kind="clustered", random_state=0)
    nearest_normal = np.min(np.linalg.norm(a[:, None] - X[None], axis=2), axis=1)
    assert np.median(nearest_normal) > 2.0
    # Tight clusters: the spread stays that of a normal cluster.
    assert np.all(a.std(0) < 5 * X.std(0))


def test_local_anomalies_spread_around_the_normal_clusters(correlated_normal_rows):
    X = correlated_normal_rows
    a = make_synthetic_anomalies(X, 2000, kind="local", random_state=0)
    # The mixture of the normal rows, its covariances times 5: the same
    # centre, a wider spread (the clusters' own spread grows by sqrt(5)).
    same = make_synthetic_anomalies(X, 2000, kind="local", alpha=1.0, random_state=0)
    np.testing.assert_allclose(same.std(0), X.std(0), rtol=0.1)
    np.testing.assert_allclose(a.mean(0), X.mean(0), atol=0.2)
    assert np.all(a.std(0) > 1.25 * same.std(0))


def test_dependency_anomalies_keep_marginals_and_lose_correlation(
    correlated_normal_rows,
):
    X = correlated_normal_rows
    a = make_synthetic_anomalies(X, 3000, kind="dependency", random_state=0)
    np.testing.assert_allclose(a.mean(0), X.mean(0), atol=0.1)
    np.testing.assert_allclose(a.std(0), X.std(0), rtol=0.1)
    assert np.corrcoef(X[:, 0], X[:, 1])[0, 1] > 0.8
    assert abs(np.corrcoef(a[:, 0], a[:, 1])[0, 1]) < 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "noise"}, "not one of ADBench"),
        ({"kind": "global", "n_anomalies": -1}, ">= 0"),
    ],
)
def test_synthetic_anomalies_reject_bad_arguments(kwargs, match):
    kwargs = {"n_anomalies": 5, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_synthetic_anomalies(np.zeros((10, 2)), **kwargs)
