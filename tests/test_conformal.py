import numpy as np
import pytest

from skvae.conformal import benjamini_hochberg, conformal_pvalues, conformal_threshold


def test_pvalues_count_calibration_scores_at_or_below():
    calibration = [3.0, 1.0, 2.0, 2.0]
    pvalues = conformal_pvalues(calibration, [0.0, 1.0, 2.0, 2.5, 10.0])
    # (1 + #{c <= s}) / 5: ties count as at or below.
    np.testing.assert_allclose(pvalues, [0.2, 0.4, 0.8, 0.8, 1.0])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("alpha", [0.001, 0.01, 0.05, 0.1, 0.37])
def test_threshold_flags_exactly_the_small_pvalues(alpha, seed):
    rng = np.random.RandomState(seed)
    # Rounded scores make ties, which the equivalence must survive.
    calibration = np.round(rng.normal(size=rng.randint(5, 300)), 1)
    scores = np.round(rng.normal(size=500), 1)
    threshold = conformal_threshold(calibration, alpha)
    np.testing.assert_array_equal(
        scores < threshold, conformal_pvalues(calibration, scores) <= alpha
    )


def test_too_small_a_calibration_set_flags_nothing():
    assert conformal_threshold(np.arange(5.0), 0.1) == -np.inf
    # 9 scores: k = floor(0.1 * 10) = 1, the smallest.
    assert conformal_threshold(np.arange(9.0), 0.1) == 0.0


@pytest.mark.parametrize("n_calibration", [19, 99, 250])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_false_positive_rate_is_within_the_conformal_bounds(n_calibration, alpha):
    """Exchangeable normal data: alpha - 1/(n+1) < P(flag) <= alpha."""
    rng = np.random.RandomState(0)
    repeats, n_test = 4000, 50
    flagged = 0
    for _ in range(repeats):
        calibration = rng.normal(size=n_calibration)
        test = rng.normal(size=n_test)
        flagged += np.sum(test < conformal_threshold(calibration, alpha))
    rate = flagged / (repeats * n_test)
    exact = np.floor(alpha * (n_calibration + 1) + 1e-9) / (n_calibration + 1)
    # The rate of one calibration set is Beta distributed; its mean is exact.
    assert rate == pytest.approx(exact, abs=4 * np.sqrt(exact / repeats) + 1e-3)
    assert exact <= alpha and exact > alpha - 1 / (n_calibration + 1)


def _benjamini_hochberg_by_definition(pvalues, alpha):
    m = len(pvalues)
    ks = [k for k in range(1, m + 1) if np.sort(pvalues)[k - 1] <= alpha * k / m]
    k = max(ks, default=0)
    return pvalues <= np.sort(pvalues)[k - 1] if k else np.zeros(m, dtype=bool)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_benjamini_hochberg_matches_its_definition(alpha, seed):
    rng = np.random.RandomState(seed)
    pvalues = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.01, size=10)])
    rng.shuffle(pvalues)
    np.testing.assert_array_equal(
        benjamini_hochberg(pvalues, alpha),
        _benjamini_hochberg_by_definition(pvalues, alpha),
    )


def test_benjamini_hochberg_edge_cases():
    assert not benjamini_hochberg([0.5, 0.9], 0.1).any()
    assert benjamini_hochberg([0.001, 0.002], 0.1).all()
    assert benjamini_hochberg([], 0.1).shape == (0,)


def test_conformal_benjamini_hochberg_controls_the_false_discovery_rate():
    """Bates et al. 2023: FDR <= alpha * (share of normal samples)."""
    rng = np.random.RandomState(1)
    alpha, n_normal, n_anomalies = 0.1, 180, 20
    fdp = []
    for _ in range(2000):
        calibration = rng.normal(size=200)
        scores = np.r_[rng.normal(size=n_normal), rng.normal(-2.5, size=n_anomalies)]
        rejected = benjamini_hochberg(conformal_pvalues(calibration, scores), alpha)
        fdp.append(rejected[:n_normal].sum() / max(rejected.sum(), 1))
    bound = alpha * n_normal / (n_normal + n_anomalies)
    assert np.mean(fdp) <= bound + 3 * np.std(fdp) / np.sqrt(len(fdp))


@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5])
def test_levels_outside_the_unit_interval_are_rejected(alpha):
    with pytest.raises(ValueError, match="alpha must lie in"):
        conformal_threshold([1.0, 2.0], alpha)
    with pytest.raises(ValueError, match="alpha must lie in"):
        benjamini_hochberg([0.5], alpha)


@pytest.mark.parametrize(
    "calibration, match", [([], "is empty"), ([1.0, np.nan], "contains NaN")]
)
def test_bad_calibration_scores_are_rejected(calibration, match):
    with pytest.raises(ValueError, match=match):
        conformal_pvalues(calibration, [1.0])
