import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skvae import VAEClassifier

from .conftest import TINY_CONV

pytestmark = pytest.mark.compat

# Learning from 10 labels per class: 10 epochs at lr=1e-2 reach 0.80-0.87
# test accuracy here (30 at the default lr: 0.78-0.83, three times slower).
FEW_LABELS = {**TINY_CONV, "max_epochs": 10, "lr": 1e-2}


def _few_labels(y, per_class, seed=0):
    """Keep ``per_class`` labels of each class, mark the rest -1."""
    rng = np.random.RandomState(seed)
    y_partial = np.full_like(y, -1)
    for label in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == label), per_class, replace=False)
        y_partial[keep] = y[keep]
    return y_partial


@pytest.fixture(scope="module")
def digit_split(digits):
    images, y = digits
    return images[:1200], y[:1200], images[1200:], y[1200:]


@pytest.fixture(scope="module")
def fitted_joint(digit_split):
    X_train, y_train, _, _ = digit_split
    clf = VAEClassifier(**FEW_LABELS, random_state=0)
    return clf.fit(X_train, _few_labels(y_train, 10))


@pytest.mark.slow
def test_joint_mode_learns_from_few_labels(fitted_joint, digit_split):
    _, _, X_test, y_test = digit_split
    assert fitted_joint.classes_.tolist() == list(range(10))
    assert fitted_joint.score(X_test, y_test) > 0.7


@pytest.mark.slow
@pytest.mark.parametrize("unlabeled_weight", [0.0, 3.0])
def test_pseudo_label_settings_reach_the_loss_and_still_learn(
    unlabeled_weight, digit_split
):
    X_train, y_train, X_test, y_test = digit_split
    clf = VAEClassifier(
        **FEW_LABELS,
        unlabeled_weight=unlabeled_weight,
        confidence_threshold=0.9,
        random_state=0,
    ).fit(X_train, _few_labels(y_train, 10))
    assert clf.net_.criterion_.unlabeled_weight == unlabeled_weight
    assert clf.net_.criterion_.confidence_threshold == 0.9
    assert clf.score(X_test, y_test) > 0.7


@pytest.mark.slow
@pytest.mark.parametrize(
    "head_mode, vat_eps, module_eps",
    [("joint", 0.0, 0.0), ("joint", 0.2, 0.2 * 8), ("frozen", 0.2, 0.0)],
)
def test_virtual_adversarial_radius_is_per_feature_and_joint_only(
    head_mode, vat_eps, module_eps, digit_split
):
    X_train, y_train, X_test, y_test = digit_split
    clf = VAEClassifier(
        **FEW_LABELS,
        head_mode=head_mode,
        vat_eps=vat_eps,
        random_state=0,
    )
    if head_mode == "frozen":
        with pytest.warns(UserWarning, match="vat_eps only affect"):
            clf.fit(X_train, _few_labels(y_train, 10))
    else:
        clf.fit(X_train, _few_labels(y_train, 10))
    # 8x8 digits: the L2 radius is vat_eps * sqrt(64).
    assert clf.net_.module_.vat_eps == pytest.approx(module_eps)
    assert clf.score(X_test, y_test) > 0.7


@pytest.mark.parametrize("head_mode", ["joint", "frozen"])
def test_predict_proba_rows_sum_to_one(head_mode, digit_split):
    X_train, y_train, X_test, _ = digit_split
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 5}, head_mode=head_mode)
    clf.fit(X_train[:300], _few_labels(y_train[:300], 5))
    proba = clf.predict_proba(X_test[:50])
    assert proba.shape == (50, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(
        clf.predict(X_test[:50]), clf.classes_[proba.argmax(axis=1)]
    )


@pytest.mark.parametrize("head_mode", ["joint", "frozen"])
def test_batch_norm_trains_on_mixed_batches(head_mode, digit_split):
    # batch_norm leaves out each epoch's incomplete last batch; with few
    # labels the batches come from the labeled-share sampler, which must
    # take that setting rather than clash with it in the DataLoader.
    X_train, y_train, X_test, _ = digit_split
    clf = VAEClassifier(
        **{**TINY_CONV, "max_epochs": 2}, batch_norm=True, head_mode=head_mode
    )
    clf.fit(X_train[:300], _few_labels(y_train[:300], 5))
    batches = clf.net_.history[-1, "batches"]
    assert all(batch["train_batch_size"] == clf.batch_size for batch in batches)
    assert clf.predict_proba(X_test[:20]).shape == (20, 10)


def test_frozen_mode_trains_only_the_head(digit_split, monkeypatch):
    """Frozen mode trains the VAE first; the head's training leaves it unchanged."""
    X_train, y_train, _, _ = digit_split
    before = {}
    fit_head = VAEClassifier._fit_head

    def spy(self, *args):
        before.update({k: v.clone() for k, v in self.net_.module_.state_dict().items()})
        fit_head(self, *args)

    monkeypatch.setattr(VAEClassifier, "_fit_head", spy)
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 3}, head_mode="frozen")
    clf.fit(X_train[:300], _few_labels(y_train[:300], 5))
    after = clf.net_.module_.state_dict()
    changed = {k for k in after if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("head.") for k in changed)


def test_string_labels_with_string_unlabeled_marker(digit_split):
    X_train, y_train, X_test, _ = digit_split
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    y_partial = _few_labels(y_train[:300], 5)
    y_str = np.where(y_partial == -1, "-1", names[np.maximum(y_partial, 0)])
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 2}).fit(X_train[:300], y_str)
    assert set(clf.classes_) == set(names)
    assert set(clf.predict(X_test[:20])) <= set(names)


@pytest.mark.slow
def test_fully_labeled_data_works(digit_split):
    X_train, y_train, X_test, y_test = digit_split
    # 20 epochs: weight averaging over the last 30% pays off once training
    # has settled; with 10 this tiny model is still improving fast.
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 20}, random_state=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) > 0.8


def test_grid_search_over_latent_dim_by_accuracy(digit_split):
    X_train, y_train, _, _ = digit_split
    search = GridSearchCV(
        VAEClassifier(**{**TINY_CONV, "max_epochs": 3}, random_state=0),
        {"latent_dim": [2, 4]},
        cv=2,
    ).fit(X_train[:300], y_train[:300])
    means = search.cv_results_["mean_test_score"]
    assert np.all((0 <= means) & (means <= 1))
    assert search.best_params_["latent_dim"] == [2, 4][int(np.argmax(means))]


@pytest.mark.parametrize("copy", [clone, lambda est: pickle.loads(pickle.dumps(est))])
def test_clone_and_pickle_keep_predictions(copy, digit_split):
    X_train, y_train, X_test, _ = digit_split
    X_few, y_few = X_train[:300], _few_labels(y_train[:300], 5)
    params = {**TINY_CONV, "max_epochs": 3}
    fitted = VAEClassifier(**params, random_state=0).fit(X_few, y_few)
    copied = copy(fitted)
    if copy is clone:
        copied.fit(X_few, y_few)
    np.testing.assert_array_equal(
        copied.predict_proba(X_test[:30]), fitted.predict_proba(X_test[:30])
    )


@pytest.mark.parametrize(
    "y, match",
    [
        (np.full(20, -1), "All samples are unlabeled"),
        (np.r_[np.zeros(5, int), np.full(15, -1)], "only one class"),
        (np.zeros(19, int), "inconsistent numbers of samples"),
        (np.linspace(0, 1, 20), "Unknown label type"),
    ],
    ids=["all_unlabeled", "one_class", "wrong_length", "continuous"],
)
def test_bad_labels_raise(y, match):
    X = np.random.RandomState(0).rand(20, 6)
    with pytest.raises(ValueError, match=match):
        VAEClassifier(max_epochs=1).fit(X, y)


def test_y_is_required():
    with pytest.raises(ValueError, match="requires y"):
        VAEClassifier(max_epochs=1).fit(np.zeros((4, 3)), None)


@pytest.mark.parametrize(
    "params",
    [{"augment": True, "unlabeled_weight": 0.0}, {"classifier_weight": 2.0}],
)
def test_frozen_mode_warns_about_the_joint_only_parameters_set(params, digit_split):
    X_train, y_train, _, _ = digit_split
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 1}, head_mode="frozen", **params)
    with pytest.warns(UserWarning, match=f"{', '.join(params)} only affect"):
        clf.fit(X_train[:100], _few_labels(y_train[:100], 2))


def test_frozen_mode_with_defaults_does_not_warn(digit_split):
    import warnings

    X_train, y_train, _, _ = digit_split
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 1}, head_mode="frozen")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf.fit(X_train[:100], _few_labels(y_train[:100], 2))


@pytest.mark.parametrize(
    "swa_start, averaged, warns",
    [("auto", False, False), (None, False, False), (0.5, False, True)],
)
def test_weight_averaging_with_early_stopping(swa_start, averaged, warns, digit_split):
    """Early stopping keeps the best epoch; averaging cannot apply, and says so."""
    import warnings

    X_train, y_train, _, _ = digit_split
    clf = VAEClassifier(
        **{**TINY_CONV, "max_epochs": 2}, early_stopping=True, swa_start=swa_start
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(X_train[:200], _few_labels(y_train[:200], 5))
    swa_warnings = [w for w in caught if "swa_start" in str(w.message)]
    assert bool(swa_warnings) == warns
    assert ("weight_averaging" in dict(clf.net_.callbacks_)) == averaged


def test_auto_weight_averaging_starts_at_seventy_percent(digit_split):
    X_train, y_train, _, _ = digit_split
    clf = VAEClassifier(**{**TINY_CONV, "max_epochs": 10}, random_state=0)
    clf.fit(X_train[:200], _few_labels(y_train[:200], 5))
    assert dict(clf.net_.callbacks_)["weight_averaging"].start == 0.7


def test_loss_defaults_are_the_estimator_defaults():
    """One set of defaults: the torch-level loss and the estimator agree."""
    import inspect

    from skvae.nn import SemiSupervisedLoss

    estimator = inspect.signature(VAEClassifier).parameters
    loss = inspect.signature(SemiSupervisedLoss).parameters
    # beta="auto" resolves to the loss's own default in the classifier.
    assert VAEClassifier()._kl_weight() == loss["beta"].default
    for name in (
        "classifier_weight",
        "unlabeled_weight",
        "confidence_threshold",
    ):
        assert loss[name].default == estimator[name].default, name
