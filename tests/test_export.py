import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from skvae import VAEOutlierDetector, VAETransformer
from skvae.export import export_onnx, export_torchscript, scorer_module
from skvae.terms._builtin import SCORE_NAMES

from .conftest import TINY_CONV, TINY_MLP

# Exported graphs run float32; so does the detector they are compared with
# (on CPUs with AMX its classifier would otherwise score in bfloat16).
FLOAT32 = {"transformation_precision": "float32"}


def assert_scores_agree(exported, expected):
    """Agreement to 1e-5, relative to each score and to the largest score.

    Exported graphs run the float32 networks on other kernels and batch
    shapes, so scores near 0 (sums of z-scores) differ in absolute terms.
    """
    expected = np.asarray(expected)
    atol = 1e-5 * np.abs(expected).max()
    np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=atol)


@pytest.fixture(scope="module")
def train_images(digits):
    images, y = digits
    return images[y == 0][:120]


@pytest.fixture(scope="module")
def image_detector(train_images):
    # Trained long enough for the classifier to tell the turns apart: after
    # 5 epochs its orientation log-probability spread 0.0017 over the
    # training images, and standardising by that magnified float32 rounding
    # to the tolerance's size.
    detector = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 20}, **FLOAT32, random_state=0
    )
    return detector.fit(train_images)


@pytest.fixture(scope="module")
def new_images(digits):
    """Images the detector did not train on: other zeros and other digits."""
    images, y = digits
    return np.concatenate([images[y == 0][120:140], images[y == 3][:20]])


@pytest.mark.parametrize("score_type", SCORE_NAMES)
def test_scorer_module_computes_score_samples(score_type, train_images, new_images):
    detector = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 2},
        score_type=score_type,
        n_samples=4,
        **FLOAT32,
        random_state=0,
    ).fit(train_images)
    with torch.no_grad():
        exported = scorer_module(detector)(torch.as_tensor(new_images)).numpy()
    assert exported.dtype == np.float64 and exported.shape == (len(new_images),)
    assert_scores_agree(exported, detector.score_samples(new_images))


@pytest.mark.parametrize("score_type", ["auto", "elbo_mahalanobis", "iwae"])
def test_scorer_module_of_flat_rows(score_type, blobs_with_outliers):
    X_train, X_test = blobs_with_outliers
    detector = VAEOutlierDetector(
        **{**TINY_MLP, "max_epochs": 5}, score_type=score_type, random_state=0
    ).fit(X_train)
    with torch.no_grad():
        exported = scorer_module(detector)(torch.as_tensor(X_test)).numpy()
    assert_scores_agree(exported, detector.score_samples(X_test))


def test_export_of_a_bfloat16_detector_agrees_to_bfloat16_rounding(
    train_images, new_images
):
    """The float32 graph of a detector whose classifier scores in bfloat16."""
    detector = VAEOutlierDetector(
        **{**TINY_CONV, "max_epochs": 5},
        transformation_precision="bfloat16",
        random_state=0,
    ).fit(train_images)
    expected = detector.score_samples(new_images)
    with torch.no_grad():
        exported = scorer_module(detector)(torch.as_tensor(new_images)).numpy()
    difference = np.abs(exported - expected).max() / np.abs(expected).max()
    assert 0 < difference < 1e-2


def test_torchscript_file_scores_any_batch(image_detector, new_images, tmp_path):
    path = export_torchscript(image_detector, tmp_path / "detector.pt")
    loaded = torch.jit.load(str(path))
    expected = image_detector.score_samples(new_images)
    for rows in (slice(0, 1), slice(0, 7), slice(None)):
        scores = loaded(torch.as_tensor(new_images[rows])).detach().numpy()
        assert_scores_agree(scores, expected[rows])


@pytest.mark.multiprocess
def test_onnx_file_scores_in_a_fresh_process(image_detector, new_images, tmp_path):
    """fit -> ONNX -> scores with onnxruntime alone, in another interpreter."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = export_onnx(image_detector, tmp_path / "detector.onnx")
    np.save(tmp_path / "images.npy", new_images.astype(np.float32))
    script = textwrap.dedent(
        f"""
        import numpy as np, onnxruntime, sys
        assert "skvae" not in sys.modules and "torch" not in sys.modules
        session = onnxruntime.InferenceSession({str(path)!r})
        X = np.load({str(tmp_path / "images.npy")!r})
        np.save({str(tmp_path / "scores.npy")!r}, session.run(None, {{"x": X}})[0])
        np.save({str(tmp_path / "one.npy")!r}, session.run(None, {{"x": X[:1]}})[0])
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    expected = image_detector.score_samples(new_images)
    assert_scores_agree(np.load(tmp_path / "scores.npy"), expected)
    assert_scores_agree(np.load(tmp_path / "one.npy"), expected[:1])


def test_only_fitted_detectors_export(image_detector):
    with pytest.raises(TypeError, match="exports a VAEOutlierDetector"):
        scorer_module(VAETransformer())
    with pytest.raises(NotFittedError):
        scorer_module(VAEOutlierDetector())
