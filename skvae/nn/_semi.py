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
    vat_eps : float, default=0.0
        Radius (L2 norm over a whole input) of the virtual adversarial
        perturbation; see :func:`virtual_adversarial_kl`. In training mode
        with ``vat_eps > 0`` the forward pass also returns each row's
        virtual adversarial divergence; ``0`` skips it.
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
        """Return ``(params, mu, logvar, logits, logits_at_mean, adversarial)``.

        ``logits`` come from the (sampled) latent code, ``logits_at_mean``
        from the posterior mean; in eval mode the two are equal. The loss
        may use the second as a teacher for unlabeled samples.
        ``adversarial`` holds each row's virtual adversarial divergence in
        training mode with ``vat_eps > 0``, and zeros otherwise.
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        logits = self.head(z)
        if not self.training:
            return self.decode(z), mu, logvar, logits, logits, mu.new_zeros(len(x))
        logits_at_mean = self.head(mu)
        adversarial = mu.new_zeros(len(x))
        if self.vat_eps > 0:
            adversarial = virtual_adversarial_kl(
                self.classify, x, logits_at_mean, self.vat_eps
            )
        return self.decode(z), mu, logvar, logits, logits_at_mean, adversarial

    def classify(self, x):
        """Return class logits from the posterior mean of ``x``."""
        return self.head(self.encode(x)[0])


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

    Parameters
    ----------
    beta : float, default=1.0
        Weight of the KL term.
    classifier_weight : float, default=1.0
        Weight of the cross-entropy per input feature.
    n_features : int, default=1
        Number of input features.
    unlabeled_weight : float, default=0.0
        Weight of the pseudo-label cross-entropy on unlabeled samples,
        relative to the labeled one; 0 turns it off.
    confidence_threshold : float, default=0.95
        Minimum predicted probability for a pseudo-label to count.
    """

    def __init__(
        self,
        beta=1.0,
        classifier_weight=1.0,
        n_features=1,
        unlabeled_weight=0.0,
        confidence_threshold=0.95,
    ):
        super().__init__()
        self.beta = beta
        self.classifier_weight = classifier_weight
        self.n_features = n_features
        self.unlabeled_weight = unlabeled_weight
        self.confidence_threshold = confidence_threshold

    def forward(
        self, log_px, kl, logits=None, y=None, logits_at_mean=None, adversarial=None
    ):
        """Return the scalar loss of a batch; labels -1 mark unlabeled rows."""
        loss = -torch.mean(elbo(log_px, kl, self.beta))
        if y is None:
            return loss
        labeled = y >= 0
        classification = logits.new_zeros(())
        if torch.any(labeled):
            classification = F.cross_entropy(logits[labeled], y[labeled])
        if self.unlabeled_weight > 0 and logits_at_mean is not None:
            if not torch.all(labeled):
                classification = classification + self.unlabeled_weight * (
                    pseudo_label_loss(
                        logits[~labeled],
                        logits_at_mean[~labeled],
                        self.confidence_threshold,
                    )
                )
        if adversarial is not None:
            classification = classification + torch.mean(adversarial)
        return loss + self.classifier_weight * self.n_features * classification


def pseudo_label_loss(logits, teacher_logits, threshold):
    """Cross-entropy of ``logits`` to the confident argmax of ``teacher_logits``.

    Averaged over all rows, with zero for rows whose teacher probability is
    below ``threshold``; no gradient flows into the teacher.
    """
    confidence, pseudo_labels = F.softmax(teacher_logits.detach(), dim=1).max(dim=1)
    per_row = F.cross_entropy(logits, pseudo_labels, reduction="none")
    return torch.mean(per_row * (confidence >= threshold))


class LabeledBatchSampler(torch.utils.data.Sampler):
    """Mini-batches that each hold a fixed number of labeled rows.

    With few labels, plain shuffling leaves most batches without a labeled
    row, so the cross-entropy of the joint loss would act on a handful of
    steps per epoch. This sampler fills every batch with ``n_labeled`` rows
    drawn from the labeled ones (reshuffled and reused as often as needed)
    and the rest from the unlabeled ones; an epoch is one pass over the
    unlabeled rows. Shuffling draws from torch's global generator, which the
    estimators seed.

    Parameters
    ----------
    y : tensor of shape (n_samples,)
        Class indices, -1 for unlabeled rows.
    batch_size : int
        Rows per batch.
    n_labeled : int
        Labeled rows per batch, between 1 and ``batch_size - 1``.
    """

    def __init__(self, y, batch_size, n_labeled):
        y = torch.as_tensor(y)
        self.labeled = torch.nonzero(y >= 0).flatten()
        self.unlabeled = torch.nonzero(y < 0).flatten()
        self.n_labeled = n_labeled
        self.n_unlabeled = batch_size - n_labeled

    def __len__(self):
        return -(-len(self.unlabeled) // self.n_unlabeled)

    def __iter__(self):
        unlabeled = self.unlabeled[torch.randperm(len(self.unlabeled))]
        n_needed = len(self) * self.n_labeled
        n_rounds = -(-n_needed // len(self.labeled))
        labeled = torch.cat(
            [self.labeled[torch.randperm(len(self.labeled))] for _ in range(n_rounds)]
        )
        for i in range(len(self)):
            rows_u = unlabeled[i * self.n_unlabeled : (i + 1) * self.n_unlabeled]
            rows_l = labeled[i * self.n_labeled : (i + 1) * self.n_labeled]
            yield torch.cat([rows_l, rows_u]).tolist()


class SemiSupervisedLoader(torch.utils.data.DataLoader):
    """``DataLoader`` that gives every training batch a share of labeled rows.

    skorch builds it as ``iterator_train(dataset, batch_size=..., shuffle=...,
    **iterator_train__kwargs)``. When the dataset has both labeled and
    unlabeled rows and the labeled share is below ``labeled_fraction``, the
    batches come from :class:`LabeledBatchSampler`; otherwise this is a plain
    shuffling ``DataLoader``.

    Parameters
    ----------
    dataset : torch Dataset
        A dataset with a ``y`` attribute (class indices, -1 for unlabeled),
        or a ``Subset`` of one.
    batch_size : int, default=1
        Rows per batch.
    shuffle : bool, default=False
        Shuffle the rows of plain batches (mixed batches are always shuffled).
    labeled_fraction : float, default=0.0
        Minimum share of labeled rows in each batch.
    augment : bool, default=False
        Randomly shift image batches by up to two pixels and mirror half of
        them left to right (see :func:`shift_flip`); only for 4-D image
        input.
    **kwargs
        Passed to ``DataLoader``. With a ``sampler`` (data-parallel training
        passes a ``DistributedSampler``), batches are plain draws from it
        and ``labeled_fraction`` is not applied.
    """

    def __init__(
        self,
        dataset,
        batch_size=1,
        shuffle=False,
        labeled_fraction=0.0,
        augment=False,
        **kwargs,
    ):
        if augment:
            kwargs["collate_fn"] = _AugmentedCollate(kwargs.get("collate_fn"))
        y = _dataset_targets(dataset)
        n_labeled = 0
        if y is not None and 0 < int((y >= 0).sum()) < len(y):
            natural = float((y >= 0).float().mean())
            if natural < labeled_fraction:
                n_labeled = min(
                    max(round(labeled_fraction * batch_size), 1), batch_size - 1
                )
        # A given sampler (DistributedSampler in data-parallel training)
        # decides the rows itself, so batches are plain draws from it.
        if n_labeled and batch_size > 1 and kwargs.get("sampler") is None:
            sampler = LabeledBatchSampler(y, batch_size, n_labeled)
            super().__init__(dataset, batch_sampler=sampler, **kwargs)
        else:
            super().__init__(dataset, batch_size=batch_size, shuffle=shuffle, **kwargs)


def _dataset_targets(dataset):
    """Return the targets of a dataset (or of its ``Subset``) as a tensor, or None."""
    if isinstance(dataset, torch.utils.data.Subset):
        y = _dataset_targets(dataset.dataset)
        return None if y is None else y[torch.as_tensor(dataset.indices)]
    y = getattr(dataset, "y", None)
    return None if y is None else torch.as_tensor(y)


def shift_flip(x, max_shift=2):
    """Shift each image by up to ``max_shift`` pixels and mirror half of them.

    Parameters
    ----------
    x : tensor of shape (n, C, H, W)
        Images; the borders uncovered by a shift are zero.
    max_shift : int, default=2
        Largest shift along each axis, in pixels.

    Returns
    -------
    x_aug : tensor of shape (n, C, H, W)
        The augmented images (a new tensor).
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2)).tolist()
    out = torch.stack(
        [p[:, i : i + h, j : j + w] for p, (i, j) in zip(padded, offsets, strict=True)]
    )
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


class _AugmentedCollate:
    """Collate with ``collate_fn``, then apply :func:`shift_flip` to image inputs."""

    def __init__(self, collate_fn=None):
        self.collate_fn = collate_fn or torch.utils.data.default_collate

    def __call__(self, batch):
        x, y = self.collate_fn(batch)
        if x.dim() == 4:
            x = shift_flip(x)
        return x, y
