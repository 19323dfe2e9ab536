"""A nearest-neighbour index of training features, scored batch-independently."""

import numpy as np
import torch

from ..utils._threads import map_in_order

# Rows per matrix product (at most), the bytes a chunk's temporaries may
# take, and spare candidate neighbours whose distances are recomputed exactly.
NEIGHBOR_CHUNK_ROWS = 512
NEIGHBOR_CHUNK_BYTES = 64 * 2**20
NEIGHBOR_MARGIN = 8
# The bytes of the candidates' differences recomputed at once: a few rows'
# worth, which stay in the CPU's cache (3x faster than a whole chunk's, whose
# tens of megabytes go through memory; docs/performance.md).
EXACT_BLOCK_BYTES = 2**20


class NeighborDistance:
    """Minus the mean distance to the nearest training points: a density score.

    Features are standardised by the training points' mean and standard
    deviation per dimension, so that no dimension dominates by its units.
    Unlike one Gaussian (:func:`mahalanobis_scores`), nearest neighbours fit
    training data made of several clusters. A training point is never its
    own neighbour: training points identical to the scored row (bit for
    bit, after standardisation) are left out, so a training sample scores
    as an unseen sample at its place would, and thresholds set on training
    scores hold on new data. A matrix product only picks candidate
    neighbours; the distances that count are computed from each row alone,
    so a score does not depend on the other rows it is computed with.

    Parameters
    ----------
    n_neighbors : int
        How many nearest training points are averaged; fewer if there are
        fewer distinct training points.
    max_points : int or None, default=None
        Keep at most this many training points, a random subset (the same
        for the same features), so that memory and search time stay bounded
        however many rows the training set has; every training row is still
        scored against the kept points. ``None`` keeps all.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features,)
    scale_ : ndarray of shape (n_features,)
        The standardisation of the training features (of all of them).
    points_ : ndarray of shape (n_points, n_features)
        The kept standardised training features, float32.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.scoring import NeighborDistance
    >>> train = np.random.RandomState(0).normal(size=(100, 2))
    >>> knn = NeighborDistance(n_neighbors=5)
    >>> train_scores = knn.fit(train)  # fit returns the training rows' scores
    >>> near, far = knn.score(np.array([[0.0, 0.0], [8.0, 8.0]]))
    >>> bool(near > far)  # higher = more typical
    True
    """

    def __init__(self, n_neighbors, max_points=None):
        self.n_neighbors = n_neighbors
        self.max_points = max_points

    def fit(self, features):
        """Index the training ``features``; return their scores."""
        features = np.asarray(features, dtype=np.float64)
        self.mean_ = features.mean(axis=0)
        std = features.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        standardized = self._standardize(features)
        self.points_ = standardized[self._kept_rows(len(features))]
        self._squared_norms_32 = np.einsum("ij,ij->i", self.points_, self.points_)
        return self._standardized_scores(standardized)

    def _kept_rows(self, n_rows):
        """Sorted indices of the training rows to keep (all, or a random subset)."""
        if self.max_points is None or n_rows <= self.max_points:
            return np.arange(n_rows)
        # A fixed stream: the subset depends on the number of rows alone, so
        # a seeded fit stays reproducible.
        rng = np.random.default_rng(0)
        return np.sort(rng.choice(n_rows, self.max_points, replace=False))

    def score(self, features):
        """Minus the mean distance of each row of ``features`` to its neighbours."""
        return self._standardized_scores(self._standardize(features))

    def _standardized_scores(self, rows):
        n_threads = torch.get_num_threads()
        chunk_rows = self._chunk_rows(n_threads)
        if len(rows) <= chunk_rows:  # one chunk, e.g. a lone row: no threads
            return self._chunk_scores(rows)
        scores = np.empty(len(rows))
        starts = range(0, len(rows), chunk_rows)

        def chunk_scores(start):
            return self._chunk_scores(rows[start : start + chunk_rows])

        # As many chunks at once as torch has threads: the partitions and
        # sums release the GIL, and a chunk's scores do not depend on the
        # thread it runs on.
        chunks = map_in_order(chunk_scores, starts, n_threads)
        for start, chunk in zip(starts, chunks, strict=True):
            scores[start : start + len(chunk)] = chunk
        return scores

    def _chunk_rows(self, n_threads=1):
        """Rows per chunk whose temporaries fit in ``NEIGHBOR_CHUNK_BYTES``.

        Each row takes its approximate distances to every point (float32),
        their order (int64) and its candidates' exact distances (float64;
        their differences take ``EXACT_BLOCK_BYTES`` for a few rows at a
        time); ``n_threads`` chunks at once share the budget. The scores do
        not depend on the chunking.
        """
        n_points = len(self.points_)
        n_candidates = min(n_points, self.n_neighbors + NEIGHBOR_MARGIN)
        row_bytes = 12 * n_points + 8 * n_candidates
        budget = NEIGHBOR_CHUNK_BYTES // max(n_threads, 1)
        # Python's min and max: np.clip on scalars costs microseconds, which a
        # lone row's search notices.
        return max(1, min(budget // row_bytes, NEIGHBOR_CHUNK_ROWS))

    def _standardize(self, features):
        # float32 halves the memory of the points and of the candidates'
        # differences.
        centred = np.asarray(features, dtype=np.float64) - self.mean_
        return (centred / self.scale_).astype(np.float32)

    def _chunk_scores(self, rows):
        # A matrix product finds candidate neighbours fast, but BLAS may round
        # a row differently by its place in the chunk; so the distances that
        # count are recomputed from the row alone, over a margin of spare
        # candidates that no rounding can push out.
        n_points = len(self.points_)
        n_candidates = min(n_points, self.n_neighbors + NEIGHBOR_MARGIN)
        # The nearest points have the largest r.p - |p|^2 / 2, which orders
        # them as the squared distance less |r|^2, |p|^2 - 2 r.p, does
        # (reversed, bit for bit: halving and doubling are exact): one pass
        # over the products instead of two. In place: a lone row's search
        # notices each temporary.
        products = rows @ self.points_.T
        products -= 0.5 * self._squared_norms_32
        first = n_points - n_candidates
        candidates = np.argpartition(products, first, axis=1)[:, first:]
        squared = self._candidate_squared(rows, candidates)
        # A row whose candidates are all at distance zero has more identical
        # training points than candidates: use all of them. (squared.all():
        # no zero at all, the usual case for new rows, checked in one pass.)
        if n_candidates < n_points and not squared.all():
            for i in np.flatnonzero(np.all(squared == 0, axis=1)):
                squared_all = self._exact_squared(rows[i : i + 1], self.points_[None])
                squared[i] = np.partition(
                    np.where(squared_all[0] > 0, squared_all[0], np.inf),
                    n_candidates - 1,
                )[:n_candidates]
        return self._mean_distances(squared)

    def _candidate_squared(self, rows, candidates):
        """Squared distances of each row to its ``candidates`` (indices), float64.

        A few rows at a time (``EXACT_BLOCK_BYTES``); each row's distances
        are its own sums, so the blocks change no bits.
        """
        n_candidates, n_features = candidates.shape[1], rows.shape[1]
        block_rows = max(1, EXACT_BLOCK_BYTES // (4 * n_candidates * n_features))
        squared = np.empty(candidates.shape)
        for start in range(0, len(rows), block_rows):
            block = slice(start, start + block_rows)
            # The gathered points are this block's own copy: their differences
            # are taken in place, a temporary fewer (the step 1.25x faster).
            differences = self.points_[candidates[block]]
            differences -= rows[block, None, :]
            squared[block] = _sums_of_squares(differences)
        return squared

    @staticmethod
    def _exact_squared(rows, points):
        """Squared distances of each row to its ``points`` (n, m, d), float32 sums.

        Each distance is summed from its own row and point alone, in the
        same order whatever else is computed with it. float32 differences
        (half the memory of float64's) ran this step 1.6x faster, within
        2e-7 of float64's sums (docs/performance.md).
        """
        return _sums_of_squares(points - rows[:, None, :])

    def _mean_distances(self, squared):
        """Minus the mean of each row's ``n_neighbors`` smallest non-zero distances."""
        # A zero distance is the scored point itself (or an identical copy).
        # In place on the caller's temporary: a lone row notices each copy.
        squared[~(squared > 0)] = np.inf
        squared.sort(axis=1)
        distances = np.sqrt(squared[:, : self.n_neighbors])
        found = distances != np.inf
        distances[~found] = 0.0
        counts = found.sum(axis=1)
        total = distances.sum(axis=1)
        return -np.divide(total, counts, out=np.zeros(len(total)), where=counts > 0)


def _sums_of_squares(differences):
    """Sum of squares along the last axis, each sum in a fixed order.

    einsum sums each row's squares in one pass, without the squares'
    temporary: 1.6-4x faster than ``(differences**2).sum(axis=2)``.
    """
    return np.einsum("ijk,ijk->ij", differences, differences)
