"""Synthetic two-photon microscopy images: sharp foreground cells, blurry background.

The three data sets of Eichen's thesis (chapter 3): ten small foreground
cells at fixed positions, each independently active, and one or two large,
round background cells, the out-of-focus cells that light up large regions
of a two-photon microscopy frame.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from ..utils._sklearn import Interval, StrOptions, validate_params

# Centres (row, column) on the thesis' 60x60 grid; positions scale with
# image_size. Cells 2-5 overlap the bottom-left background cell of "X90" and
# "X50"; in "X90,20" that cell moves left and overlaps cells 2, 4 and 5, and
# the top-right one overlaps cells 6 and 7.
REFERENCE_SIZE = 60
FOREGROUND_CENTERS = (
    (8, 8),
    (10, 24),
    (36, 12),
    (44, 26),
    (52, 8),
    (53, 20),
    (10, 40),
    (22, 52),
    (40, 48),
    (52, 40),
)
SCENARIOS = {
    # centres of the background cells, and each one's probability of activity
    "X90": {"centers": ((45, 15),), "probabilities": (0.9,)},
    "X50": {"centers": ((45, 15),), "probabilities": (0.5,)},
    "X90,20": {"centers": ((45, 8), (15, 45)), "probabilities": (0.9, 0.2)},
}


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "scenario": [StrOptions(set(SCENARIOS))],
        "image_size": [Interval(Integral, 8, None, closed="left")],
        "cell_size": [Interval(Integral, 1, None, closed="left")],
        "cell_value": [Real],
        "cell_probability": [Interval(Real, 0, 1, closed="both")],
        "background_diameter": [Interval(Real, 0, None, closed="neither")],
        "background_value": [Real],
        "background_probability": [Interval(Real, 0, 1, closed="both"), tuple, None],
        "noise_mean": [Real],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "noise_region": [StrOptions({"background", "everywhere"})],
        "binarize": ["boolean"],
        "threshold": [Real],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_cells(
    n_samples=2000,
    *,
    scenario="X90",
    image_size=60,
    cell_size=6,
    cell_value=0.9,
    cell_probability=0.5,
    background_diameter=30,
    background_value=0.6,
    background_probability=None,
    noise_mean=0.3,
    noise_std=0.4,
    noise_region="background",
    binarize=True,
    threshold=0.5,
    random_state=None,
):
    """Generate the thesis' synthetic microscopy images of fore- and background cells.

    Each image has ten square foreground cells at fixed positions, each
    active (every pixel ``cell_value``) with probability
    ``cell_probability``, and one or two round background cells (every pixel
    ``background_value``), active with the scenario's probabilities. Values
    add where cells overlap; Gaussian noise is added, and the images are
    binarised.

    Parameters
    ----------
    n_samples : int, default=2000
        Number of images.
    scenario : {"X90", "X50", "X90,20"}, default="X90"
        The thesis' data sets. ``"X90"``: one background cell in the bottom
        left, active with probability 0.9, overlapping four foreground cells.
        ``"X50"``: the same cell, active with probability 0.5. ``"X90,20"``:
        that cell moved left so it overlaps three foreground cells, plus a
        second one in the top right, active with probability 0.2,
        overlapping two.
    image_size : int, default=60
        Side of the square images; cell positions and sizes are given for
        60 and scale with it (``cell_size`` and ``background_diameter`` do
        not: set them too).
    cell_size : int, default=6
        Side of a foreground cell, in pixels.
    cell_value : float, default=0.9
        Pixel value of an active foreground cell.
    cell_probability : float, default=0.5
        Probability that a foreground cell is active, independently.
    background_diameter : float, default=30
        Diameter of a background cell, in pixels.
    background_value : float, default=0.6
        Pixel value of an active background cell.
    background_probability : float, tuple of float or None, default=None
        Probability of activity of each background cell; ``None`` takes the
        scenario's, a float sets every cell's.
    noise_mean, noise_std : float, default=0.3, 0.4
        Mean and standard deviation of the Gaussian pixel noise.
    noise_region : {"background", "everywhere"}, default="background"
        Where the noise goes. The thesis says the binarised images keep
        noise "in the background activity" while foreground cells and
        empty regions come out nearly clean; that holds when the noise
        lies on active background cells (``"background"``). With noise on
        every pixel and a threshold of 0.5, about 31% of empty pixels
        would be on.
    binarize : bool, default=True
        Whether to return ``image > threshold`` as 0/1 values (the thesis'
        setting, for a Bernoulli decoder). If False, the raw sums.
    threshold : float, default=0.5
        Binarisation threshold.
    random_state : int, RandomState instance or None, default=None
        Seeds the cells' activity and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, image_size, image_size), float32
        The images.
    truth : dict
        ``"foreground"``: (n_samples, 10) 0/1 activity of the foreground
        cells; ``"background"``: (n_samples, n_background) activity of the
        background cells; ``"foreground_masks"``: (10, image_size,
        image_size) bool pixels of each foreground cell;
        ``"background_masks"``: (n_background, image_size, image_size) bool
        pixels of each background cell.

    Examples
    --------
    >>> from skvae.datasets import make_cells
    >>> X, truth = make_cells(100, scenario="X90,20", random_state=0)
    >>> X.shape, truth["foreground"].shape, truth["background"].shape
    ((100, 60, 60), (100, 10), (100, 2))
    """
    rng = check_random_state(random_state)
    setting = SCENARIOS[scenario]
    probabilities = _background_probabilities(
        background_probability, setting["probabilities"]
    )
    scale = image_size / REFERENCE_SIZE
    foreground_masks = np.stack(
        [_square(image_size, center, scale, cell_size) for center in FOREGROUND_CENTERS]
    )
    background_masks = np.stack(
        [
            _disk(image_size, center, scale, background_diameter)
            for center in setting["centers"]
        ]
    )
    foreground = rng.random_sample((n_samples, len(foreground_masks)))
    foreground = (foreground < cell_probability).astype(np.int8)
    background = rng.random_sample((n_samples, len(background_masks)))
    background = (background < np.asarray(probabilities)).astype(np.int8)

    flat_foreground = foreground_masks.reshape(len(foreground_masks), -1)
    flat_background = background_masks.reshape(len(background_masks), -1)
    # A pixel shared by active cells of one layer takes the layer's value once.
    foreground_on = (foreground @ flat_foreground) > 0
    background_on = (background @ flat_background) > 0
    X = cell_value * foreground_on + background_value * background_on
    noise = rng.normal(noise_mean, noise_std, size=X.shape)
    X = X + (noise * background_on if noise_region == "background" else noise)
    if binarize:
        X = X > threshold
    X = X.reshape(n_samples, image_size, image_size).astype(np.float32)
    truth = {
        "foreground": foreground,
        "background": background,
        "foreground_masks": foreground_masks,
        "background_masks": background_masks,
    }
    return X, truth


def _background_probabilities(background_probability, scenario_probabilities):
    """Return the probability of activity of each background cell, as a tuple."""
    n_cells = len(scenario_probabilities)
    if background_probability is None:
        return scenario_probabilities
    if isinstance(background_probability, Real):
        return (float(background_probability),) * n_cells
    if len(background_probability) != n_cells or not all(
        0 <= p <= 1 for p in background_probability
    ):
        raise ValueError(
            f"background_probability={background_probability!r} must be one "
            f"probability in [0, 1] per background cell ({n_cells} here), or a "
            "single float for all of them."
        )
    return tuple(float(p) for p in background_probability)


def _square(size, center, scale, side):
    """Return the bool mask of a ``side`` x ``side`` square around a scaled centre."""
    row, col = (round(c * scale) for c in center)
    top, left = row - side // 2, col - side // 2
    mask = np.zeros((size, size), dtype=bool)
    mask[max(top, 0) : top + side, max(left, 0) : left + side] = True
    return mask


def _disk(size, center, scale, diameter):
    """Return the bool mask of the pixels whose centres lie within a scaled disk."""
    row, col = (c * scale for c in center)
    rows, cols = np.mgrid[:size, :size] + 0.5
    return (rows - row) ** 2 + (cols - col) ** 2 <= (diameter / 2) ** 2
