"""The training layer: a skorch ``NeuralNet`` whose loss is the negative ELBO."""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor

from .nn import NegativeELBO


class ArrayDataset(torch.utils.data.Dataset):
    """Dataset over in-memory arrays that hands out whole mini-batches.

    ``__getitems__`` lets the ``DataLoader`` fetch a batch with one tensor
    index instead of one Python call and a collate per sample.

    Parameters
    ----------
    X : array-like or tensor of shape (n_samples, ...)
        Inputs, already shaped for the module.
    y : array-like or tensor of shape (n_samples,), default=None
        Targets; ``None`` for unsupervised training.
    """

    def __init__(self, X, y=None):
        self.X = torch.as_tensor(_writeable(X))
        self.y = None if y is None else torch.as_tensor(_writeable(y))

    def __len__(self):
        return len(self.X)

    def __getitem__(self, index):
        return self.__getitems__([index])

    def __getitems__(self, indices):
        indices = torch.as_tensor(indices)
        y = None if self.y is None else self.y[indices]
        return self.X[indices], y


def _writeable(array):
    """Copy a read-only NumPy array: torch cannot share its memory safely."""
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        return array.copy()
    return array


def keep_batch(batch):
    """Collate function for :class:`ArrayDataset`: the batch is already stacked."""
    return batch


class VAENet(NeuralNet):
    """skorch net that trains a :class:`skvae.nn.VAE` by minimising the negative ELBO.

    It takes every ``NeuralNet`` argument; the defaults differ only where a
    VAE needs it: the criterion is :class:`skvae.nn.NegativeELBO`, the
    optimizer Adam, batches come from :class:`ArrayDataset` without
    per-sample collation, and there is no validation split unless one is
    given. ``fit(X, y=None)`` trains without targets; with ``y`` (labels, -1
    for unlabeled rows) the module must return class logits last and the
    criterion take them, as :class:`skvae.nn.SemiSupervisedLoss` does.
    """

    def __init__(
        self,
        module,
        *args,
        criterion=NegativeELBO,
        optimizer=torch.optim.Adam,
        train_split=None,
        dataset=ArrayDataset,
        **kwargs,
    ):
        kwargs.setdefault("iterator_train__collate_fn", keep_batch)
        kwargs.setdefault("iterator_valid__collate_fn", keep_batch)
        super().__init__(
            module,
            *args,
            criterion=criterion,
            optimizer=optimizer,
            train_split=train_split,
            dataset=dataset,
            **kwargs,
        )

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """Mean negative ELBO of the batch ``X`` given the module output ``y_pred``."""
        x = to_tensor(X, device=self.device)
        log_px, kl = self.module_.elbo_terms(x, y_pred)
        if y_true is None:
            return self.criterion_(log_px, kl)
        # Semi-supervised: the module's last output holds the class logits.
        return self.criterion_(log_px, kl, y_pred[-1], to_tensor(y_true, self.device))
