"""Property-based input fuzzing: every method works or raises a clear error.

Whatever the input (dtype, shape, NaN/inf placement, pandas, lists), an
estimator method either returns finite, well-shaped output or raises
ValueError/TypeError; no other exception escapes and no NaN score comes
back for finite input.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils import check_array

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer
from skvae._validation import plain_rows

TINY = {"hidden_dims": (8,), "latent_dim": 2, "max_epochs": 1, "batch_size": 16}
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = st.sampled_from(
    [np.uint8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]
)
METHODS = {
    VAEOutlierDetector: ["score_samples", "decision_function", "predict", "score"],
    VAETransformer: ["transform", "score_samples", "score"],
    VAEClassifier: ["predict", "predict_proba", "score_samples"],
}


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 6).astype(np.float32)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    return {
        VAEOutlierDetector: VAEOutlierDetector(**TINY).fit(X),
        VAETransformer: VAETransformer(**TINY).fit(X),
        VAEClassifier: VAEClassifier(**TINY).fit(X, y),
    }


def _call(estimator, method, X):
    """Call a method; return its output, or None if it raised a clear error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return getattr(estimator, method)(X)
        except (ValueError, TypeError) as error:
            assert str(error), "errors must say what went wrong"
            return None


def _check_output(out, n_rows, allow_minus_inf=False):
    out = np.asarray(out)
    if out.ndim:
        assert len(out) == n_rows
    if out.dtype.kind == "f":
        allowed = np.isfinite(out) | (allow_minus_inf & (out == -np.inf))
        assert np.all(allowed)


@FUZZ
@given(data=st.data(), estimator_class=st.sampled_from(list(METHODS)))
def test_methods_on_arbitrary_arrays(fitted, data, estimator_class):
    estimator = fitted[estimator_class]
    dtype = data.draw(DTYPES)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=7))
    X = data.draw(hnp.arrays(dtype, shape))
    for method in METHODS[estimator_class]:
        out = _call(estimator, method, X)
        if out is not None:
            finite = np.all(np.isfinite(X.astype(np.float64)))
            assert finite, f"{method} accepted non-finite input"
            # Rows whose squares overflow float32 (|x| beyond about 1e19)
            # may score -inf: the most abnormal, never NaN.
            _check_output(out, len(X), allow_minus_inf=True)


@FUZZ
@given(
    n_rows=st.integers(1, 12),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    position=st.integers(0, 71),
)
def test_any_non_finite_value_is_rejected(fitted, n_rows, bad, position):
    X = np.random.RandomState(n_rows).rand(n_rows, 6)
    X.flat[position % X.size] = bad
    for estimator_class, methods in METHODS.items():
        for method in methods:
            with pytest.raises(ValueError, match="NaN|infinity"):
                getattr(fitted[estimator_class], method)(X)


@FUZZ
@given(
    X=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(6)),
        elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
    )
)
def test_finite_input_never_gives_nan_scores(fitted, X):
    for estimator_class, methods in METHODS.items():
        for method in methods:
            out = getattr(fitted[estimator_class], method)(X)
            _check_output(out, len(X))


@FUZZ
@given(
    n_samples=st.integers(0, 6),
    n_features=st.integers(1, 5),
    dtype=DTYPES,
)
def test_fit_on_small_arrays(n_samples, n_features, dtype):
    X = np.random.RandomState(0).rand(n_samples, n_features).astype(dtype)
    for estimator in (VAEOutlierDetector(**TINY), VAETransformer(**TINY)):
        try:
            estimator.fit(X)
        except ValueError as error:
            assert n_samples == 0 and "0 sample" in str(error)
            continue
        _check_output(estimator.score_samples(X), n_samples)


@pytest.mark.parametrize(
    "X",
    [
        [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]] * 3,
        np.array([["a"] * 6] * 2, dtype=object),
        np.array([[1 + 2j] * 6]),
    ],
    ids=["list", "object_strings", "complex"],
)
def test_other_containers(fitted, X):
    for estimator_class, methods in METHODS.items():
        for method in methods:
            out = _call(fitted[estimator_class], method, X)
            if out is not None:
                _check_output(out, len(X))


def test_dataframe_feature_names_are_checked(fitted):
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).rand(30, 6)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    detector = VAEOutlierDetector(**TINY).fit(frame)
    assert detector.feature_names_in_.tolist() == list(frame.columns)
    _check_output(detector.score_samples(frame), 30)
    renamed = frame.rename(columns={"f0": "other"})
    with pytest.raises(ValueError, match="feature names"):
        detector.score_samples(renamed)


@FUZZ
@given(data=st.data())
def test_plain_rows_take_only_what_validation_takes_unchanged(data):
    # The one-row fast path: whatever it accepts, scikit-learn's check
    # accepts too and converts to the same float32 values.
    dtype = data.draw(DTYPES)
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7))
    X = data.draw(hnp.arrays(dtype, shape))
    n_features = shape[1] if len(shape) > 1 else 1
    rows = plain_rows(X, n_features)
    if rows is None:
        return
    expected = check_array(X, dtype=np.float32)
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows, expected)


@pytest.mark.parametrize(
    "X",
    [
        np.array([[np.nan, 0.0]]),
        np.array([[np.inf, 0.0]]),
        np.array([[3e38, 3e38]], dtype=np.float32),  # finite, sum overflows
        np.array([[1e39, 0.0]]),  # infinite as float32
        np.zeros((0, 2)),
        np.zeros((1, 3)),
        np.zeros(2),
        np.array([[True, False]]),
        np.array([[1 + 2j, 0]]),
        np.ma.masked_array(np.zeros((1, 2))),
        [[0.0, 1.0]],
    ],
    ids=[
        "nan",
        "inf",
        "overflowing_sum",
        "too_large",
        "no_rows",
        "wrong_width",
        "1d",
        "bool",
        "complex",
        "subclass",
        "list",
    ],
)
def test_plain_rows_leave_the_rest_to_validation(X):
    assert plain_rows(X, 2) is None


def test_feature_names_still_checked_on_plain_arrays(fitted):
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).rand(30, 6)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    detector = VAEOutlierDetector(**TINY).fit(frame)
    with pytest.warns(UserWarning, match="feature names"):
        detector.score_samples(X[:1])
    detector = fitted[VAEOutlierDetector]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detector.score_samples(X[:1])
