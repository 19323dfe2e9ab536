"""Decoder distributions p(x|z): each turns decoder outputs into a log-likelihood."""

import math

import torch
from torch import nn
from torch.nn import functional as F


def _sum_per_sample(values):
    return values.flatten(start_dim=1).sum(dim=1)


class GaussianLikelihood(nn.Module):
    """Gaussian p(x|z) with mean from the decoder and a fixed or learned variance.

    The variance is either fixed, or learned: set at every training step to
    its maximum-likelihood value given the reconstructions, the batch's mean
    squared error (the "optimal sigma" of Rybkin et al. 2021, the closed-form
    optimum of the shared variance that Dai & Wipf 2019 learn by gradient
    descent). A running average of it is the variance used in eval mode.

    With ``var_shape`` set to the shape of one sample, every feature (pixel)
    gets its own learned variance, the batch's mean squared error of that
    feature: features the model reconstructs precisely then weigh more in
    the log-likelihood, as standardising the input does for a plain
    autoencoder.

    Parameters
    ----------
    var : float, default=1.0
        The fixed variance, or the starting value of the learned one.
    learn_var : bool, default=False
        Whether the variance is learned from the reconstruction error.
    momentum : float, default=0.1
        Weight of the newest batch in the running average of the learned
        variance (in log space); the first batch sets it outright.
    var_shape : tuple of int, default=()
        Shape of the variance: ``()`` for one shared variance, the shape of
        one sample for one variance per feature.
    min_var : float, default=1e-6
        Floor of the learned variance(s).

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import GaussianLikelihood
    >>> likelihood = GaussianLikelihood(var=1.0)
    >>> x = torch.zeros(2, 4)
    >>> likelihood.log_prob(x, torch.zeros(2, 4))  # 4 * log N(0; 0, 1)
    tensor([-3.6758, -3.6758])
    """

    def __init__(
        self, var=1.0, learn_var=False, momentum=0.1, var_shape=(), min_var=1e-6
    ):
        super().__init__()
        self.learn_var = learn_var
        self.momentum = momentum
        self.min_var = min_var
        self.register_buffer("log_var", torch.full(tuple(var_shape), math.log(var)))
        # The first training batch sets the running average outright, so a
        # short fit is not biased towards the starting value.
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.long))

    @property
    def variance(self):
        """The variance used in eval mode: a Python float, or an array per feature."""
        if self.log_var.ndim == 0:
            return float(self.log_var.detach().exp())
        return self.log_var.detach().exp().cpu().numpy()

    def log_prob(self, x, params):
        """Per-sample log p(x|z), summed over features, shape ``(n,)``."""
        return _sum_per_sample(self.log_prob_per_feature(x, params))

    def log_prob_per_feature(self, x, params):
        """Log p(x|z) of every feature, shaped like ``x``.

        In training mode with a learned variance, the variance is the
        batch's optimum (and the running average takes a step towards it).
        """
        squared_error = (x - params) ** 2
        log_var = self.log_var
        if self.learn_var and self.training:
            log_var = self._update_variance(squared_error.detach())
        return -0.5 * (
            squared_error * torch.exp(-log_var) + log_var + math.log(2 * math.pi)
        )

    def log_prob_discrete(self, x, params, levels=256):
        """Per-sample log-probability of ``x`` quantised to ``levels`` values, ``(n,)``.

        The sum over features of :meth:`log_prob_discrete_per_feature`.
        """
        return _sum_per_sample(self.log_prob_discrete_per_feature(x, params, levels))

    def log_prob_discrete_per_feature(self, x, params, levels=256):
        """Log-probability of each quantised value of ``x``, shaped like ``x``.

        The values are ``k / (levels - 1)`` for k in 0..levels-1 (8-bit
        pixels scaled by 1/255). Each gets the mass the Gaussian puts on its
        cell, ``[x - h, x + h]`` with ``h = 1 / (2 (levels - 1))``; the cells
        of 0 and 1 extend to -inf and +inf, so the masses of all levels sum
        to one (the discretised Gaussian of Salimans et al. 2017 and Ho et
        al. 2020). Uses the eval-mode variance.
        """
        half_cell = 0.5 / (levels - 1)
        scale = torch.exp(0.5 * self.log_var)
        upper = (x + half_cell - params) / scale
        lower = (x - half_cell - params) / scale
        upper = torch.where(x >= 1 - half_cell, torch.inf, upper)
        lower = torch.where(x <= half_cell, -torch.inf, lower)
        # Phi(u) - Phi(l) = Phi(-l) - Phi(-u): take the side where both are
        # small, so that log_ndtr stays accurate far in the tails.
        mirrored = lower > 0
        log_hi = torch.special.log_ndtr(torch.where(mirrored, -lower, upper))
        log_lo = torch.special.log_ndtr(torch.where(mirrored, -upper, lower))
        return log_hi + torch.log1p(-torch.exp(log_lo - log_hi))

    def _update_variance(self, squared_error):
        """Return the batch's optimum log-variance; average it into ``log_var``.

        The optimum given the reconstructions is the mean squared error
        (shared, or per feature); its gradient would cancel out, so the
        caller passes the error detached.
        """
        if self.log_var.ndim == 0:
            batch_var = squared_error.mean()
        else:
            batch_var = squared_error.mean(dim=0)
        log_var = batch_var.clamp_min(self.min_var).log()
        with torch.no_grad():
            weight = 1.0 if self.n_updates == 0 else self.momentum
            self.log_var.lerp_(log_var, weight)
            self.n_updates += 1
        return log_var

    def mean(self, params):
        """Return the expected value of x given the decoder output."""
        return params


class BernoulliLikelihood(nn.Module):
    """Bernoulli p(x|z) over values in [0, 1]; the decoder outputs logits.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import BernoulliLikelihood
    >>> x = torch.tensor([[0.0, 1.0]])
    >>> BernoulliLikelihood().log_prob(x, torch.zeros(1, 2))  # 2 * log(1/2)
    tensor([-1.3863])
    """

    def log_prob(self, x, params):
        """Per-sample log p(x|z), summed over features, shape ``(n,)``."""
        return _sum_per_sample(self.log_prob_per_feature(x, params))

    def log_prob_per_feature(self, x, params):
        """Log p(x|z) of every feature, shaped like ``x``."""
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none")

    def mean(self, params):
        """Return the expected value of x given the decoder logits."""
        return torch.sigmoid(params)


# Floor of the per-feature variances: a pixel that is (nearly) constant in
# the training data would otherwise get a variance of ~0 and dominate every
# score.
PER_FEATURE_MIN_VAR = 1e-3


def make_likelihood(name, var=1.0, input_shape=None):
    """Build the likelihood named ``name``.

    Parameters
    ----------
    name : {"gaussian", "bernoulli"}
        The decoder distribution.
    var : float, "learned" or "learned_per_feature", default=1.0
        Variance of the Gaussian; ``"learned"`` sets one shared variance to
        its closed-form optimum per training batch, ``"learned_per_feature"``
        one per feature.
    input_shape : tuple of int, default=None
        Shape of one sample; needed for ``"learned_per_feature"``.
    """
    if name == "bernoulli":
        return BernoulliLikelihood()
    if var == "learned":
        return GaussianLikelihood(1.0, learn_var=True)
    if var == "learned_per_feature":
        if input_shape is None:
            raise ValueError("decoder_var='learned_per_feature' needs input_shape.")
        return GaussianLikelihood(
            1.0, learn_var=True, var_shape=input_shape, min_var=PER_FEATURE_MIN_VAR
        )
    return GaussianLikelihood(var)
