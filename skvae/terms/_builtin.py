"""skvae's own score terms, the names that select them, and their torch forms."""

import numpy as np
import torch
from sklearn.base import clone
from torch import nn

from ..scoring import NeighborDistance, latent_gaussian, mahalanobis_scores
from ..scoring._neighbors import NEIGHBOR_MARGIN
from ..scoring._scores import (
    INPUT_OUTPUTS,
    MONTE_CARLO_OUTPUTS,
    TRANSFORMATION_OUTPUTS,
    VAE_OUTPUTS,
)
from ._base import ScoreTerm, StandardizedSum, name_terms

# Outputs that are scores already (higher = more normal), and their units.
NATS_OUTPUTS = ("elbo", "reconstruction", *MONTE_CARLO_OUTPUTS)
SCORE_OUTPUTS = (*NATS_OUTPUTS, "transformation", "orientation")
KNOWN_OUTPUTS = (
    *VAE_OUTPUTS,
    *MONTE_CARLO_OUTPUTS,
    *TRANSFORMATION_OUTPUTS,
    *INPUT_OUTPUTS,
)
# Training rows a nearest-neighbour term indexes at most: 1.3 MB of latent
# codes (16 dims) or 10 MB of classifier features (128 dims), whatever the
# training set's size (docs/performance.md measures what it costs).
NEIGHBOR_MAX_POINTS = 20_000
# n_neighbors="auto" averages this share of the indexed training rows (at
# least AUTO_MIN_NEIGHBORS). Unlabelled anomalies in the training set form
# small clusters; a neighbourhood wider than such a cluster reaches the normal
# rows, so the distance stays large for anomalies of that kind. 3% keeps the
# score when up to 10% of the training set are anomalies and costs little on
# clean data (docs/benchmark.md, training contamination).
AUTO_NEIGHBOR_FRACTION = 0.03
AUTO_MIN_NEIGHBORS = 5


def auto_n_neighbors(n_points):
    """Return the neighbours ``n_neighbors="auto"`` averages over ``n_points`` rows.

    Parameters
    ----------
    n_points : int
        The number of indexed training rows.

    Returns
    -------
    n_neighbors : int
        ``AUTO_NEIGHBOR_FRACTION`` of ``n_points``, at least
        ``AUTO_MIN_NEIGHBORS``.

    Examples
    --------
    >>> from skvae.terms import auto_n_neighbors
    >>> auto_n_neighbors(100), auto_n_neighbors(5_000)
    (5, 150)
    """
    return max(AUTO_MIN_NEIGHBORS, round(AUTO_NEIGHBOR_FRACTION * n_points))


class OutputScore(ScoreTerm):
    """A network output that is a score already, e.g. the ELBO.

    Parameters
    ----------
    output : {"elbo", "reconstruction", "iwae", "reconstruction_probability", \
            "transformation", "orientation"}, default="elbo"
        The output to return (see :class:`ScoreTerm` for what each is).

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.terms import OutputScore
    >>> OutputScore("elbo").score({"elbo": np.array([-3.0, -1.0])})
    array([-3., -1.])
    """

    requires_fit = False

    def __init__(self, output="elbo"):
        self.output = output

    @property
    def requires(self):
        """The one output the term returns."""
        return (self.output,)

    def score(self, outputs):
        """Return the output itself, as float64.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``outputs[output]``.
        """
        return np.asarray(outputs[self.output], dtype=np.float64)

    def to_torch(self):
        """Return the term as a torch module.

        Returns
        -------
        module : torch.nn.Module
            Returns ``outputs[output]`` as float64.
        """
        return _Output(self.output)


class MahalanobisScore(ScoreTerm):
    """Minus the Mahalanobis distance of a feature to its training Gaussian.

    ``-sqrt((u - m)^T C^-1 (u - m))`` with ``m`` and ``C`` the mean and the
    Ledoit-Wolf covariance (plus a ridge of 1e-6) of the training rows'
    features ``u``.

    Parameters
    ----------
    feature : str, default="latent_means"
        The output that holds the features, e.g. the posterior means.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
        Mean of the training features.
    covariance_ : ndarray of shape (n_features, n_features)
        Their covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.terms import MahalanobisScore
    >>> train = {"latent_means": np.random.RandomState(0).normal(size=(500, 2))}
    >>> term = MahalanobisScore().fit(train)
    >>> near, far = term.score({"latent_means": np.array([[0.0, 0.0], [4.0, 4.0]])})
    >>> bool(near > far)
    True
    """

    def __init__(self, feature="latent_means"):
        self.feature = feature

    @property
    def requires(self):
        """The one output holding the features."""
        return (self.feature,)

    def fit(self, outputs):
        """Fit the Gaussian of the training features.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        self : MahalanobisScore
            The fitted term.
        """
        self.mean_, self.covariance_ = latent_gaussian(outputs[self.feature])
        return self

    def score(self, outputs):
        """Minus the Mahalanobis distance of each row's features.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            0 at the training mean, lower further out.
        """
        return mahalanobis_scores(outputs[self.feature], self.mean_, self.covariance_)

    def to_torch(self):
        """Return the fitted term as a torch module.

        Returns
        -------
        module : torch.nn.Module
            Computes :meth:`score` in float64.
        """
        return _Mahalanobis(self.feature, self.mean_, self.covariance_)


class NeighborScore(ScoreTerm):
    """Minus the mean distance of a feature to its nearest training features.

    The features are standardised per dimension by the training features;
    a training row is never its own neighbour (see
    :class:`skvae.scoring.NeighborDistance`, which does the work).

    Parameters
    ----------
    feature : str, default="latent_means"
        The output that holds the features.
    n_neighbors : int or "auto", default="auto"
        How many nearest training rows are averaged. ``"auto"`` takes 3% of
        the indexed rows, at least 5 (:func:`auto_n_neighbors`): wide enough
        that anomalies among the training rows do not hide anomalies like
        them. An int as small as 5 is sharper on training data known to be
        clean.
    max_points : int or None, default=20_000
        Index at most this many training rows (a random subset of larger
        training sets), which bounds memory and search time; ``None`` indexes
        all. The bound is measured in docs/performance.md.

    Attributes
    ----------
    index_ : skvae.scoring.NeighborDistance
        The fitted index of the training features.
    n_neighbors_ : int
        The number of neighbours averaged.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.terms import NeighborScore
    >>> train = {"latent_means": np.random.RandomState(0).normal(size=(100, 2))}
    >>> term = NeighborScore(n_neighbors=5).fit(train)
    >>> near, far = term.score({"latent_means": np.array([[0.0, 0.0], [8.0, 8.0]])})
    >>> bool(near > far)
    True
    """

    def __init__(
        self,
        feature="latent_means",
        n_neighbors="auto",
        max_points=NEIGHBOR_MAX_POINTS,
    ):
        self.feature = feature
        self.n_neighbors = n_neighbors
        self.max_points = max_points

    @property
    def requires(self):
        """The one output holding the features."""
        return (self.feature,)

    def fit_score(self, outputs):
        """Index the training features; return their leave-self-out scores.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Each training row's score against the other training rows.
        """
        features = outputs[self.feature]
        self.n_neighbors_ = self.n_neighbors
        if self.n_neighbors == "auto":
            n_points = len(features)
            if self.max_points is not None:
                n_points = min(n_points, self.max_points)
            self.n_neighbors_ = auto_n_neighbors(n_points)
        self.index_ = NeighborDistance(self.n_neighbors_, self.max_points)
        return self.index_.fit(features)

    def fit(self, outputs):
        """Index the training features.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        self : NeighborScore
            The fitted term.
        """
        self.fit_score(outputs)
        return self

    def score(self, outputs):
        """Minus the mean distance of each row to its nearest training rows.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Higher = closer to the training features.
        """
        return self.index_.score(outputs[self.feature])

    def to_torch(self):
        """Return the fitted term as a torch module.

        Returns
        -------
        module : torch.nn.Module
            Computes :meth:`score` (see :class:`_NeighborDistance`).
        """
        return _NeighborDistance(self.feature, self.index_)


class _Output(nn.Module):
    def __init__(self, output):
        super().__init__()
        self.output = output

    def forward(self, outputs):
        return outputs[self.output].double()


class _Mahalanobis(nn.Module):
    """Minus the Mahalanobis distance to a fitted Gaussian, in float64."""

    def __init__(self, feature, mean, covariance):
        super().__init__()
        self.feature = feature
        precision = np.linalg.inv(np.asarray(covariance, dtype=np.float64))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))
        self.register_buffer("precision", torch.as_tensor(precision))

    def forward(self, outputs):
        centred = outputs[self.feature].double() - self.mean
        squared = ((centred @ self.precision) * centred).sum(dim=1)
        return -torch.sqrt(torch.clamp(squared, min=0.0))


class _NeighborDistance(nn.Module):
    """:class:`skvae.scoring.NeighborDistance`'s score as torch operations.

    The same steps: standardise in float64, round to float32, pick candidate
    neighbours by a matrix product, recompute their distances exactly in
    float64 and leave out identical points. One difference: a row with more
    identical training points than candidates (``n_neighbors + 8``) scores
    0 here, where skvae searches all training points.
    """

    def __init__(self, feature, index):
        super().__init__()
        self.feature = feature
        self.n_neighbors = index.n_neighbors
        # float32, as NeighborDistance keeps them: half the file size.
        points = torch.as_tensor(index.points_)
        self.register_buffer("mean", torch.as_tensor(index.mean_))
        self.register_buffer("scale", torch.as_tensor(index.scale_))
        self.register_buffer("points", points)
        self.register_buffer("squared_norms", (points.double() ** 2).sum(dim=1))
        self.n_candidates = min(len(points), self.n_neighbors + NEIGHBOR_MARGIN)

    def forward(self, outputs):
        features = outputs[self.feature]
        rows = ((features.double() - self.mean) / self.scale).float().double()
        points = self.points.double()
        approximate = self.squared_norms - 2 * rows @ points.T
        candidates = approximate.topk(self.n_candidates, dim=1, largest=False).indices
        differences = points[candidates] - rows[:, None, :]
        squared = (differences**2).sum(dim=2)
        squared = torch.where(squared > 0, squared, torch.full_like(squared, np.inf))
        nearest = squared.topk(
            min(self.n_neighbors, self.n_candidates), dim=1, largest=False
        ).values
        found = torch.isfinite(nearest)
        distances = torch.sqrt(torch.where(found, nearest, torch.zeros_like(nearest)))
        total = torch.where(found, distances, torch.zeros_like(distances)).sum(dim=1)
        counts = found.sum(dim=1).double()
        return -total / torch.clamp(counts, min=1.0)


# The score names of VAEOutlierDetector's score_type: one term each...
TERM_NAMES = (
    "elbo",
    "iwae",
    "reconstruction",
    "reconstruction_probability",
    "latent_mahalanobis",
    "latent_knn",
    "transformation",
    "orientation",
    "transformation_knn",
    "input_knn",
)
# ... and the standardised sums of several; "auto" depends on the input.
COMBINATIONS = {"elbo_mahalanobis": ("elbo", "latent_mahalanobis")}
# What "auto" sums depends on the input (auto_terms). On rows of features, the
# distance to the nearest training rows in the input space itself is the
# sharper and more robust neighbour term: a small MLP's latent codes of a few
# hundred rows lose what sets anomalies apart, and the ELBO alone collapses
# when the training rows hold anomalies. Chosen on 19 tables, clean and with
# 5% anomalies in training (docs/benchmark.md).
AUTO_FLAT_TERMS = ("elbo", "input_knn")
# On images the ELBO is left out: it adds nothing on clean training data and
# collapses when the training set holds anomalies (the VAE learns to
# reconstruct them); docs/benchmark.md measures both. Pixel distances are
# weaker than the classifier's features there (measured on six one-class
# Fashion-MNIST classes, clean and with 10% anomalies). The classifier's
# part is the orientation, not the transformation: the mirror image of a
# symmetric object looks like it, so the flip half of the transformation
# measures how asymmetric an image is rather than how normal (measured on
# Fashion-MNIST and the digits, docs/benchmark.md, "Which way up").
AUTO_IMAGE_TERMS = ("latent_knn", "orientation", "transformation_knn")
# Small images keep it: on 8x8 digits the ELBO raised every table, with
# several normal classes and 5% anomalies in training, on flat digit rows and
# on their synthetic anomalies (docs/benchmark.md, "The ELBO joins small
# images' score"). Only 8x8 and 28x28 images were measured; the cut at 14
# pixels of the shorter side is the one under which the classifier's training
# images are not shifted either.
SMALL_IMAGE_SIDE = 14
AUTO_SMALL_IMAGE_TERMS = (*AUTO_IMAGE_TERMS, "elbo")
# Images without the transformation classifier (transformations=None).
AUTO_PLAIN_IMAGE_TERMS = ("elbo", "latent_knn")
SCORE_NAMES = ("auto", *TERM_NAMES, *COMBINATIONS)


def auto_terms(input_shape, *, transformations):
    """Return the names ``score_type="auto"`` sums for this kind of input.

    Parameters
    ----------
    input_shape : tuple of int
        The shape of one input sample as the detector reads it:
        ``(n_features,)`` for rows of features, ``(C, H, W)`` for images.
    transformations : object
        The detector's ``transformations``; None trains no classifier.

    Returns
    -------
    names : tuple of str
        For rows of features the ELBO and ``input_knn``; for images without
        the classifier the ELBO and ``latent_knn``; for images with it
        ``latent_knn``, ``orientation`` and ``transformation_knn``, and
        the ELBO too when the shorter side is under 14 pixels
        (``AUTO_FLAT_TERMS``, ``AUTO_PLAIN_IMAGE_TERMS``,
        ``AUTO_IMAGE_TERMS``, ``AUTO_SMALL_IMAGE_TERMS``).

    Examples
    --------
    >>> from skvae.terms import auto_terms
    >>> auto_terms((30,), transformations="auto")
    ('elbo', 'input_knn')
    >>> auto_terms((1, 28, 28), transformations="auto")
    ('latent_knn', 'orientation', 'transformation_knn')
    >>> auto_terms((1, 8, 8), transformations="auto")
    ('latent_knn', 'orientation', 'transformation_knn', 'elbo')
    """
    if len(input_shape) != 3:
        return AUTO_FLAT_TERMS
    if transformations is None:
        return AUTO_PLAIN_IMAGE_TERMS
    if min(input_shape[1:]) < SMALL_IMAGE_SIDE:
        return AUTO_SMALL_IMAGE_TERMS
    return AUTO_IMAGE_TERMS


def make_term(name, *, n_neighbors="auto"):
    """Return the unfitted term that a score name selects.

    Parameters
    ----------
    name : str
        One of ``TERM_NAMES``.
    n_neighbors : int or "auto", default="auto"
        Neighbours of the nearest-neighbour terms.

    Returns
    -------
    term : ScoreTerm
        The term.
    """
    if name in SCORE_OUTPUTS:
        return OutputScore(name)
    if name == "latent_mahalanobis":
        return MahalanobisScore("latent_means")
    if name == "latent_knn":
        return NeighborScore("latent_means", n_neighbors)
    if name == "transformation_knn":
        return NeighborScore("transformation_features", n_neighbors)
    if name == "input_knn":
        return NeighborScore("inputs", n_neighbors)
    raise ValueError(
        f"Unknown score name {name!r}: the names are {', '.join(TERM_NAMES)} "
        f"and their sums {', '.join(COMBINATIONS)} and 'auto'. For a score of "
        "your own, pass a skvae.terms.ScoreTerm instance."
    )


def build_score(score_type, *, n_neighbors="auto", auto_names=AUTO_FLAT_TERMS):
    """Return the unfitted term that a detector's ``score_type`` selects.

    Parameters
    ----------
    score_type : str, ScoreTerm, or tuple of them
        A score name, a term, or several of either (their
        :class:`StandardizedSum`).
    n_neighbors : int or "auto", default="auto"
        Neighbours of the nearest-neighbour terms selected by name.
    auto_names : tuple of str, default=AUTO_FLAT_TERMS
        The names ``"auto"`` sums (:func:`auto_terms`).

    Returns
    -------
    term : ScoreTerm
        One term, or the standardised sum of several.
    """
    if isinstance(score_type, ScoreTerm):
        return clone(score_type)
    if isinstance(score_type, str):
        parts = auto_names if score_type == "auto" else score_type
        parts = COMBINATIONS.get(parts, parts)
        parts = (parts,) if isinstance(parts, str) else parts
    else:
        parts = tuple(score_type)
    if not parts:
        raise ValueError("score_type is an empty tuple; name at least one score.")
    for part in parts:
        if not isinstance(part, str | ScoreTerm):
            raise TypeError(
                f"score_type holds {part!r}, which is neither a score name nor a "
                "skvae.terms.ScoreTerm instance."
            )
        if isinstance(part, str) and part not in TERM_NAMES:
            if part in COMBINATIONS or part == "auto":
                raise ValueError(
                    f"score_type holds {part!r}, itself a sum of scores; list "
                    "its parts instead."
                )
            make_term(part)  # raises, naming the known scores
    terms = [
        make_term(part, n_neighbors=n_neighbors)
        if isinstance(part, str)
        else clone(part)
        for part in parts
    ]
    if len(terms) == 1:
        return terms[0]
    return StandardizedSum(list(zip(name_terms(parts), terms, strict=True)))


def check_requires(term):
    """Raise if ``term`` reads an output that no network gives."""
    unknown = [name for name in term.requires if name not in KNOWN_OUTPUTS]
    if unknown:
        raise ValueError(
            f"The score term {term!r} requires the outputs {unknown}, which no "
            f"network gives; the outputs are {', '.join(KNOWN_OUTPUTS)}."
        )
