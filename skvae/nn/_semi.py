"""A VAE with a classification head on its latent code."""

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import mlp
from ._losses import negative_elbo_loss
from ._vae import VAE, VAEOutput


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
    vat_eps : float, default=0.0
        Radius (L2 norm over a whole input) of the virtual adversarial
        perturbation; see :func:`virtual_adversarial_kl`. In training mode
        with ``vat_eps > 0`` the forward pass also returns each row's
        virtual adversarial divergence; ``0`` skips it.

    Examples
    --------
    :func:`make_vae` with ``n_classes`` builds one (as ``VAEClassifier`` does).

    >>> from skvae.nn import make_vae
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)  # a batch of 3 8x8 images in [0, 1]
    >>> vae = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(8,), n_classes=10)
    >>> tuple(vae(x).logits.shape), tuple(vae.classify(x).shape)
    ((3, 10), (3, 10))
    """

    def __init__(
        self,
        encoder,
        decoder,
        likelihood,
        n_classes,
        latent_dim,
        head_hidden_dims=(128,),
        vat_eps=0.0,
    ):
        super().__init__(encoder, decoder, likelihood)
        self.head = mlp(
            [latent_dim, *head_hidden_dims, n_classes], final_activation=False
        )
        self.vat_eps = vat_eps

    def forward(self, x):
        """Return a :class:`VAEOutput` with the head's logits.

        ``logits`` come from the (sampled) latent code, ``logits_at_mean``
        from the posterior mean; in eval mode the two are equal. The loss
        may use the second as a teacher for unlabeled samples.
        ``adversarial`` holds each row's virtual adversarial divergence in
        training mode with ``vat_eps > 0``, and is None otherwise.
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        logits = self.head(z)
        params = self.decode(z)
        if not self.training:
            return VAEOutput(params, mu, logvar, logits, logits)
        logits_at_mean = self.head(mu)
        adversarial = None
        if self.vat_eps > 0:
            adversarial = virtual_adversarial_kl(
                self.classify, x, logits_at_mean, self.vat_eps
            )
        return VAEOutput(params, mu, logvar, logits, logits_at_mean, adversarial)

    def classify(self, x):
        """Return class logits from the posterior mean of ``x``."""
        return self.head(self.encode_mean(x))


def virtual_adversarial_kl(classify, x, logits, eps, xi=None):
    """Per-row KL divergence of a classifier's prediction under an adversarial step.

    Virtual adversarial training (Miyato et al. 2018, "Virtual adversarial
    training: a regularization method for supervised and semi-supervised
    learning") makes the prediction smooth around every input, labeled or
    not: it finds the perturbation ``r`` of L2 norm ``eps`` (over a whole
    row) that changes the predicted distribution most, estimated by one
    power iteration from a random direction, and returns
    ``KL(p(y|x) || p(y|x + r))``. The clean prediction is a constant target;
    the gradient flows through the perturbed one. No knowledge of the input
    domain (as image augmentations need) is involved.

    Parameters
    ----------
    classify : callable
        Maps a batch shaped like ``x`` to class logits.
    x : tensor of shape (n, ...)
        Inputs.
    logits : tensor of shape (n, n_classes)
        ``classify(x)``, the clean prediction.
    eps : float
        L2 norm of the adversarial perturbation of each row.
    xi : float, default=None
        Length of the finite-difference step of the power iteration;
        ``None`` means ``eps / 4``.

    Returns
    -------
    kl : tensor of shape (n,)
        The divergence of each row.
    """
    xi = eps / 4 if xi is None else xi
    target = F.softmax(logits.detach(), dim=1)
    probe = (xi * _unit_rows(torch.randn_like(x))).requires_grad_()
    (direction,) = torch.autograd.grad(
        _kl_to(target, classify(x.detach() + probe)).sum(), probe
    )
    return _kl_to(target, classify(x + eps * _unit_rows(direction)))


def _kl_to(target, logits):
    """Per-row ``KL(target || softmax(logits))``."""
    log_q = F.log_softmax(logits, dim=1)
    return torch.sum(target * (torch.log(target.clamp_min(1e-12)) - log_q), dim=1)


def _unit_rows(d):
    """Scale each row of ``d`` (over all its trailing dimensions) to L2 norm 1."""
    norms = d.flatten(start_dim=1).norm(dim=1).clamp_min(1e-12)
    return d / norms.view(-1, *([1] * (d.dim() - 1)))


class SemiSupervisedLoss(nn.Module):
    """Negative ELBO on every sample plus weighted cross-entropy on labeled ones.

    ``loss = mean(-ELBO) + classifier_weight * n_features * classification``
    with ``classification = mean(CE_labeled) + unlabeled_weight *
    pseudo_label_loss``. The cross-entropy is scaled by the number of input
    features because the ELBO's reconstruction term is a sum over them: the
    same ``classifier_weight`` then balances the two terms for small and
    large inputs alike. Samples labeled -1 contribute to the ELBO (Kingma et
    al. 2014, "Semi-supervised learning with deep generative models") and,
    with ``unlabeled_weight > 0``, through confident pseudo-labels: the
    prediction from the posterior mean, where its probability reaches
    ``confidence_threshold``, is the target of the prediction from the
    sampled code (a FixMatch-style consistency, Sohn et al. 2020, with the
    latent noise as the perturbation). A module's per-row virtual adversarial
    divergence (:func:`virtual_adversarial_kl`), when given, adds its mean
    over all rows to ``classification`` with weight 1, as in Miyato et al.
    The defaults are those of :class:`~skvae.VAEClassifier`.

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term.
    classifier_weight : float, default=1.0
        Weight of the cross-entropy per input feature.
    n_features : int, default=1
        Number of input features.
    unlabeled_weight : float, default=1.0
        Weight of the pseudo-label cross-entropy on unlabeled samples,
        relative to the labeled one; 0 turns it off.
    confidence_threshold : float, default=0.8
        Minimum predicted probability for a pseudo-label to count.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import SemiSupervisedLoss, make_vae
    >>> import torch
    >>> x = torch.rand(3, 1, 8, 8)  # a batch of 3 8x8 images in [0, 1]
    >>> vae = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(8,), n_classes=10)
    >>> out = vae(x)
    >>> y = torch.tensor([3, -1, -1])  # -1 = unlabeled
    >>> loss = SemiSupervisedLoss(n_features=64)(*vae.elbo_terms(x, out), out, y)
    >>> loss.ndim
    0
    """

    def __init__(
        self,
        beta=1.0,
        classifier_weight=1.0,
        n_features=1,
        unlabeled_weight=1.0,
        confidence_threshold=0.8,
    ):
        super().__init__()
        self.beta = beta
        self.classifier_weight = classifier_weight
        self.n_features = n_features
        self.unlabeled_weight = unlabeled_weight
        self.confidence_threshold = confidence_threshold

    def forward(self, log_px, kl, output=None, y=None):
        """Return the scalar loss of a batch; labels -1 mark unlabeled rows.

        ``output`` is the module's :class:`VAEOutput`; the loss reads its
        ``logits``, ``logits_at_mean`` and ``adversarial`` fields. Without
        ``y`` (scoring a validation split without labels) it is the negative
        ELBO alone.
        """
        loss = negative_elbo_loss(log_px, kl, self.beta, output)
        if y is None:
            return loss
        labeled = y >= 0
        logits, teacher = output.logits, output.logits_at_mean
        classification = logits.new_zeros(())
        if torch.any(labeled):
            classification = F.cross_entropy(logits[labeled], y[labeled])
        if self.unlabeled_weight > 0 and teacher is not None:
            if not torch.all(labeled):
                classification = classification + self.unlabeled_weight * (
                    pseudo_label_loss(
                        logits[~labeled], teacher[~labeled], self.confidence_threshold
                    )
                )
        if output.adversarial is not None:
            classification = classification + torch.mean(output.adversarial)
        return loss + self.classifier_weight * self.n_features * classification


def pseudo_label_loss(logits, teacher_logits, threshold):
    """Cross-entropy of ``logits`` to the confident argmax of ``teacher_logits``.

    Averaged over all rows, with zero for rows whose teacher probability is
    below ``threshold``; no gradient flows into the teacher.
    """
    confidence, pseudo_labels = F.softmax(teacher_logits.detach(), dim=1).max(dim=1)
    per_row = F.cross_entropy(logits, pseudo_labels, reduction="none")
    return torch.mean(per_row * (confidence >= threshold))
