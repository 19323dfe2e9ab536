"""skorch callbacks of the training loop: divergence guard, weight averaging."""

import torch
from skorch.callbacks import Callback
from torch.optim.swa_utils import AveragedModel

from .utils._distributed import all_finite


class TrainingDiverged(RuntimeError):
    """Raised inside the training loop when the loss stops being finite."""

    def __init__(self, epoch, loss):
        super().__init__(f"loss became {loss} in epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


class TrainingInterruptedWarning(UserWarning):
    """Ctrl-C stopped the training of a network before its planned epochs.

    skorch ends the training loop on ``KeyboardInterrupt`` and keeps the
    weights trained so far; ``fit`` then finishes with them, warns with this
    class, and sets ``training_interrupted_``. To make Ctrl-C abort ``fit``
    instead (the estimator then stays as it was before), turn the warning
    into an error.

    Examples
    --------
    >>> import warnings
    >>> from skvae import TrainingInterruptedWarning
    >>> warnings.simplefilter("error", TrainingInterruptedWarning)
    >>> warnings.resetwarnings()
    """


class FiniteLossGuard(Callback):
    """Stop training at the first non-finite loss; keep the last good weights.

    A too-large learning rate makes the VAE loss explode to inf or nan, after
    which every score would be nan. This callback copies the module's weights
    at the end of each epoch and raises :class:`TrainingDiverged` at the
    first non-finite batch loss, so the estimator can restore the copy. When
    training ends normally the copy is dropped, so a fitted estimator does
    not carry (and pickle) its weights twice.
    """

    def initialize(self):
        self.last_good_state_ = None
        self.last_good_epoch_ = 0
        return self

    def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
        if loss is not None and not all_finite(loss):
            raise TrainingDiverged(len(net.history), loss.item())

    def on_epoch_end(self, net, **kwargs):
        self.last_good_state_ = {
            name: tensor.detach().clone()
            for name, tensor in net.module_.state_dict().items()
        }
        self.last_good_epoch_ = len(net.history)

    def on_train_end(self, net, **kwargs):
        self.last_good_state_ = None


class WeightAveraging(Callback):
    """Fit to the running mean of the weights over the last epochs of training.

    From epoch ``int(start * max_epochs) + 1`` on, the module's weights after
    every optimizer step enter a running mean that replaces the weights when
    training ends (stochastic weight averaging, Izmailov et al. 2018, with a
    constant learning rate). The mean smooths the step-to-step noise of the
    final weights, which otherwise makes two seeds' results differ more than
    most settings do. Buffers (the learned decoder variance, itself a running
    average) keep their final values.

    Parameters
    ----------
    start : float, default=0.7
        Share of ``max_epochs`` trained before averaging begins, in [0, 1).
    """

    def __init__(self, start=0.7):
        self.start = start

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history) + int(self.start * net.max_epochs)
        self.average_ = None

    def on_batch_end(self, net, training=None, **kwargs):
        if not training or len(net.history) <= self.first_epoch_:
            return
        if self.average_ is None:
            self.average_ = AveragedModel(net.module_)
        self.average_.update_parameters(net.module_)

    def on_train_end(self, net, **kwargs):
        if self.average_ is not None:
            averaged = self.average_.module.parameters()
            with torch.no_grad():
                for param, mean in zip(net.module_.parameters(), averaged, strict=True):
                    param.copy_(mean)
        # The copy has served; it should not travel with the pickled estimator.
        self.average_ = None
