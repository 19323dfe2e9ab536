"""The ELBO's terms and the training criterion built on them."""

import torch
from torch import nn


def kl_standard_normal(mu, logvar):
    """Per-sample KL(N(mu, exp(logvar)) || N(0, I)), shape ``(n,)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def elbo(log_px, kl, beta=1.0):
    """Per-sample (beta-weighted) evidence lower bound: ``log_px - beta * kl``."""
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
