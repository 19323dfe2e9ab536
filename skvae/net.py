"""The training layer: skorch nets for the VAE and the transformation classifier."""

from collections.abc import Mapping

import torch
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping
from skorch.dataset import unpack_data
from skorch.utils import to_tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ._data import ArrayDataset, keep_batch, random_shifts
from .nn import NegativeELBO
from .nn._transformations import random_transformations, transform_images
from .utils._distributed import world_size


class DataParallelNet(NeuralNet):
    """skorch net that trains data-parallel inside a ``torch.distributed`` group.

    Inside an initialized process group of several processes, training runs
    through :class:`~torch.nn.parallel.DistributedDataParallel`: each process
    takes its share of every shuffled epoch (a :class:`DistributedSampler`)
    and ``batch_size`` stays the *global* batch, split across the processes,
    so the same settings train the same model on one process or many.
    Scoring and validation use the plain module on each process. Batches come
    from :class:`ArrayDataset` without per-sample collation, and there is no
    validation split unless one is given.
    """

    def __init__(self, module, *args, train_split=None, dataset=ArrayDataset, **kwargs):
        kwargs.setdefault("iterator_train__collate_fn", keep_batch)
        kwargs.setdefault("iterator_valid__collate_fn", keep_batch)
        super().__init__(
            module, *args, train_split=train_split, dataset=dataset, **kwargs
        )

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """Run skorch's fit loop, through DDP inside a process group.

        Sets ``interrupted_``: whether Ctrl-C (``KeyboardInterrupt``) ended
        the loop early. skorch's ``partial_fit`` swallows it and keeps the
        model trained so far; the estimator reads this flag to say so.
        skorch's ``EarlyStopping`` ends the loop with the same exception,
        which is no interruption.
        """
        self.interrupted_ = False
        try:
            return self._fit_loop(X, y, epochs, **fit_params)
        except KeyboardInterrupt:
            self.interrupted_ = not self._stopped_early()
            raise

    def _stopped_early(self):
        """Whether an ``EarlyStopping`` callback has just ended training."""
        return any(
            isinstance(callback, EarlyStopping)
            and getattr(callback, "misses_", 0) >= callback.patience
            for _, callback in self.callbacks_
        )

    def _fit_loop(self, X, y=None, epochs=None, **fit_params):
        if world_size() == 1:
            return super().fit_loop(X, y, epochs, **fit_params)
        device_ids = [self.device] if torch.device(self.device).type == "cuda" else None
        # A classifier head gets no gradient from a batch without labels, nor
        # while the VAE trains before a frozen head; DDP must be told, and
        # warns when told needlessly.
        ddp_module = DistributedDataParallel(
            self.module_,
            device_ids,
            find_unused_parameters=hasattr(self.module_, "head"),
        )
        # skorch refuses a torch module set outside its initialize_* methods
        # and would register one for pickling; the wrapper lives only for
        # this loop, so it is held in a plain dict, which skorch ignores.
        self._training_wrappers = {"ddp": ddp_module}
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        finally:
            self._training_wrappers = {}

    def infer(self, x, **fit_params):
        """Forward pass; training steps go through DDP so gradients sync."""
        ddp_module = getattr(self, "_training_wrappers", {}).get("ddp")
        if ddp_module is None or not self.module_.training:
            return super().infer(x, **fit_params)
        x = to_tensor(x, device=self.device)
        if isinstance(x, Mapping):
            return ddp_module(**x, **fit_params)
        return ddp_module(x, **fit_params)

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


class VAENet(DataParallelNet):
    """skorch net that trains a :class:`skvae.nn.VAE` by minimising the negative ELBO.

    It takes every ``NeuralNet`` argument; the defaults differ only where a
    VAE needs it: the criterion is :class:`skvae.nn.NegativeELBO`, the
    optimizer Adam, batches come from :class:`ArrayDataset` without
    per-sample collation, and there is no validation split unless one is
    given. ``fit(X, y=None)`` trains without targets; with ``y`` (labels, -1
    for unlabeled rows) the module must fill the ``logits`` of its
    :class:`~skvae.nn.VAEOutput` and the criterion read them, as
    :class:`skvae.nn.SemiSupervisedLoss` does. Training is data-parallel
    inside a process group (:class:`DataParallelNet`).

    Parameters
    ----------
    module : type or torch.nn.Module
        The VAE, as for skorch's ``NeuralNet``.
    *args, **kwargs
        Passed to :class:`DataParallelNet`.
    criterion, optimizer
        As for skorch's ``NeuralNet``; by default the negative ELBO and Adam.
    max_shift : int, default=0
        Largest shift of a training image along each axis, in pixels (zero
        fill, drawn per image and step from torch's global generator; image
        batches only). The VAE then learns the shifted images too: its
        codes of an image and of the image moved by a pixel or two lie
        close, and its likelihood spreads over both. Scoring never shifts.
    """

    # Nets pickled before max_shift existed trained without shifts.
    max_shift = 0

    def __init__(
        self,
        module,
        *args,
        criterion=NegativeELBO,
        optimizer=torch.optim.Adam,
        max_shift=0,
        **kwargs,
    ):
        super().__init__(
            module, *args, criterion=criterion, optimizer=optimizer, **kwargs
        )
        self.max_shift = max_shift

    def train_step_single(self, batch, **fit_params):
        """One step on the batch, its images first shifted by up to ``max_shift``."""
        Xi, yi = unpack_data(batch)
        if self.max_shift and not isinstance(Xi, Mapping):
            Xi = to_tensor(Xi, device=self.device)
            if Xi.dim() == 4:
                Xi = random_shifts(Xi, self.max_shift)
        return super().train_step_single((Xi, yi), **fit_params)

    def get_loss(self, y_pred, y_true=None, X=None, training=False):
        """Criterion of the batch ``X`` given the module's output ``y_pred``.

        The module computes the ELBO's terms; the criterion takes them with
        the whole :class:`~skvae.nn.VAEOutput` and the targets (labels, -1
        for unlabeled rows, or None), and reads the fields it needs by name.
        """
        x = to_tensor(X, device=self.device)
        log_px, kl = self.module_.elbo_terms(x, y_pred)
        if y_true is not None:
            y_true = to_tensor(y_true, self.device)
        return self.criterion_(log_px, kl, output=y_pred, y=y_true)


class TransformationNet(DataParallelNet):
    """skorch net that trains a :class:`~skvae.nn.TransformationClassifier`.

    Each training step shifts every image of the batch by up to
    ``max_shift`` pixels, transforms it by a random one of the module's
    transformations (both drawn from torch's global generator) and
    minimises the cross-entropy of predicting which; ``fit(X)`` needs no
    targets. Training is data-parallel inside a process group
    (:class:`DataParallelNet`).

    Parameters
    ----------
    module : type or torch.nn.Module
        The :class:`~skvae.nn.TransformationClassifier`, as for skorch's
        ``NeuralNet``.
    *args, **kwargs
        Passed to :class:`DataParallelNet`.
    max_shift : int, default=0
        Largest shift of a training image along each axis, in pixels (zero
        fill). The classifier then tells the transformations apart from the
        shape of the content, not from where it sits; scoring does not
        shift.
    """

    # Nets pickled before max_shift existed trained without shifts.
    max_shift = 0

    def __init__(
        self,
        module,
        *args,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        max_shift=0,
        **kwargs,
    ):
        super().__init__(
            module, *args, criterion=criterion, optimizer=optimizer, **kwargs
        )
        self.max_shift = max_shift

    def train_step_single(self, batch, **fit_params):
        """One step on a randomly transformed batch; the targets are the transforms."""
        self._set_training(True)
        Xi, _ = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        x = random_shifts(x, self.max_shift)
        x, labels = random_transformations(x, self.module_.n_transformations)
        y_pred = self.infer(x, **fit_params)
        loss = self.get_loss(y_pred, labels, X=x, training=True)
        loss.backward()
        return {"loss": loss, "y_pred": y_pred}

    def validation_step(self, batch, **fit_params):
        """Loss over every transformation of each validation image.

        Every copy rather than a random one, so that the validation loss
        that early stopping compares moves only with the weights.
        """
        self._set_training(False)
        Xi, _ = unpack_data(batch)
        x = to_tensor(Xi, device=self.device)
        n = self.module_.n_transformations
        copies = torch.cat([transform_images(x, index, n) for index in range(n)])
        labels = torch.arange(n, device=x.device).repeat_interleave(len(x))
        with torch.no_grad():
            y_pred = self.infer(copies, **fit_params)
            loss = self.get_loss(y_pred, labels, X=copies, training=False)
        return {"loss": loss, "y_pred": y_pred}
