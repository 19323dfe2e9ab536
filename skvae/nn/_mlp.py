"""Fully connected encoder and decoder for tabular (non-image) input."""

from torch import nn

from ._blocks import Dense, mlp


class MLPEncoder(nn.Module):
    """Dense layers, then linear heads for the posterior mean and log-variance.

    Parameters
    ----------
    n_features : int
        Number of input features.
    latent_dim : int
        Size of the latent code.
    hidden_dims : tuple of int
        Widths of the hidden layers.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Activation of the hidden layers.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import MLPEncoder
    >>> mu, logvar = MLPEncoder(10, latent_dim=2, hidden_dims=(16,))(torch.rand(4, 10))
    >>> tuple(mu.shape)
    (4, 2)
    """

    def __init__(
        self,
        n_features,
        latent_dim,
        hidden_dims=(256, 128),
        *,
        activation="leaky_relu",
    ):
        super().__init__()
        self.features = mlp([n_features, *hidden_dims], activation=activation)
        self.mu = Dense(hidden_dims[-1], latent_dim)
        self.logvar = Dense(hidden_dims[-1], latent_dim)

    def forward(self, x):
        """Return ``(mu, logvar)`` of the Gaussian posterior q(z|x)."""
        h = self.features(x)
        return self.mu(h), self.logvar(h)

    def mean(self, x):
        """Return the posterior mean ``mu`` alone, without the log-variance head."""
        return self.mu(self.features(x))


class MLPDecoder(nn.Module):
    """Dense layers mirroring :class:`MLPEncoder`, with a linear output layer.

    Parameters
    ----------
    n_features : int
        Number of features to reconstruct.
    latent_dim : int
        Size of the latent code.
    hidden_dims : tuple of int
        Widths of the encoder's hidden layers; the decoder mirrors them.
    activation : {"leaky_relu", "relu"}, default="leaky_relu"
        Activation of the hidden layers.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import MLPDecoder
    >>> tuple(MLPDecoder(10, latent_dim=2, hidden_dims=(16,))(torch.zeros(4, 2)).shape)
    (4, 10)
    """

    def __init__(
        self,
        n_features,
        latent_dim,
        hidden_dims=(256, 128),
        *,
        activation="leaky_relu",
    ):
        super().__init__()
        self.net = mlp(
            [latent_dim, *hidden_dims[::-1], n_features],
            final_activation=False,
            activation=activation,
        )

    def forward(self, z):
        """Return the likelihood parameters, shape ``(n, n_features)``."""
        return self.net(z)
