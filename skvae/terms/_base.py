"""The score-term protocol, and the standardised sum that combines terms."""

from abc import ABCMeta, abstractmethod
from collections import Counter

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from torch import nn


class ScoreTerm(BaseEstimator, metaclass=ABCMeta):
    """Base class of the detector's score terms.

    A score term turns the per-sample outputs of the detector's fitted
    networks into an anomaly score, higher = more normal. The outputs are a
    dict of arrays with one row per sample, named as
    :func:`skvae.scoring.per_sample_outputs` names them: ``"elbo"``,
    ``"reconstruction"``, ``"latent_means"`` (the VAE's pass),
    ``"iwae"``, ``"reconstruction_probability"`` (``n_samples`` posterior
    draws) and ``"transformation"``, ``"orientation"``,
    ``"transformation_features"`` (the
    transformation classifier, trained only when a term needs them).

    A subclass says four things:

    - ``requires``: the names of the outputs it reads (a tuple);
    - :meth:`fit`: what it learns from the training rows' outputs (nothing
      by default; set the class attribute ``requires_fit = False`` if it
      learns nothing, and ``fit`` then sees no training pass);
    - :meth:`score`: the scores of new rows' outputs;
    - :meth:`to_torch`: the same computation as a torch module, for
      :mod:`skvae.export` (optional; export raises without it).

    Parameters go in ``__init__`` and fitted state in attributes ending in
    ``_``, as in scikit-learn: the detector clones the term it is given and
    fits the clone. Pass an instance, or a tuple mixing instances and score
    names, as the detector's ``score_type``.

    Examples
    --------
    A term scoring how close the latent code lies to the origin:

    >>> import numpy as np
    >>> import torch
    >>> from skvae.terms import ScoreTerm
    >>> class LatentNorm(ScoreTerm):
    ...     requires = ("latent_means",)
    ...     requires_fit = False
    ...
    ...     def score(self, outputs):
    ...         return -np.linalg.norm(outputs["latent_means"], axis=1)
    ...
    ...     def to_torch(self):
    ...         return LatentNormModule()
    >>> class LatentNormModule(torch.nn.Module):
    ...     def forward(self, outputs):
    ...         return -torch.linalg.norm(outputs["latent_means"].double(), dim=1)
    >>> LatentNorm().score({"latent_means": np.array([[3.0, 4.0]])})
    array([-5.])

    ``VAEOutlierDetector(score_type=LatentNorm())`` scores with it alone,
    ``score_type=("elbo", LatentNorm())`` sums the two standardised.
    """

    requires = ()
    requires_fit = True

    def fit(self, outputs):
        """Learn the term's statistics from the training rows' ``outputs``.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs, at least those in ``requires``.

        Returns
        -------
        self : ScoreTerm
            The fitted term.
        """
        return self

    def fit_score(self, outputs):
        """Fit on the training ``outputs`` and return the training rows' scores.

        Override it where the scores come cheaper from the fit itself.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The training rows' scores.
        """
        return self.fit(outputs).score(outputs)

    @abstractmethod
    def score(self, outputs):
        """Scores of rows from their ``outputs``; higher = more normal.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs, at least those in ``requires``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            One float score per row.
        """

    def to_torch(self):
        """Return the fitted term as a torch module, for export.

        Returns
        -------
        module : torch.nn.Module
            Its ``forward(outputs)`` takes a dict of tensors (one row per
            sample, the names of ``requires``) and returns float64 scores
            equal to :meth:`score`'s.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no torch form, so the detector cannot "
            "be exported: define to_torch(), returning a torch.nn.Module whose "
            "forward(outputs) computes score(outputs) with torch operations."
        )


class StandardizedSum(ScoreTerm):
    """The sum of several terms, each standardised by its training scores.

    ``score = sum_p (s_p - m_p) / d_p`` over the parts ``p``, with ``m_p``
    and ``d_p`` the mean and standard deviation of part ``p``'s scores on the
    training rows (``d_p = 1`` for constant scores). The standardisation is
    fixed at fit, so a row's score does not depend on the rows scored with
    it. The detector's ``score_type="auto"`` is one such sum.

    Parameters
    ----------
    terms : list of (str, ScoreTerm) tuples
        The named parts.

    Attributes
    ----------
    terms_ : list of (str, ScoreTerm) tuples
        The fitted parts.
    standardization_ : dict of str to (float, float)
        The mean and standard deviation of each part's training scores.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae.terms import OutputScore, StandardizedSum
    >>> total = StandardizedSum(
    ...     [("elbo", OutputScore("elbo")), ("recon", OutputScore("reconstruction"))]
    ... )
    >>> train = {"elbo": np.array([1.0, 3.0]), "reconstruction": np.array([0.0, 4.0])}
    >>> total.fit_score(train)
    array([-2.,  2.])
    """

    def __init__(self, terms):
        self.terms = terms

    @property
    def requires(self):
        """The outputs any part reads."""
        names = (name for _, term in self.terms for name in term.requires)
        return tuple(dict.fromkeys(names))

    def fit_score(self, outputs):
        """Fit every part on the training ``outputs``; return the sums' training scores.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The training rows' sums.
        """
        self.terms_ = [(name, clone(term)) for name, term in self.terms]
        scores = {name: _fit_score(term, outputs) for name, term in self.terms_}
        self.standardization_ = {
            name: _mean_and_std(part) for name, part in scores.items()
        }
        return self._sum(scores)

    def fit(self, outputs):
        """Fit every part and the standardisation on the training ``outputs``.

        Parameters
        ----------
        outputs : dict of ndarray
            The training rows' outputs.

        Returns
        -------
        self : StandardizedSum
            The fitted sum.
        """
        self.fit_score(outputs)
        return self

    def score(self, outputs):
        """Sum of the parts' standardised scores of new rows' ``outputs``.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The sums; higher = more normal.
        """
        return self._sum(self.part_scores(outputs, standardized=False))

    def part_scores(self, outputs, *, standardized=True):
        """Each part's scores of new rows' ``outputs``.

        Parameters
        ----------
        outputs : dict of ndarray
            The rows' outputs.
        standardized : bool, default=True
            Standardise each part as the sum does (the parts then add up to
            :meth:`score`), or return the parts' own scores.

        Returns
        -------
        scores : dict of str to ndarray of shape (n_samples,)
            The scores of each part, by name.
        """
        scores = {name: term.score(outputs) for name, term in self.terms_}
        if standardized:
            return {
                name: self._standardize(name, part) for name, part in scores.items()
            }
        return scores

    def _standardize(self, name, scores):
        mean, std = self.standardization_[name]
        return (scores - mean) / std

    def _sum(self, scores):
        total = np.zeros(len(next(iter(scores.values()))))
        for name, part in scores.items():
            total += self._standardize(name, part)
        return total

    def to_torch(self):
        """Return the fitted sum as a torch module (see :meth:`ScoreTerm.to_torch`).

        Returns
        -------
        module : torch.nn.Module
            Computes :meth:`score` from a dict of output tensors.
        """
        moments = [self.standardization_[name] for name, _ in self.terms_]
        return _StandardizedSumModule(
            [term.to_torch() for _, term in self.terms_], moments
        )


class _StandardizedSumModule(nn.Module):
    def __init__(self, parts, moments):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.register_buffer("moments", torch.tensor(moments, dtype=torch.float64))

    def forward(self, outputs):
        mean, std = self.moments[:, 0], self.moments[:, 1]
        return sum(
            (part(outputs) - mean[i]) / std[i] for i, part in enumerate(self.parts)
        )


def _fit_score(term, outputs):
    """Fit ``term`` if it learns anything; return its training scores."""
    if term.requires_fit:
        return term.fit_score(outputs)
    return term.score(outputs)


def _mean_and_std(scores):
    """Mean and standard deviation of training scores (1 for constant ones)."""
    std = float(np.std(scores))
    return float(np.mean(scores)), std if std > 0 else 1.0


def name_terms(terms):
    """Name each term of a list of names and :class:`ScoreTerm` instances.

    A name stays itself; an instance is named by its lowercased class name,
    numbered when several share one (as :func:`sklearn.pipeline.make_pipeline`
    names its steps).
    """
    names = [t if isinstance(t, str) else type(t).__name__.lower() for t in terms]
    counts = Counter(names)
    seen = Counter()
    named = []
    for name in names:
        if counts[name] > 1:
            seen[name] += 1
            name = f"{name}-{seen[name]}"
        named.append(name)
    return named
