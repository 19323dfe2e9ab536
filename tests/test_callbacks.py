import pickle

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skvae import VAEClassifier
from skvae._callbacks import WeightAveraging
from skvae.net import VAENet
from skvae.nn import make_vae

pytestmark = pytest.mark.compat


class RecordWeights(Callback):
    """Record (epoch, weights) after every training step."""

    def initialize(self):
        self.records = []
        return self

    def on_batch_end(self, net, training=None, **kwargs):
        if training:
            state = {
                name: param.detach().clone()
                for name, param in net.module_.named_parameters()
            }
            self.records.append((len(net.history), state))


def _net(callbacks, max_epochs=4):
    torch.manual_seed(0)
    module = make_vae((6,), 2, hidden_dims=(8,))
    return VAENet(
        module, max_epochs=max_epochs, batch_size=16, callbacks=callbacks, verbose=0
    )


def _mean_state(records, first_epoch):
    states = [state for epoch, state in records if epoch > first_epoch]
    return {k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]}


@pytest.mark.parametrize("start, first_epoch", [(0.5, 2), (0.7, 2), (0.0, 0)])
def test_weight_averaging_keeps_the_mean_of_the_last_epochs_steps(start, first_epoch):
    X = torch.rand(64, 6)
    recorder = RecordWeights()
    net = _net([("record", recorder), ("average", WeightAveraging(start))]).fit(X)
    expected = _mean_state(recorder.records, first_epoch)
    for name, param in net.module_.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name])
    last = recorder.records[-1][1]
    assert not torch.equal(net.module_.encoder.mu.weight, last["encoder.mu.weight"])


def test_weight_averaging_counts_epochs_from_the_start_of_each_fit():
    X = torch.rand(64, 6)
    recorder = RecordWeights()
    net = _net([("record", recorder), ("average", WeightAveraging(0.5))], max_epochs=2)
    net.fit(X)
    recorder.records.clear()
    net.partial_fit(X)  # epochs 3 and 4: averaging starts after epoch 3
    expected = _mean_state(recorder.records, first_epoch=3)
    torch.testing.assert_close(
        net.module_.encoder.mu.weight.detach(), expected["encoder.mu.weight"]
    )
    assert dict(net.callbacks_)["average"].average_ is None  # the copy is dropped


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal(-2, 1, size=(60, 4)), rng.normal(2, 1, size=(60, 4))]
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    y[5:60] = y[65:] = -1
    return X.astype(np.float32), y


@pytest.mark.parametrize(
    "params, averaged",
    [
        ({}, True),
        ({"swa_start": 0.5}, True),
        ({"swa_start": None}, False),
        ({"early_stopping": True}, False),
    ],
)
def test_classifier_averages_weights_unless_told_otherwise(blobs, params, averaged):
    X, y = blobs
    clf = VAEClassifier(latent_dim=2, max_epochs=4, random_state=0, **params).fit(X, y)
    names = [name for name, _ in clf.net_.callbacks_]
    assert ("weight_averaging" in names) == averaged
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))


def test_swa_start_changes_the_fitted_weights(blobs):
    X, y = blobs
    probas = [
        VAEClassifier(latent_dim=2, max_epochs=4, random_state=0, swa_start=start)
        .fit(X, y)
        .predict_proba(X)
        for start in (None, 0.5)
    ]
    assert not np.allclose(*probas)


def test_swa_start_out_of_range_raises(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="swa_start"):
        VAEClassifier(swa_start=1.0).fit(X, y)
