"""The training layer: a skorch ``NeuralNet`` whose loss is the negative ELBO."""

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from .nn import NegativeELBO
from .utils._distributed import world_size


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

    Inside an initialized ``torch.distributed`` process group of several
    processes, training is data-parallel through
    :class:`~torch.nn.parallel.DistributedDataParallel`: each process takes
    its share of every shuffled epoch (a :class:`DistributedSampler`) and
    ``batch_size`` stays the *global* batch, split across the processes, so
    the same settings train the same model on one process or many. Scoring
    and validation use the plain module on each process.
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

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's fit loop, through DDP inside a process group."""
        if world_size() == 1:
            return super().fit_loop(X, y, epochs, **fit_params)
        device_ids = [self.device] if torch.device(self.device).type == "cuda" else None
        # Set past skorch's __setattr__, which would register the wrapper as
        # a second module of the net (and save it in checkpoints and pickles).
        # A classifier head gets no gradient from a batch without labels, nor
        # while the VAE trains before a frozen head; DDP must be told, and
        # warns when told needlessly.
        ddp_module = DistributedDataParallel(
            self.module_,
            device_ids,
            find_unused_parameters=hasattr(self.module_, "head"),
        )
        object.__setattr__(self, "_ddp_module", ddp_module)
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        finally:
            object.__delattr__(self, "_ddp_module")

    def infer(self, x, **fit_params):
        """Forward pass; training steps go through DDP so gradients sync."""
        ddp_module = getattr(self, "_ddp_module", None)
        if ddp_module is None or not self.module_.training:
            return super().infer(x, **fit_params)
        return ddp_module(to_tensor(x, device=self.device), **fit_params)

    def get_iterator(self, dataset, training=False):
        """Batches of ``dataset``; in a process group, this process's share."""
        processes = world_size()
        if not training or processes == 1:
            return super().get_iterator(dataset, training)
        kwargs = self.get_params_for("iterator_train")
        shuffle = kwargs.pop("shuffle", False)
        batch_size = kwargs.pop("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(dataset)
        # Same seed on every process (the estimator agrees on it), so the
        # shards of one epoch partition the data.
        sampler = DistributedSampler(
            dataset, shuffle=shuffle, seed=torch.initial_seed() % 2**31
        )
        return self.iterator_train(
            dataset, batch_size=-(-batch_size // processes), sampler=sampler, **kwargs
        )

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one epoch; a distributed sampler reshuffles for each epoch."""
        sampler = getattr(iterator, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(len(self.history))
        return super().run_single_epoch(
            iterator, training, prefix, step_fn, **fit_params
        )

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """Mean negative ELBO of the batch ``X`` given the module output ``y_pred``."""
        x = to_tensor(X, device=self.device)
        log_px, kl = self.module_.elbo_terms(x, y_pred)
        if y_true is None:
            return self.criterion_(log_px, kl)
        # Semi-supervised: the module's outputs after (params, mu, logvar) are
        # the class logits and the logits at the posterior mean.
        logits, *teacher = y_pred[3:]
        y_true = to_tensor(y_true, self.device)
        return self.criterion_(log_px, kl, logits, y_true, *teacher)
