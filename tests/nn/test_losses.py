import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from skvae.nn import (
    BernoulliLikelihood,
    GaussianLikelihood,
    NegativeELBO,
    elbo,
    kl_standard_normal,
)
from skvae.nn._likelihoods import PER_FEATURE_MIN_VAR, make_likelihood


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    expected = kl_divergence(
        Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros(3), torch.ones(3))
    ).sum(dim=1)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), expected)


def test_kl_is_zero_at_the_prior():
    assert torch.all(kl_standard_normal(torch.zeros(2, 4), torch.zeros(2, 4)) == 0)


@pytest.mark.parametrize("var", [1.0, 0.05])
def test_gaussian_log_prob_matches_closed_form(var):
    x, mean = torch.rand(4, 1, 3, 3), torch.rand(4, 1, 3, 3)
    expected = Normal(mean, math.sqrt(var)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(GaussianLikelihood(var).log_prob(x, mean), expected)


def test_bernoulli_log_prob_matches_closed_form():
    x, logits = torch.rand(4, 6).round(), torch.randn(4, 6)
    expected = Bernoulli(logits=logits).log_prob(x).sum(1)
    torch.testing.assert_close(BernoulliLikelihood().log_prob(x, logits), expected)
    torch.testing.assert_close(
        BernoulliLikelihood().mean(logits), torch.sigmoid(logits)
    )


def test_learned_variance_is_the_batch_mse_in_training():
    lik = GaussianLikelihood(1.0, learn_var=True, momentum=1.0).train()
    x, mean = torch.rand(8, 5), torch.rand(8, 5)
    mse = ((x - mean) ** 2).mean().item()
    expected = Normal(mean, math.sqrt(mse)).log_prob(x).sum(1)
    torch.testing.assert_close(lik.log_prob(x, mean), expected)
    assert lik.variance == pytest.approx(mse, rel=1e-5)


def test_learned_variance_is_frozen_in_eval():
    lik = GaussianLikelihood(0.5, learn_var=True).eval()
    lik.log_prob(torch.rand(3, 2), torch.rand(3, 2))
    assert lik.variance == pytest.approx(0.5)


def test_learned_variance_is_a_running_average():
    """The first batch sets the variance; later ones are averaged in log space."""
    lik = GaussianLikelihood(1.0, learn_var=True, momentum=0.5).train()
    x = torch.zeros(2, 2)
    lik.log_prob(x, torch.full((2, 2), 0.1))  # batch variance 0.01
    assert lik.variance == pytest.approx(0.01, rel=1e-5)
    lik.log_prob(x, torch.full((2, 2), 0.01))  # batch variance 1e-4
    assert lik.variance == pytest.approx(math.sqrt(0.01 * 1e-4), rel=1e-5)


@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
def test_negative_elbo_is_mean_of_per_sample_bound(beta):
    log_px, kl = torch.tensor([-3.0, -5.0]), torch.tensor([1.0, 2.0])
    loss = NegativeELBO(beta)(log_px, kl)
    assert loss.item() == pytest.approx(-torch.mean(elbo(log_px, kl, beta)).item())
    assert loss.item() == pytest.approx((3 + beta + 5 + 2 * beta) / 2)


def test_per_feature_variance_is_each_features_batch_mse():
    lik = GaussianLikelihood(
        1.0, learn_var=True, momentum=1.0, var_shape=(1, 2, 3), min_var=1e-8
    ).train()
    x, mean = torch.rand(8, 1, 2, 3), torch.rand(8, 1, 2, 3)
    var = ((x - mean) ** 2).mean(dim=0)
    expected = Normal(mean, var.sqrt()).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(lik.log_prob(x, mean), expected)
    np.testing.assert_allclose(lik.variance, var.numpy(), rtol=1e-5)


def test_per_feature_variance_has_a_floor_and_is_frozen_in_eval():
    lik = GaussianLikelihood(
        1.0, learn_var=True, momentum=1.0, var_shape=(3,), min_var=1e-3
    ).train()
    x = torch.zeros(4, 3)
    lik.log_prob(x, torch.tensor([0.0, 0.0, 0.5]).expand(4, 3))
    np.testing.assert_allclose(lik.variance, [1e-3, 1e-3, 0.25], rtol=1e-5)
    lik.eval()
    lik.log_prob(x, torch.ones(4, 3))
    np.testing.assert_allclose(lik.variance, [1e-3, 1e-3, 0.25], rtol=1e-5)


def test_per_feature_variance_weighs_precise_features_more():
    """An error on a precisely reconstructed feature costs more log-likelihood."""
    lik = GaussianLikelihood(1.0, var_shape=(2,))
    lik.log_var.copy_(torch.log(torch.tensor([0.01, 1.0])))
    x = torch.zeros(2, 2)
    log_px = lik.log_prob(x, torch.tensor([[0.5, 0.0], [0.0, 0.5]]))
    assert log_px[0] < log_px[1]


def test_make_likelihood_per_feature():
    lik = make_likelihood("gaussian", "learned_per_feature", (1, 4, 4))
    assert lik.learn_var and lik.log_var.shape == (1, 4, 4)
    assert lik.min_var == PER_FEATURE_MIN_VAR
    with pytest.raises(ValueError, match="input_shape"):
        make_likelihood("gaussian", "learned_per_feature")
