"""The transformation classifier, the nearest-neighbour scores and "auto"."""

from copy import deepcopy

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from skvae import VAEOutlierDetector
from skvae._outlier import auto_training_shift
from skvae.nn import TransformationClassifier, make_vae, transform_images
from skvae.nn._transformations import n_transformations, random_transformations
from skvae.scoring import (
    NeighborDistance,
    _batches,
    _neighbors,
    _precision,
    per_sample_outputs,
    score_block_rows,
    transformation_outputs,
)
from skvae.scoring._precision import classifier_in_precision, resolve_precision

from .conftest import TINY_CONV, TINY_MLP, training_rows

# -- transformations --------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "expected"), [((1, 6, 6), 8), ((3, 4, 6), 4), ((1, 1, 1), 8)]
)
def test_transformations_keep_the_image_shape_and_are_distinct(shape, expected):
    assert n_transformations(shape) == expected
    x = torch.arange(float(np.prod(shape))).reshape(1, *shape)
    copies = [transform_images(x, t, expected) for t in range(expected)]
    assert all(copy.shape == x.shape for copy in copies)
    torch.testing.assert_close(copies[0], x)
    if shape[1] > 1:
        flat = {tuple(copy.flatten().tolist()) for copy in copies}
        assert len(flat) == expected


def test_square_transformations_are_quarter_turns_and_flips():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    torch.testing.assert_close(transform_images(x, 1, 8), torch.rot90(x, 1, (2, 3)))
    torch.testing.assert_close(transform_images(x, 4, 8), x.flip(-1))
    torch.testing.assert_close(
        transform_images(x, 6, 8), torch.rot90(x, 2, (2, 3)).flip(-1)
    )


def test_random_transformations_label_what_they_applied():
    torch.manual_seed(0)
    x = torch.rand(50, 1, 5, 5)
    out, labels = random_transformations(x, 8)
    assert set(labels.tolist()) == set(range(8))
    for i in range(50):
        torch.testing.assert_close(
            out[i : i + 1], transform_images(x[i : i + 1], int(labels[i]), 8)
        )


@pytest.mark.parametrize(("n_scored", "n_copies"), [(None, 8), (8, 8), (4, 4), (1, 1)])
def test_classifier_outputs_and_mean_log_probability(n_scored, n_copies):
    torch.manual_seed(0)
    module = TransformationClassifier((1, 8, 8), channels=(4, 8), n_scored=n_scored)
    module.eval()
    assert module.n_copies == n_copies
    x = torch.rand(3, 1, 8, 8)
    assert module(x).shape == (3, 8)
    assert module.embed(x).shape == (3, 8)
    expected = torch.stack(
        [
            torch.log_softmax(module(transform_images(x, t, 8)), 1)[:, t]
            for t in range(n_copies)
        ]
    ).mean(0)
    torch.testing.assert_close(module.right_transformation_log_prob(x), expected)
    mean_features = torch.stack(
        [module.embed(transform_images(x, t, 8)) for t in range(n_copies)]
    ).mean(0)
    # Transformation t and t + 4 (mod 8) are the same quarter turn, mirrored
    # or not: the orientation counts both.
    expected_orientation = torch.stack(
        [
            torch.log_softmax(module(transform_images(x, t, 8)), 1)[:, [t, (t + 4) % 8]]
            .exp()
            .sum(1)
            .log()
            for t in range(n_copies)
        ]
    ).mean(0)
    log_prob, orientation, features = module.score_copies(x)
    torch.testing.assert_close(log_prob, expected)
    torch.testing.assert_close(orientation, expected_orientation)
    torch.testing.assert_close(features, mean_features)
    assert (orientation >= log_prob).all() and (orientation <= 0).all()
    if n_copies in (4, 8):
        # The averaged features do not depend on which quarter turn x came in.
        torch.testing.assert_close(
            module.score_copies(transform_images(x, 3, 8)).features, features
        )


@pytest.mark.parametrize(("image_shape", "pairs"), [((1, 8, 8), 4), ((1, 6, 8), 2)])
def test_orientation_pairs_each_transformation_with_its_mirror_image(
    image_shape, pairs
):
    torch.manual_seed(0)
    module = TransformationClassifier(image_shape, channels=(4, 8)).eval()
    x = torch.rand(2, *image_shape)
    n = module.n_transformations
    for t in range(n):
        # Transformation t + n/2 is transformation t mirrored.
        mirror = (t + pairs) % n
        torch.testing.assert_close(
            transform_images(x, mirror, n), transform_images(x, t, n).flip(-1)
        )


def test_a_classifier_pickled_before_n_scored_reads_every_copy():
    torch.manual_seed(0)
    module = TransformationClassifier((1, 8, 8), channels=(4, 8), n_scored=4).eval()
    all_copies = TransformationClassifier((1, 8, 8), channels=(4, 8)).eval()
    all_copies.load_state_dict(module.state_dict())
    del module.n_scored  # as a module unpickled from an older version
    x = torch.rand(3, 1, 8, 8)
    assert module.n_copies == 8
    torch.testing.assert_close(module.score_copies(x), all_copies.score_copies(x))


@pytest.mark.parametrize("n_scored", [0, 9])
def test_classifier_rejects_a_number_of_scored_copies_it_does_not_have(n_scored):
    with pytest.raises(ValueError, match="n_scored=.* between 1 and the 8"):
        TransformationClassifier((1, 8, 8), channels=(4, 8), n_scored=n_scored)


# -- nearest-neighbour distances ----------------------------------------------


def test_neighbor_distance_matches_scikit_learn():
    rng = np.random.RandomState(0)
    train, test = (
        rng.normal(size=(300, 6)) * [1, 2, 3, 4, 5, 100],
        rng.normal(size=(40, 6)),
    )
    neighbors = NeighborDistance(4)
    train_scores = neighbors.fit(train)
    mean, std = train.mean(0), train.std(0)
    index = NearestNeighbors(n_neighbors=5).fit((train - mean) / std)
    expected_test = -index.kneighbors((test - mean) / std, 4)[0].mean(1)
    # A training point is not its own neighbour: its first neighbour is dropped.
    expected_train = -index.kneighbors((train - mean) / std)[0][:, 1:].mean(1)
    np.testing.assert_allclose(neighbors.score(test), expected_test, rtol=1e-5)
    np.testing.assert_allclose(train_scores, expected_train, rtol=1e-5)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_neighbor_distance_is_row_independent(n_threads):
    """Chunks run side by side on the threads: same bits at every count."""
    rng = np.random.RandomState(1)
    neighbors = NeighborDistance(5)
    neighbors.fit(rng.normal(size=(700, 20)))
    X = rng.normal(size=(1100, 20))
    at_one_thread = neighbors.score(X)
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        together = neighbors.score(X)
        alone = [neighbors.score(X[i : i + 1]) for i in [0, 511, 512, 1099]]
        reversed_order = neighbors.score(X[::-1])
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(together, at_one_thread)
    np.testing.assert_array_equal(np.concatenate(alone), together[[0, 511, 512, 1099]])
    np.testing.assert_array_equal(reversed_order, together[::-1])


def test_neighbor_chunks_fit_their_memory_budget(monkeypatch):
    """Wide neighbourhoods score in smaller chunks, to the same values."""
    rng = np.random.RandomState(2)
    neighbors = NeighborDistance(150)
    neighbors.fit(rng.normal(size=(2000, 32)))
    X = rng.normal(size=(600, 32))
    together = neighbors.score(X)
    row_bytes = 12 * 2000 + 8 * 158
    monkeypatch.setattr(_neighbors, "NEIGHBOR_CHUNK_BYTES", 7 * row_bytes)
    assert neighbors._chunk_rows() == 7
    assert neighbors._chunk_rows(n_threads=2) == 3  # chunks at once share it
    np.testing.assert_array_equal(neighbors.score(X), together)
    monkeypatch.setattr(_neighbors, "NEIGHBOR_CHUNK_BYTES", 1)
    assert neighbors._chunk_rows() == 1
    np.testing.assert_array_equal(neighbors.score(X[:20]), together[:20])


@pytest.mark.parametrize(
    ("input_shape", "device", "copies", "rows"),
    [
        ((1, 8, 8), "cpu", 1, _batches.CPU_IMAGE_BLOCK_ROWS),
        ((1, 8, 8), "cpu", 8, _batches.CPU_COPIES_BLOCK_ROWS),
        ((5,), "cpu", 1, _batches.CPU_FLAT_BLOCK_ROWS),
        ((1, 8, 8), "meta", 8, _batches.ACCELERATOR_BLOCK_ROWS),
    ],
)
def test_pass_length_by_input_device_and_copies(input_shape, device, copies, rows):
    assert score_block_rows(input_shape, device, copies=copies) == rows
    assert _batches.CPU_COPIES_BLOCK_ROWS < _batches.CPU_IMAGE_BLOCK_ROWS


def test_passes_with_transformed_copies_are_shorter(monkeypatch):
    """The classifier's copies ride in passes of CPU_COPIES_BLOCK_ROWS images."""
    vae = make_vae((1, 8, 8), latent_dim=2, hidden_dims=(4,)).eval()
    classifier = TransformationClassifier((1, 8, 8), channels=(4, 8)).eval()
    X = np.random.RandomState(0).uniform(size=(300, 64)).astype(np.float32)
    lengths = []
    load_batch = _batches.load_batch

    def recording_load_batch(rows, batch_size, *args, **kwargs):
        lengths.append(batch_size)
        return load_batch(rows, batch_size, *args, **kwargs)

    monkeypatch.setattr(_batches, "load_batch", recording_load_batch)
    alone = per_sample_outputs(vae, X, input_shape=(1, 8, 8))
    assert set(lengths) == {_batches.CPU_IMAGE_BLOCK_ROWS}
    lengths.clear()
    both = per_sample_outputs(
        vae, X, input_shape=(1, 8, 8), transformation_module=classifier
    )
    assert set(lengths) == {_batches.CPU_COPIES_BLOCK_ROWS}
    np.testing.assert_array_equal(both["latent_means"], alone["latent_means"])
    lengths.clear()
    copies_alone = transformation_outputs(classifier, X, input_shape=(1, 8, 8))
    assert set(lengths) == {_batches.CPU_COPIES_BLOCK_ROWS}
    np.testing.assert_array_equal(
        copies_alone["transformation"], both["transformation"]
    )


@pytest.mark.parametrize("block_bytes", [1, 8 * 13 * 5 * 3, 2**30])
def test_exact_distances_in_blocks_keep_the_bits(monkeypatch, block_bytes):
    """Recomputing the candidates' distances a few rows at a time changes nothing."""
    rng = np.random.RandomState(3)
    train, X = rng.normal(size=(300, 5)), rng.normal(size=(50, 5))
    neighbors = NeighborDistance(5)
    train_scores = neighbors.fit(train)
    scores = neighbors.score(X)
    monkeypatch.setattr(_neighbors, "EXACT_BLOCK_BYTES", block_bytes)
    np.testing.assert_array_equal(neighbors.fit(train), train_scores)
    np.testing.assert_array_equal(neighbors.score(X), scores)


@pytest.mark.parametrize("n_copies", [3, 30])
def test_identical_training_points_are_left_out(n_copies):
    """Copies of the scored point are never its neighbours, however many."""
    train = np.r_[np.zeros((n_copies, 2)), [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]]
    neighbors = NeighborDistance(2)
    scores = neighbors.fit(train)
    scale = train.std(0)
    distances = sorted([1.0 / scale[0], 2.0 / scale[1], 3.0 / scale[0]])
    expected = -np.mean(distances[:2])
    assert scores[0] == pytest.approx(expected)
    assert NeighborDistance(3).fit(np.ones((5, 2))).tolist() == [0.0] * 5


# -- the detector ---------------------------------------------------------------


def test_image_detector_sums_its_parts(fitted_conv_detector, digits_one_class):
    det = fitted_conv_detector
    assert isinstance(det.transformation_net_.module_, TransformationClassifier)
    X_train, X_test, _ = digits_one_class
    parts = det.score_parts(X_test)
    # 8x8 images are small: "auto" adds the ELBO to the three image parts.
    assert list(parts) == ["latent_knn", "orientation", "transformation_knn", "elbo"]
    np.testing.assert_allclose(sum(parts.values()), det.score_samples(X_test))
    # Each part is standardised by its scores on the rows the networks trained on.
    term = det.score_term_
    raw = term.part_scores(
        det._network_outputs(training_rows(det, X_train).astype(np.float32), term),
        standardized=False,
    )
    for name, scores in raw.items():
        np.testing.assert_allclose(
            term.standardization_[name], (scores.mean(), scores.std()), rtol=1e-9
        )


@pytest.mark.parametrize(
    "part", ["latent_knn", "orientation", "transformation_knn", None]
)
def test_new_scores_rank_other_digits_below_zeros(
    part, fitted_conv_detector, digits_one_class
):
    _, X_test, is_inlier = digits_one_class
    if part is None:
        scores = fitted_conv_detector.score_samples(X_test)
    else:
        scores = fitted_conv_detector.score_parts(X_test)[part]
    assert np.all(np.isfinite(scores))
    # The tiny classifier (TINY_CONV's widths) is the weakest part alone.
    floor = 0.75 if part == "orientation" else 0.8
    assert roc_auc_score(is_inlier, scores) > floor


def test_flat_input_has_no_transformation_scores(blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    det = VAEOutlierDetector(**{**TINY_MLP, "max_epochs": 3}, random_state=0)
    det.fit(X_train)
    assert det.transformation_net_ is None
    assert list(det.score_parts(X_test)) == ["elbo", "input_knn"]
    det.set_params(score_type="transformation")
    with pytest.raises(ValueError, match="input is not images"):
        det.fit(X_train)


def test_transformations_none_skips_the_classifier(digits_one_class):
    X_train, X_test, _ = digits_one_class
    params = {**TINY_CONV, "max_epochs": 2, "random_state": 0}
    det = VAEOutlierDetector(**params, transformations=None).fit(X_train)
    assert det.transformation_net_ is None
    assert list(det.score_parts(X_test)) == ["elbo", "latent_knn"]
    with pytest.raises(ValueError, match="transformations=None"):
        det.set_params(score_type="transformation_knn").fit(X_train)
    # The VAE is the same as with the classifier: it trains first, seeded alike.
    full = VAEOutlierDetector(**params).fit(X_train)
    for a, b in zip(
        det.net_.module_.parameters(), full.net_.module_.parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_classifier_follows_random_state_and_warm_start(digits_one_class):
    X_train, _, _ = digits_one_class
    params = {**TINY_CONV, "max_epochs": 2}

    def weights(det):
        return torch.cat(
            [p.flatten() for p in det.transformation_net_.module_.parameters()]
        )

    first = VAEOutlierDetector(**params, random_state=3).fit(X_train)
    again = VAEOutlierDetector(**params, random_state=3).fit(X_train)
    other = VAEOutlierDetector(**params, random_state=4).fit(X_train)
    torch.testing.assert_close(weights(first), weights(again), rtol=0, atol=0)
    assert not torch.equal(weights(first), weights(other))
    warm = VAEOutlierDetector(**params, random_state=3, warm_start=True)
    warm.fit(X_train)
    before = weights(warm).clone()
    warm.set_params(lr=1e-12).fit(X_train)
    torch.testing.assert_close(weights(warm), before, rtol=0, atol=1e-6)
    assert len(warm.transformation_net_.history) == 4


def test_warm_start_on_other_image_shapes_trains_a_new_classifier(digits_one_class):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, warm_start=True)
    det.fit(X_train)
    det.fit(np.pad(X_train, ((0, 0), (0, 2), (0, 2))))
    assert det.transformation_net_.module_.n_transformations == 8
    # It trains on all 8 and scores the quarter turns.
    assert det.transformation_net_.module_.n_copies == 4
    assert len(det.transformation_net_.history) == 1


@pytest.mark.parametrize(
    ("shape", "shift"),
    [
        ((1, 28, 28), 2),
        ((3, 32, 32), 2),
        ((1, 27, 27), 1),
        ((1, 14, 64), 1),
        ((1, 8, 8), 0),
    ],
)
def test_classifier_training_shift_follows_the_shorter_side(shape, shift):
    assert auto_training_shift(shape) == shift


def _shifts_of(image, max_shift):
    """Every copy of ``image`` (C, H, W) moved by at most ``max_shift`` pixels."""
    _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (max_shift,) * 4)
    span = range(2 * max_shift + 1)
    return [padded[:, i : i + h, j : j + w] for i in span for j in span]


@pytest.fixture(scope="module")
def fitted_on_16_pixels(digits_one_class):
    """The default detector fitted on 16x16 images (shifts of 1 pixel), and some."""
    X_train, _, _ = digits_one_class
    X_train = np.pad(X_train, ((0, 0), (4, 4), (4, 4)))
    det = VAEOutlierDetector(**{**TINY_CONV, "max_epochs": 1}, random_state=0)
    return det.fit(X_train), torch.as_tensor(X_train[:24], dtype=torch.float32)[:, None]


def _training_step_input(net, x):
    """What ``net``'s module receives in one training step on images ``x``."""
    seen = []
    hook = net.module_.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        net.train_step_single((x, None))
    finally:
        hook.remove()
    return seen[0].detach()


def test_classifier_trains_on_shifted_then_transformed_images(fitted_on_16_pixels):
    det, x = fitted_on_16_pixels
    net = det.transformation_net_
    assert net.max_shift == 1
    unshifted = 0
    for image, fed in zip(x, _training_step_input(net, x), strict=True):
        candidates = [
            transform_images(shifted[None], t, 8)[0]
            for shifted in _shifts_of(image, 1)
            for t in range(8)
        ]
        assert any(torch.equal(fed, c) for c in candidates)
        unshifted += any(torch.equal(fed, c) for c in candidates[32:40])
    assert unshifted < len(x)  # most images moved (the middle offset is no move)


def test_small_images_train_the_classifier_unshifted(fitted_conv_detector):
    assert fitted_conv_detector.transformation_net_.max_shift == 0  # 8x8 digits


@pytest.mark.parametrize("shift", [0, 1, 3])
def test_transformation_shift_sets_the_classifier_training_shift(
    digits_one_class, shift
):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 1}, transformation_shift=shift, random_state=0
    )
    assert det.fit(X_train[:40]).transformation_net_.max_shift == shift


@pytest.mark.parametrize("name", ["transformation_shift", "vae_shift"])
@pytest.mark.parametrize("shift", [8, 20])
def test_a_shift_beyond_the_image_is_refused_before_training(
    digits_one_class, name, shift
):
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(**TINY_CONV, **{name: shift})
    with pytest.raises(ValueError, match=rf"{name}={shift} would move 8-pixel"):
        det.fit(X_train[:40])
    assert not hasattr(det, "net_")  # refused before the VAE trained


def test_vae_trains_on_shifted_images(fitted_on_16_pixels):
    det, x = fitted_on_16_pixels
    net = det.net_
    assert net.max_shift == 1
    moved = 0
    for image, fed in zip(x, _training_step_input(net, x), strict=True):
        shifts = _shifts_of(image, 1)
        assert any(torch.equal(fed, shifted) for shifted in shifts)
        moved += not torch.equal(fed, image)
    assert moved > len(x) // 2  # 8 of the 9 offsets move the image


@pytest.mark.parametrize(
    ("side", "params", "shift"),
    [
        (16, {}, 1),  # the default score reads latent codes, no likelihood
        (16, {"score_type": "latent_knn"}, 1),
        (16, {"score_type": "elbo"}, 0),  # a likelihood: of unshifted images
        (16, {"score_type": ("latent_knn", "reconstruction")}, 0),
        (16, {"transformations": None}, 0),  # "auto" then sums the ELBO
        (16, {"score_type": "transformation"}, 0),  # the VAE is not scored
        (8, {}, 0),  # under 14 pixels
        (8, {"vae_shift": 2, "score_type": "elbo"}, 2),
        (16, {"vae_shift": 0}, 0),
    ],
)
def test_vae_shift_auto_shifts_only_for_latent_scores(
    digits_one_class, side, params, shift
):
    X_train, _, _ = digits_one_class
    pad = (side - 8) // 2
    X_train = np.pad(X_train[:40], ((0, 0), (pad, pad), (pad, pad)))
    det = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 1, **params}, random_state=0
    ).fit(X_train)
    assert det.net_.max_shift == shift


def test_vae_shift_is_ignored_for_rows(digits):
    X = digits[0].reshape(len(digits[0]), -1)[:40] / 16
    rows = VAEOutlierDetector(architecture="mlp", max_epochs=1, vae_shift=3)
    assert rows.fit(X).net_.max_shift == 0


def test_classifier_trains_through_the_vae_path(digits_one_class):
    """Early stopping, the divergence guard and the widths come from the estimator."""
    X_train, _, _ = digits_one_class
    det = VAEOutlierDetector(
        **{**TINY_CONV, "hidden_dims": (4, 8), "max_epochs": 30},
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.5,  # demands a halving of the loss: stops after a few epochs
        random_state=0,
    ).fit(X_train)
    net = det.transformation_net_
    assert net.module_.features[-1][0].out_channels == 16
    assert len(net.history) < 30
    assert np.all(np.isfinite(net.history[:, "valid_loss"]))
    assert "finite_loss" in dict(net.callbacks_)
    assert net.get_params()["iterator_train__drop_last"] is False


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("n_threads", [1, 3])
def test_default_scores_are_the_same_bits_in_any_composition(
    n_threads, precision, digits_one_class, fitted_conv_detector
):
    """Long scoring passes, a padded last one: no bit depends on the others.

    Nor on the thread count: every pass runs on one torch thread, the
    passes on as many Python threads as torch has. In either precision of
    the classifier.
    """
    X_train, X_test, _ = digits_one_class
    det = deepcopy(fitted_conv_detector).set_params(transformation_precision=precision)
    X = X_test[:150]
    at_one_thread = det.score_samples(X)
    threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        whole = det.score_samples(X)
        order = np.random.RandomState(0).permutation(len(X))
        shuffled = np.empty_like(whole)
        shuffled[order] = det.score_samples(X[order])
        in_sevens = [det.score_samples(X[i : i + 7]) for i in range(0, len(X), 7)]
        alone = [det.score_samples(X[i : i + 1]) for i in range(0, len(X), 31)]
        assert torch.get_num_threads() == n_threads
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(whole, at_one_thread)
    np.testing.assert_array_equal(whole, shuffled)
    np.testing.assert_array_equal(whole, np.concatenate(in_sevens))
    np.testing.assert_array_equal(whole[::31], np.concatenate(alone))


# -- the classifier's scoring precision ------------------------------------


def test_bfloat16_copy_computes_its_convolutions_in_bfloat16():
    torch.manual_seed(0)
    classifier = TransformationClassifier((1, 12, 12), channels=(8, 16)).eval()
    fast = classifier.in_dtype(torch.bfloat16)
    conv_dtypes = {p.dtype for p in fast.features.parameters()}
    assert conv_dtypes == {torch.bfloat16}
    assert {p.dtype for p in classifier.parameters()} == {torch.float32}
    x = torch.rand(5, 1, 12, 12)
    with torch.inference_mode():
        expected, got = classifier.score_copies(x), fast.score_copies(x)
    for want, have in zip(expected, got, strict=True):
        assert have.dtype == torch.float32 and have.shape == want.shape
        assert not torch.equal(have, want)
        scale = want.abs().max()
        torch.testing.assert_close(have, want, rtol=0, atol=0.02 * scale)


@pytest.mark.parametrize(
    ("precision", "device", "native", "expected"),
    [
        ("auto", "cpu", True, "bfloat16"),
        ("auto", "cpu", False, "float32"),
        ("auto", "cuda", True, "float32"),
        ("float32", "cpu", True, "float32"),
        ("bfloat16", "cpu", False, "bfloat16"),
    ],
)
def test_auto_precision_is_bfloat16_on_cpus_with_amx(
    monkeypatch, precision, device, native, expected
):
    monkeypatch.setattr(_precision, "native_bfloat16", lambda: native)
    assert resolve_precision(precision, device) == expected


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_scoring_copy_is_kept_until_the_weights_change(precision):
    classifier = TransformationClassifier((1, 8, 8), channels=(4, 8))
    first = classifier_in_precision(classifier, precision)
    assert first is not classifier
    assert classifier_in_precision(classifier, precision) is first
    with torch.no_grad():
        classifier.features[0][0].weight.mul_(2)
    second = classifier_in_precision(classifier, precision)
    assert second is not first
    dtype = getattr(torch, precision)
    torch.testing.assert_close(
        second.features.stack[0][0].weight,
        classifier.features[0][0].weight.to(dtype),
    )


def test_float32_copy_differs_from_the_classifier_by_rounding_alone():
    torch.manual_seed(0)
    classifier = TransformationClassifier((1, 12, 12), channels=(8, 16)).eval()
    fast = classifier_in_precision(classifier, "float32")
    x = torch.rand(5, 1, 12, 12)
    with torch.inference_mode():
        expected, got = classifier.score_copies(x), fast.score_copies(x)
    for want, have in zip(expected, got, strict=True):
        assert have.dtype == torch.float32 and have.shape == want.shape
        torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-6)


def test_detector_scores_its_classifier_in_the_precision_asked(
    digits_one_class, fitted_conv_detector
):
    X_train, X_test, y_test = digits_one_class
    scores = {
        precision: deepcopy(fitted_conv_detector)
        .set_params(transformation_precision=precision)
        .score_samples(X_test)
        for precision in ("float32", "bfloat16")
    }
    assert not np.array_equal(scores["float32"], scores["bfloat16"])
    scale = np.abs(scores["float32"]).max()
    np.testing.assert_allclose(
        scores["bfloat16"], scores["float32"], rtol=0, atol=0.02 * scale
    )
    auc = {name: roc_auc_score(y_test, s) for name, s in scores.items()}
    assert auc["bfloat16"] == pytest.approx(auc["float32"], abs=0.01)


def test_an_unknown_precision_is_refused_at_fit(digits_one_class):
    X_train = digits_one_class[0]
    with pytest.raises(ValueError, match="transformation_precision"):
        VAEOutlierDetector(**TINY_CONV, transformation_precision="float16").fit(X_train)
