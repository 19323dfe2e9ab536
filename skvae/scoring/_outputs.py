"""Per-sample outputs that single estimators need from their modules.

The classifier's probabilities, reconstructions, the dual VAE's background.
"""

from torch.nn import functional as F

from ._batches import map_batches


def class_probabilities(module, X, **kwargs):
    """Class probabilities of a :class:`~skvae.nn.SemiSupervisedVAE`'s head.

    The head sees the posterior mean. Keyword arguments go to
    :func:`map_batches`.
    """
    return map_batches(
        lambda module, x: F.softmax(module.classify(x), dim=1), module, X, **kwargs
    )


def reconstructed_means(module, X, **kwargs):
    """Return decoder means at the posterior mean, E[x | z = mu(x)], one flat row each.

    Keyword arguments go to :func:`map_batches`.
    """

    def reconstruct(module, x):
        params = module.reconstruction_params(x)
        return module.likelihood.mean(params).reshape(len(x), -1)

    return map_batches(reconstruct, module, X, **kwargs)


def background_reconstructions(module, X, **kwargs):
    """Return a :class:`~skvae.nn.DualVAE`'s background means at the posterior mean.

    The reconstructions of the pooled target g(x), one flat row each.
    Keyword arguments go to :func:`map_batches`.
    """

    def reconstruct(module, x):
        mu, _ = module.encode(x)
        params = module.decode_background(mu)
        return module.background_likelihood.mean(params).reshape(len(x), -1)

    return map_batches(reconstruct, module, X, **kwargs)


def background_targets(module, X, **kwargs):
    """Return a :class:`~skvae.nn.DualVAE`'s pooled targets g(x), one flat row each.

    Keyword arguments go to :func:`map_batches`.
    """

    def target(module, x):
        return module.background_target(x).reshape(len(x), -1)

    return map_batches(target, module, X, **kwargs)
