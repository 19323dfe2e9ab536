"""skorch callbacks that keep a training run from ending silently broken."""

from skorch.callbacks import Callback

from .utils._distributed import all_finite


class TrainingDiverged(RuntimeError):
    """Raised inside the training loop when the loss stops being finite."""

    def __init__(self, epoch, loss):
        super().__init__(f"loss became {loss} in epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


class FiniteLossGuard(Callback):
    """Stop training at the first non-finite loss; keep the last good weights.

    A too-large learning rate makes the VAE loss explode to inf or nan, after
    which every score would be nan. This callback copies the module's weights
    at the end of each epoch and raises :class:`TrainingDiverged` at the
    first non-finite batch loss, so the estimator can restore the copy.
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
