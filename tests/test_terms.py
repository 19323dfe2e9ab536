"""Score terms: the protocol, the built-in terms, and a term of the user's own."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from skvae import VAEOutlierDetector
from skvae.conformal import conformal_threshold
from skvae.export import scorer_module
from skvae.scoring import NeighborDistance
from skvae.terms import (
    MahalanobisScore,
    NeighborScore,
    OutputScore,
    ScoreTerm,
    StandardizedSum,
    auto_n_neighbors,
)
from skvae.terms._base import name_terms
from skvae.terms._builtin import auto_terms, build_score

from .conftest import TINY_CONV
from .test_export import assert_scores_agree

# -- a term defined outside the package ----------------------------------------


class LatentDistanceFromTrainingMean(ScoreTerm):
    """Minus the Euclidean distance of the code to the training codes' mean."""

    requires = ("latent_means",)

    def __init__(self, power=1.0):
        self.power = power

    def fit(self, outputs):
        self.centre_ = outputs["latent_means"].mean(axis=0)
        return self

    def score(self, outputs):
        distance = np.linalg.norm(outputs["latent_means"] - self.centre_, axis=1)
        return -(distance**self.power)

    def to_torch(self):
        return _LatentDistanceModule(self.centre_, self.power)


class _LatentDistanceModule(torch.nn.Module):
    def __init__(self, centre, power):
        super().__init__()
        self.register_buffer("centre", torch.as_tensor(centre))
        self.power = power

    def forward(self, outputs):
        codes = outputs["latent_means"].double()
        return -(torch.linalg.norm(codes - self.centre, dim=1) ** self.power)


@pytest.fixture(scope="module")
def toy_detector(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 5},
        score_type=("elbo", LatentDistanceFromTrainingMean(power=2.0)),
        contamination=0.1,
        random_state=0,
    )
    return det.fit(X_train)


def test_own_term_runs_through_fit_scores_and_thresholds(
    toy_detector, digits_one_class
):
    X_train, X_test, is_inlier = digits_one_class
    det = toy_detector
    # Only the VAE trains: the toy term reads the VAE's codes alone.
    assert det.transformation_net_ is None
    parts = det.score_parts(X_test)
    assert list(parts) == ["elbo", "latentdistancefromtrainingmean"]
    scores = det.score_samples(X_test)
    np.testing.assert_allclose(sum(parts.values()), scores)
    assert roc_auc_score(is_inlier, scores) > 0.8
    # The term was cloned and fitted; the parameter stays unfitted.
    fitted = dict(det.score_term_.terms_)["latentdistancefromtrainingmean"]
    assert fitted.power == 2.0 and hasattr(fitted, "centre_")
    assert not hasattr(det.score_type[1], "centre_")
    held_out = det.score_samples(X_train[det.calibration_indices_])
    assert det.offset_ == conformal_threshold(held_out, 0.1)
    assert np.sum(det.predict(X_train[det.calibration_indices_]) == -1) == 1
    pvalues = det.score_pvalues(X_test)
    assert np.all((pvalues > 0) & (pvalues <= 1))


def test_own_term_exports(toy_detector, digits_one_class, tmp_path):
    _, X_test, _ = digits_one_class
    with torch.no_grad():
        exported = scorer_module(toy_detector)(torch.as_tensor(X_test)).numpy()
    assert_scores_agree(exported, toy_detector.score_samples(X_test))
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import onnxruntime

    from skvae.export import export_onnx

    path = export_onnx(toy_detector, tmp_path / "toy.onnx")
    session = onnxruntime.InferenceSession(str(path))
    images = X_test.reshape(-1, 8, 8).astype(np.float32)
    scores = session.run(None, {"x": images})[0]
    assert_scores_agree(scores, toy_detector.score_samples(X_test))


def test_own_term_alone_and_its_params_in_grid_search(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 2},
        score_type=LatentDistanceFromTrainingMean(),
        random_state=0,
    )
    assert det.get_params()["score_type__power"] == 1.0
    det.set_params(score_type__power=3.0).fit(X_train)
    assert det.score_term_.power == 3.0
    assert list(det.score_parts(X_train[:2])) == ["latentdistancefromtrainingmean"]
    clone(det).fit(X_train)


def test_term_without_torch_form_cannot_export(digits_one_class):
    class NoTorch(ScoreTerm):
        requires = ("elbo",)
        requires_fit = False

        def score(self, outputs):
            return outputs["elbo"]

    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 1}, score_type=NoTorch(), random_state=0
    ).fit(X_train)
    assert det.score_samples(X_train[:3]).shape == (3,)
    with pytest.raises(NotImplementedError, match="NoTorch has no torch form"):
        scorer_module(det)


def test_term_reading_an_unknown_output_is_refused(digits_one_class):
    class Unknown(ScoreTerm):
        requires = ("gradients",)

        def score(self, outputs):
            return outputs["gradients"]

    X_train, _, _ = digits_one_class
    with pytest.raises(ValueError, match=r"requires the outputs \['gradients'\]"):
        VAEOutlierDetector(score_type=Unknown()).fit(X_train)


# -- the protocol and the built-in terms ---------------------------------------


def test_standardized_sum_standardises_each_part_on_training_scores():
    rng = np.random.RandomState(0)
    train = {"elbo": rng.normal(3, 2, 50), "reconstruction": rng.normal(-1, 5, 50)}
    new = {"elbo": np.array([3.0, 5.0]), "reconstruction": np.array([-1.0, 4.0])}
    total = StandardizedSum(
        [("a", OutputScore("elbo")), ("b", OutputScore("reconstruction"))]
    )
    train_scores = total.fit_score(train)
    expected = sum(
        (new[key] - train[key].mean()) / train[key].std()
        for key in ("elbo", "reconstruction")
    )
    np.testing.assert_allclose(total.score(new), expected)
    np.testing.assert_allclose(train_scores.mean(), 0.0, atol=1e-12)
    assert total.requires == ("elbo", "reconstruction")
    parts = total.part_scores(new, standardized=False)
    np.testing.assert_array_equal(parts["b"], new["reconstruction"])


def test_standardized_sum_of_a_constant_part_divides_by_one():
    total = StandardizedSum([("a", OutputScore("elbo"))])
    total.fit({"elbo": np.full(4, 2.0)})
    assert total.standardization_ == {"a": (2.0, 1.0)}
    np.testing.assert_array_equal(total.score({"elbo": np.array([3.0])}), [1.0])


def test_builtin_terms_fit_and_score():
    rng = np.random.RandomState(0)
    train = {"latent_means": rng.normal(size=(200, 2))}
    new = {"latent_means": np.array([[0.0, 0.0], [5.0, 5.0]])}
    for term in (MahalanobisScore(), NeighborScore(n_neighbors=3)):
        near, far = term.fit(train).score(new)
        assert near > far
    leave_self_out = NeighborScore(n_neighbors=3).fit_score(train)
    assert np.all(leave_self_out < 0)


@pytest.mark.parametrize(
    "score_type, names",
    [
        ("elbo", None),
        ("auto", ["elbo", "input_knn"]),
        ("elbo_mahalanobis", ["elbo", "latent_mahalanobis"]),
        (("elbo",), None),
        (["elbo", "elbo"], ["elbo-1", "elbo-2"]),
        (("iwae", OutputScore("elbo")), ["iwae", "outputscore"]),
    ],
)
def test_score_types_build_one_term_or_a_sum(score_type, names):
    term = build_score(score_type, n_neighbors=7)
    if names is None:
        assert isinstance(term, OutputScore)
    else:
        assert [name for name, _ in term.terms] == names
    if score_type == "auto":
        assert dict(term.terms)["input_knn"].n_neighbors == 7


@pytest.mark.parametrize(
    "input_shape, transformations, names",
    [
        ((30,), "auto", ("elbo", "input_knn")),
        ((64,), None, ("elbo", "input_knn")),
        ((1, 28, 28), "auto", ("latent_knn", "orientation", "transformation_knn")),
        ((3, 14, 40), "auto", ("latent_knn", "orientation", "transformation_knn")),
        (
            (1, 8, 8),
            "auto",
            ("latent_knn", "orientation", "transformation_knn", "elbo"),
        ),
        (
            (1, 13, 28),
            "auto",
            ("latent_knn", "orientation", "transformation_knn", "elbo"),
        ),
        ((1, 28, 28), None, ("elbo", "latent_knn")),
        ((1, 8, 8), None, ("elbo", "latent_knn")),
    ],
)
def test_auto_sums_the_terms_of_its_kind_of_input(input_shape, transformations, names):
    assert auto_terms(input_shape, transformations=transformations) == names


def test_input_knn_is_the_neighbour_distance_of_the_input_rows():
    """The "inputs" output is the validated rows; the term indexes them."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 3)).astype(np.float32)
    new = np.array([[0.0, 0.0, 0.0], [6.0, -6.0, 6.0]], dtype=np.float32)
    det = VAEOutlierDetector(
        score_type="input_knn",
        n_neighbors=4,
        calibration_fraction=None,
        max_epochs=1,
        hidden_dims=(8,),
        latent_dim=2,
        random_state=0,
    ).fit(X)
    index = NeighborDistance(4)
    np.testing.assert_allclose(
        det.calibration_scores_, np.sort(index.fit(X)), rtol=1e-6
    )
    np.testing.assert_allclose(det.score_samples(new), index.score(new), rtol=1e-6)
    near, far = det.score_samples(new)
    assert near > far


@pytest.mark.parametrize(
    "score_type, error, match",
    [
        ("nope", ValueError, "Unknown score name 'nope'"),
        (("elbo", "auto"), ValueError, "itself a sum of scores"),
        ((), ValueError, "empty tuple"),
        (("elbo", 3), TypeError, "neither a score name nor"),
    ],
)
def test_bad_score_types_are_refused(score_type, error, match):
    with pytest.raises(error, match=match):
        build_score(score_type)


def test_bad_score_type_errors_come_from_fit(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(score_type=("elbo", "nope"))
    with pytest.raises(ValueError, match="Unknown score name 'nope'"):
        det.fit(X_train)


def test_terms_are_named_like_pipeline_steps():
    assert name_terms(["elbo", OutputScore(), OutputScore(), "iwae"]) == [
        "elbo",
        "outputscore-1",
        "outputscore-2",
        "iwae",
    ]


def test_neighbor_index_keeps_at_most_max_points():
    rng = np.random.RandomState(0)
    train = {"latent_means": rng.normal(size=(3000, 3))}
    new = {"latent_means": np.r_[rng.normal(size=(200, 3)), rng.normal(6, 1, (5, 3))]}
    capped = NeighborScore(n_neighbors=5, max_points=1000)
    train_scores = capped.fit_score(train)
    assert capped.index_.points_.shape == (1000, 3)
    assert train_scores.shape == (3000,)
    # The same subset for the same features: a seeded fit stays reproducible.
    again = NeighborScore(n_neighbors=5, max_points=1000).fit(train)
    np.testing.assert_array_equal(again.score(new), capped.score(new))
    # A third of the points ranks new rows much as all of them do.
    full = NeighborScore(n_neighbors=5, max_points=None).fit(train)
    assert full.index_.points_.shape == (3000, 3)
    rank_correlation = np.corrcoef(
        np.argsort(np.argsort(full.score(new))),
        np.argsort(np.argsort(capped.score(new))),
    )[0, 1]
    assert rank_correlation > 0.8
    assert np.max(capped.score(new)[-5:]) < np.min(capped.score(new)[:-5])


@pytest.mark.parametrize(
    "n_rows, max_points, expected",
    [(50, None, 5), (1000, None, 30), (5000, None, 150), (5000, 1000, 30)],
)
def test_auto_neighbors_grow_with_the_indexed_rows(n_rows, max_points, expected):
    train = {"latent_means": np.random.RandomState(0).normal(size=(n_rows, 2))}
    term = NeighborScore(max_points=max_points).fit(train)
    assert (
        term.n_neighbors_
        == expected
        == auto_n_neighbors(min(n_rows, max_points or n_rows))
    )
    assert term.index_.n_neighbors == expected
    assert NeighborScore(n_neighbors=7).fit(train).n_neighbors_ == 7


def test_wide_neighbourhoods_see_past_a_cluster_of_training_anomalies():
    """Anomalies in the training set hide anomalies like them from 5 neighbours.

    2% of the training rows form a tight cluster far from the normal ones; a
    test row from that cluster scores as normal as most with 5 neighbours, and as an
    anomaly with the automatic neighbourhood.
    """
    rng = np.random.RandomState(0)
    normal = rng.normal(size=(4900, 2))
    cluster = rng.normal(8, 0.1, size=(100, 2))
    train = {"latent_means": np.r_[normal, cluster]}
    test = {
        "latent_means": np.r_[rng.normal(size=(200, 2)), rng.normal(8, 0.1, (20, 2))]
    }
    is_inlier = np.r_[np.ones(200), np.zeros(20)]
    narrow = NeighborScore(n_neighbors=5).fit(train).score(test)
    wide = NeighborScore().fit(train).score(test)
    assert roc_auc_score(is_inlier, narrow) < 0.5  # worse than chance
    assert roc_auc_score(is_inlier, wide) > 0.95
