"""The ELBO's terms and the training criterion built on them."""

import torch
from torch import nn


def kl_standard_normal(mu, logvar):
    """Per-sample KL(N(mu, exp(logvar)) || N(0, I)), shape ``(n,)``.

    Parameters
    ----------
    mu : torch.Tensor of shape (n, latent_dim)
        Posterior means.
    logvar : torch.Tensor of shape (n, latent_dim)
        Posterior log-variances.

    Returns
    -------
    kl : torch.Tensor of shape (n,)
        The KL divergence of each row, in nats; 0 for the prior itself.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import kl_standard_normal
    >>> kl_standard_normal(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.zeros(2, 2))
    tensor([0.0000, 0.5000])
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def elbo(log_px, kl, beta=1.0):
    """Per-sample (beta-weighted) evidence lower bound: ``log_px - beta * kl``.

    Parameters
    ----------
    log_px : torch.Tensor of shape (n,)
        Reconstruction log-likelihoods ``log p(x|z)``.
    kl : torch.Tensor of shape (n,)
        ``KL(q(z|x) || p(z))`` of each sample.
    beta : float, default=1.0
        Weight of the KL term.

    Returns
    -------
    elbo : torch.Tensor of shape (n,)
        ``log_px - beta * kl``; higher means more typical.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import elbo
    >>> elbo(torch.tensor([-10.0]), torch.tensor([2.0]), beta=0.5)
    tensor([-11.])
    """
    return log_px - beta * kl


def negative_elbo_loss(log_px, kl, beta=1.0, output=None):
    """Batch mean of ``-(log p(x|z) - beta * KL)``, plus the module's auxiliary loss.

    ``output.auxiliary_loss`` (per sample, e.g. Grad2VAE's attention loss) is
    part of what training minimises but not of the ELBO that scores use.
    """
    loss = -torch.mean(elbo(log_px, kl, beta))
    auxiliary = getattr(output, "auxiliary_loss", None)
    if auxiliary is not None:
        loss = loss + torch.mean(auxiliary)
    return loss


class NegativeELBO(nn.Module):
    """Training criterion: the batch mean of ``-(log p(x|z) - beta * KL)``.

    A module's ``auxiliary_loss`` (a field of its output) is added, see
    :func:`negative_elbo_loss`.

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import NegativeELBO
    >>> NegativeELBO(beta=1.0)(torch.tensor([-10.0, -20.0]), torch.tensor([1.0, 3.0]))
    tensor(17.)
    """

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    def forward(self, log_px, kl, output=None, y=None):
        """Return the mean negative ELBO of a batch as a scalar tensor.

        ``output`` is the module's forward output (its ``auxiliary_loss`` is
        added when set); ``y`` is accepted so that every criterion takes the
        same arguments.
        """
        return negative_elbo_loss(log_px, kl, self.beta, output)
