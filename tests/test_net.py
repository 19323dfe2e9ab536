import numpy as np
import pytest
import torch

from skvae.net import ArrayDataset, VAENet
from skvae.nn import make_vae

pytestmark = pytest.mark.compat


def test_array_dataset_returns_whole_batches():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    X_batch, y_batch = ArrayDataset(X).__getitems__([4, 1])
    np.testing.assert_array_equal(X_batch.numpy(), X[[4, 1]])
    assert y_batch is None
    _, y_batch = ArrayDataset(X, np.arange(6)).__getitems__([3])
    assert y_batch.tolist() == [3]


def test_vaenet_trains_unsupervised_and_loss_decreases():
    torch.manual_seed(0)
    X = torch.rand(256, 1, 8, 8)
    net = VAENet(
        make_vae((1, 8, 8), 4, hidden_dims=(8, 16)), max_epochs=15, lr=3e-3, verbose=0
    )
    net.fit(X, None)
    losses = net.history[:, "train_loss"]
    assert len(losses) == 15
    assert np.all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_vaenet_loss_is_mean_negative_elbo():
    module = make_vae((5,), 2, hidden_dims=(8,)).eval()
    net = VAENet(module, criterion__beta=2.0).initialize()
    X = torch.rand(7, 5)
    output = net.module_(X)
    log_px, kl = module.elbo_terms(X, output)
    expected = -(log_px - 2.0 * kl).mean()
    torch.testing.assert_close(net.get_loss(output, None, X), expected)
