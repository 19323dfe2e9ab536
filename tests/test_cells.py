import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from skvae.datasets import make_cells


def overlapping_cells(truth):
    """For each background cell, the foreground cells that share a pixel with it."""
    return [
        [i for i, cell in enumerate(truth["foreground_masks"]) if (cell & bg).any()]
        for bg in truth["background_masks"]
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "overlaps", "probabilities"),
    [
        ("X90", [[2, 3, 4, 5]], [0.9]),
        ("X50", [[2, 3, 4, 5]], [0.5]),
        ("X90,20", [[2, 4, 5], [6, 7]], [0.9, 0.2]),
    ],
)
def test_scenarios_follow_the_thesis(scenario, overlaps, probabilities):
    X, truth = make_cells(4000, scenario=scenario, random_state=0)
    assert X.shape == (4000, 60, 60) and X.dtype == np.float32
    assert set(np.unique(X)) == {0.0, 1.0}
    assert truth["foreground"].shape == (4000, 10)
    assert truth["background"].shape == (4000, len(probabilities))
    assert truth["foreground_masks"].shape == (10, 60, 60)
    # Ten 6x6 cells that do not touch each other; round 30-pixel background cells.
    assert (truth["foreground_masks"].sum(axis=(1, 2)) == 36).all()
    assert truth["foreground_masks"].sum(axis=0).max() == 1
    assert overlapping_cells(truth) == overlaps
    np.testing.assert_allclose(truth["foreground"].mean(), 0.5, atol=0.01)
    np.testing.assert_allclose(
        truth["background"].mean(axis=0), probabilities, atol=0.02
    )


def test_binarised_pixels_follow_the_cells():
    X, truth = make_cells(300, scenario="X50", random_state=1)
    foreground = np.einsum(
        "nc,chw->nhw", truth["foreground"], truth["foreground_masks"]
    )
    background = np.einsum(
        "nc,chw->nhw", truth["background"], truth["background_masks"]
    )
    # Active foreground cells are on (on an active background cell, all but
    # 0.06%: N(1.8, 0.4) < 0.5); empty pixels off (the noise lies on the
    # background cell); an active background cell is noisy: 84% of N(0.9, 0.4)
    # lies above 0.5.
    assert (X[(foreground > 0) & (background == 0)] == 1).all()
    assert X[(foreground > 0) & (background > 0)].mean() > 0.995
    assert (X[(foreground == 0) & (background == 0)] == 0).all()
    share_on = X[(foreground == 0) & (background > 0)].mean()
    np.testing.assert_allclose(share_on, 0.84, atol=0.02)


def test_raw_images_sum_the_layers_and_the_noise():
    X, truth = make_cells(
        200, binarize=False, noise_std=0.0, noise_region="everywhere", random_state=0
    )
    foreground = np.einsum(
        "nc,chw->nhw", truth["foreground"], truth["foreground_masks"]
    )
    background = np.einsum(
        "nc,chw->nhw", truth["background"], truth["background_masks"]
    )
    np.testing.assert_allclose(X, 0.9 * foreground + 0.6 * background + 0.3, atol=1e-6)


def test_noise_everywhere_reaches_empty_pixels():
    X, truth = make_cells(200, noise_region="everywhere", random_state=0)
    empty = ~(truth["foreground_masks"].any(axis=0) | truth["background_masks"][0])
    # P(N(0.3, 0.4) > 0.5) = 0.31
    np.testing.assert_allclose(X[:, empty].mean(), 0.31, atol=0.02)


def test_make_cells_is_reproducible_and_seeded():
    a, truth_a = make_cells(50, random_state=3)
    b, truth_b = make_cells(50, random_state=3)
    c, _ = make_cells(50, random_state=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(truth_a["foreground"], truth_b["foreground"])
    assert not np.array_equal(a, c)


def test_background_probability_overrides_the_scenario():
    _, truth = make_cells(2000, scenario="X90,20", background_probability=(0.1, 1.0))
    np.testing.assert_allclose(truth["background"].mean(axis=0), [0.1, 1.0], atol=0.02)
    _, truth = make_cells(2000, scenario="X90,20", background_probability=0.0)
    assert truth["background"].sum() == 0


@pytest.mark.parametrize("probabilities", [(0.5,), (0.5, 1.5)])
def test_background_probability_needs_one_per_cell(probabilities):
    with pytest.raises(
        ValueError, match="one probability in \\[0, 1\\] per background"
    ):
        make_cells(10, scenario="X90,20", background_probability=probabilities)


def test_positions_scale_with_the_image_size():
    _, truth = make_cells(
        10, scenario="X90,20", image_size=120, cell_size=12, background_diameter=60
    )
    assert truth["foreground_masks"].shape == (10, 120, 120)
    assert overlapping_cells(truth) == [[2, 4, 5], [6, 7]]


def test_make_cells_validates_its_parameters():
    with pytest.raises(InvalidParameterError, match="scenario"):
        make_cells(10, scenario="X20")
