"""A VAE with a classification head on its latent code."""

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import mlp
from ._losses import elbo
from ._vae import VAE


class SemiSupervisedVAE(VAE):
    """A :class:`VAE` whose latent code also feeds a small dense classifier.

    In training mode the head sees the sampled code (which regularises it,
    like noise injection); in eval mode it sees the posterior mean.

    Parameters
    ----------
    encoder, decoder, likelihood : nn.Module
        As for :class:`VAE`.
    n_classes : int
        Number of classes.
    latent_dim : int
        Size of the latent code.
    head_hidden_dims : tuple of int, default=(128,)
        Widths of the head's hidden layers.
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood,
        n_classes,
        latent_dim,
        head_hidden_dims=(128,),
    ):
        super().__init__(encoder, decoder, likelihood)
        self.head = mlp(
            [latent_dim, *head_hidden_dims, n_classes], final_activation=False
        )

    def forward(self, x):
        """Return ``(params, mu, logvar, logits)``."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar, self.head(z)

    def classify(self, x):
        """Return class logits from the posterior mean of ``x``."""
        return self.head(self.encode(x)[0])


class SemiSupervisedLoss(nn.Module):
    """Negative ELBO on every sample plus weighted cross-entropy on labeled ones.

    ``loss = mean(-ELBO) + classifier_weight * n_features * mean(CE_labeled)``.
    The cross-entropy is scaled by the number of input features because the
    ELBO's reconstruction term is a sum over them: the same
    ``classifier_weight`` then balances the two terms for small and large
    inputs alike. Samples labeled -1 contribute only to the ELBO (Kingma et
    al. 2014, "Semi-supervised learning with deep generative models").

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term.
    classifier_weight : float, default=1.0
        Weight of the cross-entropy per input feature.
    n_features : int, default=1
        Number of input features.
    """

    def __init__(self, beta=1.0, classifier_weight=1.0, n_features=1):
        super().__init__()
        self.beta = beta
        self.classifier_weight = classifier_weight
        self.n_features = n_features

    def forward(self, log_px, kl, logits=None, y=None):
        """Return the scalar loss of a batch; labels -1 mark unlabeled rows."""
        loss = -torch.mean(elbo(log_px, kl, self.beta))
        if y is None:
            return loss
        labeled = y >= 0
        if not torch.any(labeled):
            return loss
        cross_entropy = F.cross_entropy(logits[labeled], y[labeled])
        return loss + self.classifier_weight * self.n_features * cross_entropy
