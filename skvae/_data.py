"""Training data for the skorch layer: datasets, batch samplers, augmentation.

Everything that decides which rows a training step sees lives here, next to
the skorch net (:mod:`skvae.net`); :mod:`skvae.nn` holds modules and losses
only.
"""

import numpy as np
import torch
from torch.nn import functional as F

from ._validation import ValidatedRows


class ArrayDataset(torch.utils.data.Dataset):
    """Dataset over in-memory arrays that hands out whole mini-batches.

    ``__getitems__`` lets the ``DataLoader`` fetch a batch with one tensor
    index instead of one Python call and a collate per sample.

    Parameters
    ----------
    X : array-like, tensor or ValidatedRows of shape (n_samples, ...)
        Inputs, already shaped for the module; :class:`ValidatedRows` are
        read one batch at a time.
    y : array-like or tensor of shape (n_samples,), default=None
        Targets; ``None`` for unsupervised training.
    """

    def __init__(self, X, y=None):
        # Rows of a large array stay on disk (or wherever they are) and are
        # read and converted one batch at a time.
        self.X = X if isinstance(X, ValidatedRows) else torch.as_tensor(_writeable(X))
        self.y = None if y is None else torch.as_tensor(_writeable(y))

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.__getitems__([index])

    def __getitems__(self, indices):
        y = None if self.y is None else self.y[torch.as_tensor(indices)]
        if isinstance(self.X, ValidatedRows):
            return torch.from_numpy(self.X[np.asarray(indices)]), y
        return self.X[torch.as_tensor(indices)], y


def _writeable(array):
    """Copy a read-only NumPy array: torch cannot share its memory safely."""
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        return array.copy()
    return array


def keep_batch(batch):
    """Collate function for :class:`ArrayDataset`: the batch is already stacked."""
    return batch


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
    drop_last : bool, default=False
        Leave out the epoch's last batch when it is incomplete and at least
        one full batch remains (as ``DataLoader(drop_last=True)``).
    """

    def __init__(self, y, batch_size, n_labeled, drop_last=False):
        y = torch.as_tensor(y)
        self.labeled = torch.nonzero(y >= 0).flatten()
        self.unlabeled = torch.nonzero(y < 0).flatten()
        self.n_labeled = n_labeled
        self.n_unlabeled = batch_size - n_labeled
        self.drop_last = drop_last

    def __len__(self):
        n_full, rest = divmod(len(self.unlabeled), self.n_unlabeled)
        if rest and not (self.drop_last and n_full):
            return n_full + 1
        return n_full

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
    drop_last : bool, default=False
        Leave out each epoch's incomplete last batch, mixed or plain (with
        ``batch_norm`` a batch of one row cannot be normalised).
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
        drop_last=False,
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
            sampler = LabeledBatchSampler(y, batch_size, n_labeled, drop_last)
            super().__init__(dataset, batch_sampler=sampler, **kwargs)
        else:
            super().__init__(
                dataset,
                batch_size=batch_size,
                shuffle=shuffle,
                drop_last=drop_last,
                **kwargs,
            )


def _dataset_targets(dataset):
    """Return the targets of a dataset (or of its ``Subset``) as a tensor, or None."""
    if isinstance(dataset, torch.utils.data.Subset):
        y = _dataset_targets(dataset.dataset)
        return None if y is None else y[torch.as_tensor(dataset.indices)]
    y = getattr(dataset, "y", None)
    return None if y is None else torch.as_tensor(y)


def random_shifts(x, max_shift):
    """Shift each image by up to ``max_shift`` pixels along each axis.

    The offsets are drawn from torch's global generator, which the
    estimators seed.

    Parameters
    ----------
    x : tensor of shape (n, C, H, W)
        Images; the borders uncovered by a shift are zero.
    max_shift : int
        Largest shift along each axis, in pixels; 0 returns ``x`` itself.

    Returns
    -------
    x_shifted : tensor of shape (n, C, H, W)
        The shifted images (a new tensor unless ``max_shift`` is 0).
    """
    if max_shift == 0:
        return x
    n, channels, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), device=x.device)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)
    # Each image's window of the padded images: first its rows, then columns.
    index = rows.view(n, 1, h, 1).expand(n, channels, h, padded.shape[3])
    out = padded.gather(2, index)
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, channels, h, w))


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
    out = random_shifts(x, max_shift)
    if out is x:  # no shift: the flips below must not write into the input
        out = x.clone()
    flip = torch.rand(len(x)) < 0.5
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
