"""The discrete log-likelihood behind bits per dimension, against closed forms."""

import math

import mpmath
import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import nn

from skvae.nn import VAE, GaussianLikelihood
from skvae.scoring import bits_per_dim, discrete_iwae_scores, iwae_scores, latent_noise


def _likelihood(var):
    likelihood = GaussianLikelihood(var).eval()
    return likelihood


def _scipy_cell_mass(x, mean, var, levels):
    """Mass of N(mean, var) on the cell of each value, edge cells open; float64."""
    half = 0.5 / (levels - 1)
    sd = math.sqrt(var)
    upper = np.where(x >= 1 - half, np.inf, x + half)
    lower = np.where(x <= half, -np.inf, x - half)
    return stats.norm.cdf(upper, mean, sd) - stats.norm.cdf(lower, mean, sd)


def _log_cell_mass_exact(x, mean, var, levels):
    """log of the cell mass in 60-digit arithmetic, for far tails too."""
    with mpmath.workdps(60):
        half, sd = mpmath.mpf(0.5) / (levels - 1), mpmath.sqrt(var)
        upper = mpmath.inf if x >= 1 - 1e-9 else mpmath.mpf(x) + half
        lower = -mpmath.inf if x <= 1e-9 else mpmath.mpf(x) - half
        if lower > mean:  # above the mean: 1 - Phi would cancel, mirror it
            upper, lower, mean = -lower, -upper, -mean
        mass = mpmath.ncdf(upper, mean, sd) - mpmath.ncdf(lower, mean, sd)
        return float(mpmath.log(mass))


@pytest.mark.parametrize("var", [1e-4, 5e-3, 0.3])
@pytest.mark.parametrize("levels", [2, 16, 256])
def test_discrete_log_prob_matches_scipy(var, levels):
    rng = np.random.RandomState(0)
    x = rng.randint(levels, size=(4, 50)) / (levels - 1)
    x[:, :2] = [0.0, 1.0]  # both open edge cells
    mean = x + rng.normal(scale=3 * math.sqrt(var), size=x.shape)
    mean[0, 5:10] = [-2.0, 2.0, 0.5, -0.1, 1.1]  # far tails on both sides
    expected = np.array(
        [
            sum(
                _log_cell_mass_exact(*values, var, levels)
                for values in zip(*row, strict=True)
            )
            for row in zip(x, mean, strict=True)
        ]
    )
    got = _likelihood(var).log_prob_discrete(
        torch.tensor(x, dtype=torch.float32),
        torch.tensor(mean, dtype=torch.float32),
        levels,
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-4, atol=1e-3)


@pytest.mark.parametrize("mean", [-0.3, 0.0, 0.41, 1.0, 1.7])
@pytest.mark.parametrize("levels", [4, 256])
def test_discrete_masses_of_all_levels_sum_to_one(mean, levels):
    x = torch.arange(levels, dtype=torch.float32).reshape(-1, 1) / (levels - 1)
    log_mass = _likelihood(0.01).log_prob_discrete(x, torch.full_like(x, mean), levels)
    assert torch.exp(log_mass.double()).sum().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.all(log_mass <= 0)


class _LinearEncoder(nn.Module):
    """q(z|x) with a mean affine in x and a fixed log-variance."""

    def __init__(self, weight, bias, logvar):
        super().__init__()
        self.weight = torch.tensor(weight, dtype=torch.float32).reshape(-1, 1)
        self.bias = float(bias)
        self.log_var = float(logvar)

    def forward(self, x):
        mu = x @ self.weight + self.bias
        return mu, torch.full_like(mu, self.log_var)


class _LinearDecoder(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.w = torch.tensor(w, dtype=torch.float32)
        self.b = torch.tensor(b, dtype=torch.float32)

    def forward(self, z):
        return z @ self.w.reshape(1, -1) + self.b


# A one-dimensional linear Gaussian VAE: x = w z + b + N(0, gamma I), z ~ N(0, 1).
W, B, GAMMA = np.array([0.3, -0.2, 0.25]), np.array([0.5, 0.4, 0.6]), 0.02


def _linear_vae(encoder_weight, encoder_bias, encoder_logvar):
    return VAE(
        _LinearEncoder(encoder_weight, encoder_bias, encoder_logvar),
        _LinearDecoder(W, B),
        _likelihood(GAMMA),
    ).eval()


def _posterior_vae(var_factor=1.0):
    """Encoder = the exact posterior of the continuous model (variance scaled).

    p(z|x) = N((x - b).w / (gamma P), 1 / P) with P = 1 + |w|^2 / gamma.
    """
    precision = 1 + W @ W / GAMMA
    weight = W / (GAMMA * precision)
    return _linear_vae(weight, -B @ weight, math.log(var_factor / precision))


def test_iwae_equals_closed_form_marginal_with_the_exact_posterior():
    """With q = p(z|x), every importance weight is p(x): the bound is exact."""
    vae = _posterior_vae()
    x = np.array([[0.5, 0.4, 0.6], [0.9, 0.1, 0.8]])
    got = iwae_scores(
        vae, x.astype(np.float32), noise=latent_noise(3, 1, 0), input_shape=(3,)
    )
    covariance = np.outer(W, W) + GAMMA * np.eye(3)
    expected = stats.multivariate_normal(B, covariance).logpdf(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def _quadrature_log_mass(x, levels):
    """log P(x) = log int N(z; 0, 1) prod_d mass_d(z) dz, by adaptive quadrature."""

    def integrand(z):
        return stats.norm.pdf(z) * np.prod(
            _scipy_cell_mass(x, W * z + B, GAMMA, levels)
        )

    value, _ = integrate.quad(integrand, -8, 8, points=[0.0], limit=200)
    return math.log(value)


@pytest.mark.parametrize("levels", [4, 256])
def test_discrete_iwae_converges_to_the_quadrature_probability(levels):
    x = (
        np.array([[2, 1, 2], [3, 0, 3]]) / 3
        if levels == 4
        else np.array([[128, 102, 153], [230, 26, 204]]) / 255
    )
    x = x.astype(np.float32)
    expected = np.array([_quadrature_log_mass(row, levels) for row in x])
    # A proposal wider than the posterior (which discretisation changes
    # too): the bound is loose for one draw, tight for many.
    vae = _posterior_vae(var_factor=3.0)

    def bound(n_draws, seed):
        noise = latent_noise(n_draws, 1, seed)
        return discrete_iwae_scores(
            vae, x, noise=noise, levels=levels, input_shape=(3,)
        )

    many = bound(3000, 0)
    np.testing.assert_allclose(many, expected, atol=0.03)
    # The one-draw bound (the ELBO), averaged over draws, lies clearly below.
    elbo = np.mean([bound(1, seed) for seed in range(200)], axis=0)
    assert np.all(elbo < expected - 0.04)
    bpd = bits_per_dim(many, 3)
    np.testing.assert_allclose(bpd, -expected / (3 * math.log(2)), atol=0.01)
    assert np.all(bpd > 0)


def test_discrete_iwae_rejects_a_bernoulli_likelihood():
    from skvae.nn import make_vae

    vae = make_vae((4,), 2, hidden_dims=(8,), likelihood="bernoulli").eval()
    with pytest.raises(ValueError, match="Gaussian likelihood"):
        discrete_iwae_scores(
            vae,
            np.zeros((2, 4), np.float32),
            noise=latent_noise(2, 2, 0),
            input_shape=(4,),
        )
