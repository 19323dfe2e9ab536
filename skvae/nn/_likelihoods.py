"""Decoder distributions p(x|z): each turns decoder outputs into a log-likelihood."""

import math

import torch
from torch import nn
from torch.nn import functional as F


def _sum_per_sample(values):
    return values.flatten(start_dim=1).sum(dim=1)


class GaussianLikelihood(nn.Module):
    """Gaussian p(x|z) with mean from the decoder and one shared variance.

    The variance is either fixed, or learned: set at every training step to
    its maximum-likelihood value given the reconstructions, the batch's mean
    squared error (the "optimal sigma" of Rybkin et al. 2021, the closed-form
    optimum of the shared variance that Dai & Wipf 2019 learn by gradient
    descent). A running average of it is the variance used in eval mode.

    Parameters
    ----------
    var : float, default=1.0
        The fixed variance, or the starting value of the learned one.
    learn_var : bool, default=False
        Whether the variance is learned from the reconstruction error.
    momentum : float, default=0.1
        Weight of the newest batch in the running average of the learned
        variance (in log space).
    """

    n_outputs = 1
    min_var = 1e-6

    def __init__(self, var=1.0, learn_var=False, momentum=0.1):
        super().__init__()
        self.learn_var = learn_var
        self.momentum = momentum
        self.register_buffer("log_var", torch.tensor(math.log(var)))

    @property
    def variance(self):
        """The variance used in eval mode, as a Python float."""
        return float(self.log_var.exp())

    def log_prob(self, x, params):
        """Per-sample log p(x|z), summed over features, shape ``(n,)``."""
        squared_error = (x - params) ** 2
        log_var = self.log_var
        if self.learn_var and self.training:
            # The optimum variance given the reconstructions; its gradient
            # would cancel out, so it is detached.
            log_var = squared_error.detach().mean().clamp_min(self.min_var).log()
            with torch.no_grad():
                self.log_var.lerp_(log_var, self.momentum)
        per_sample = _sum_per_sample(squared_error) * torch.exp(-log_var)
        n_features = x[0].numel()
        return -0.5 * (per_sample + n_features * (log_var + math.log(2 * math.pi)))

    def mean(self, params):
        """Return the expected value of x given the decoder output."""
        return params


class BernoulliLikelihood(nn.Module):
    """Bernoulli p(x|z) over values in [0, 1]; the decoder outputs logits."""

    n_outputs = 1

    def log_prob(self, x, params):
        """Per-sample log p(x|z), summed over features, shape ``(n,)``."""
        per_feature = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -_sum_per_sample(per_feature)

    def mean(self, params):
        """Return the expected value of x given the decoder logits."""
        return torch.sigmoid(params)


def make_likelihood(name, var=1.0):
    """Build the likelihood named ``name``.

    Parameters
    ----------
    name : {"gaussian", "bernoulli"}
        The decoder distribution.
    var : float or "learned", default=1.0
        Variance of the Gaussian; ``"learned"`` learns it from the data.
    """
    if name == "bernoulli":
        return BernoulliLikelihood()
    if var == "learned":
        return GaussianLikelihood(1.0, learn_var=True)
    return GaussianLikelihood(var)
