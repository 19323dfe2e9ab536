"""Model files that load without running code (skvae.save's default format)."""

import json
from copy import deepcopy

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save as safetensors_bytes

import skvae
from skvae import (
    DualVAETransformer,
    VAEClassifier,
    VAEOutlierDetector,
    VAETransformer,
    _safe_format,
)
from skvae.terms import ScoreTerm

pytestmark = pytest.mark.compat

TINY = {"hidden_dims": (4, 8), "latent_dim": 2, "max_epochs": 2, "random_state": 0}


def _fitted(estimator, digits):
    images, y = digits
    X, y = images[:80], y[:80]
    if isinstance(estimator, VAEClassifier):
        return estimator.fit(X, np.where(np.arange(80) < 30, y, -1)), X
    return estimator.fit(X), X


ESTIMATORS = [
    (VAEOutlierDetector(**TINY), "score_samples"),
    (VAEOutlierDetector(**TINY, score_type="elbo_mahalanobis"), "score_samples"),
    (VAEOutlierDetector(**TINY, score_type=("iwae", "latent_knn")), "score_pvalues"),
    (VAEOutlierDetector(**TINY, calibration_fraction=None), "decision_function"),
    (VAETransformer(**TINY), "transform"),
    (VAEClassifier(**TINY), "predict_proba"),
    (DualVAETransformer(max_epochs=1, random_state=0), "transform"),
]


@pytest.mark.parametrize(
    "estimator, method",
    ESTIMATORS,
    ids=[f"{type(e).__name__}-{m}" for e, m in ESTIMATORS],
)
def test_safe_file_gives_back_the_same_model(estimator, method, digits, tmp_path):
    fitted, X = _fitted(estimator, digits)
    path = skvae.save(fitted, tmp_path / "model.skvae", metadata={"note": [1, "a"]})
    loaded, metadata = skvae.load(path, with_metadata=True)
    assert type(loaded) is type(fitted) and metadata == {"note": [1, "a"]}
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(
        getattr(loaded, method)(X), getattr(fitted, method)(X)
    )
    assert len(loaded.history_) == len(fitted.history_)


def test_unfitted_estimator_round_trips(tmp_path):
    path = skvae.save(VAETransformer(latent_dim=3), tmp_path / "unfitted.skvae")
    assert skvae.load(path).get_params() == VAETransformer(latent_dim=3).get_params()


def test_safe_file_is_safetensors_with_no_pickle(fitted_conv_detector, tmp_path):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.safetensors")
    with safe_open(path, framework="numpy") as f:
        document = json.loads(f.metadata()["skvae"])
        names = list(f.keys())
    assert document["versions"]["skvae"] == skvae.__version__
    assert any(name.startswith("net_/") for name in names)
    # Nothing but safetensors' layout: an 8-byte size, a JSON header, and
    # the tensors' bytes that the header accounts for, to the last byte.
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size])
    assert header.pop("__metadata__")["skvae"]
    tensor_bytes = max(entry["data_offsets"][1] for entry in header.values())
    assert 8 + header_size + tensor_bytes == len(data)


def _rewrite(path, change):
    """Apply ``change`` to a safe file's JSON document and sign it again."""
    with safe_open(path, framework="numpy") as f:
        document = json.loads(f.metadata()["skvae"])
        arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    change(document)
    document.pop("sha256")
    document["sha256"] = _safe_format._checksum(document, arrays)
    path.write_bytes(safetensors_bytes(arrays, {"skvae": json.dumps(document)}))


def _set_estimator(name):
    return lambda document: document.update(estimator=name)


def _object_in_params(name):
    def change(document):
        document["params"]["__dict__"].append(
            ["score_type", {"__object__": name, "state": {"__dict__": []}}]
        )

    return change


@pytest.mark.parametrize(
    "change, name",
    [
        (_set_estimator("os.system"), "os.system"),
        (_set_estimator("builtins.eval"), "builtins.eval"),
        (_object_in_params("subprocess.Popen"), "subprocess.Popen"),
    ],
)
def test_loader_refuses_types_it_does_not_know(
    change, name, fitted_conv_detector, tmp_path
):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    _rewrite(path, change)
    with pytest.raises(ValueError, match=f"type '{name}'.*refusing"):
        skvae.load(path)


def test_loader_refuses_a_changed_file(fitted_conv_detector, tmp_path):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF  # one bit pattern inside the last tensor
    path.write_bytes(bytes(content))
    with pytest.raises(ValueError, match=r"written by skvae .* was changed after"):
        skvae.load(path)


def test_loader_refuses_tampered_parameters(fitted_conv_detector, tmp_path):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")

    def bad_latent_dim(document):
        pairs = document["params"]["__dict__"]
        document["params"]["__dict__"] = [
            [key, "two" if key == "latent_dim" else value] for key, value in pairs
        ]

    _rewrite(path, bad_latent_dim)
    with pytest.raises(ValueError, match="latent_dim"):
        skvae.load(path)


def test_file_of_another_version_names_it(fitted_conv_detector, tmp_path, monkeypatch):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    _rewrite(path, lambda document: document["versions"].update(skvae="9.4.1"))
    with pytest.raises(ValueError, match=r"saved with skvae 9\.4\.1"):
        skvae.load(path)


def test_detector_file_from_before_four_scored_copies_is_refused(
    fitted_conv_detector, tmp_path
):
    assert fitted_conv_detector.transformation_net_ is not None
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    _rewrite(path, lambda document: document.update(format_version=1))
    with pytest.raises(ValueError, match="every transformed copy.*Fit the detector"):
        skvae.load(path)


def test_format_one_file_without_a_classifier_still_loads(digits, tmp_path):
    fitted, X = _fitted(VAETransformer(**TINY), digits)
    path = skvae.save(fitted, tmp_path / "model.skvae")
    _rewrite(path, lambda document: document.update(format_version=1))
    np.testing.assert_array_equal(skvae.load(path).transform(X), fitted.transform(X))


def _drop_param(name):
    def change(document):
        items = document["params"]["__dict__"]
        document["params"]["__dict__"] = [item for item in items if item[0] != name]

    return change


def test_detector_file_from_before_bfloat16_scores_in_float32(
    fitted_conv_detector, digits, tmp_path
):
    """A file without transformation_precision scores as it was fitted."""
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    _rewrite(path, _drop_param("transformation_precision"))
    loaded = skvae.load(path)
    assert loaded.transformation_precision == "float32"
    float32 = deepcopy(fitted_conv_detector)
    float32.set_params(transformation_precision="float32")
    images = digits[0][:30]
    np.testing.assert_array_equal(
        loaded.score_samples(images), float32.score_samples(images)
    )


def test_detector_pickled_before_bfloat16_scores_in_float32(fitted_conv_detector):
    state = deepcopy(fitted_conv_detector).__getstate__()
    del state["transformation_precision"]
    restored = VAEOutlierDetector.__new__(VAEOutlierDetector)
    restored.__setstate__(state)
    assert restored.transformation_precision == "float32"
    assert fitted_conv_detector.transformation_precision == "auto"


def test_file_of_a_newer_format_asks_for_an_upgrade(fitted_conv_detector, tmp_path):
    path = skvae.save(fitted_conv_detector, tmp_path / "model.skvae")
    _rewrite(path, lambda document: document.update(format_version=99))
    with pytest.raises(ValueError, match="format 99, newer.*upgrade skvae"):
        skvae.load(path)


class ConstantScore(ScoreTerm):
    """A score of the user's own: the safe format cannot rebuild it."""

    requires = ("elbo",)

    def score(self, outputs):
        return np.zeros(len(outputs["elbo"]))


def test_custom_objects_need_the_pickle_format(digits, tmp_path):
    detector, X = _fitted(
        VAEOutlierDetector(**TINY, score_type=ConstantScore()), digits
    )
    with pytest.raises(TypeError, match=r"ConstantScore.*format='pickle'"):
        skvae.save(detector, tmp_path / "custom.skvae")
    assert not (tmp_path / "custom.skvae").exists()
    path = skvae.save(detector, tmp_path / "custom.skvae", format="pickle")
    np.testing.assert_array_equal(
        skvae.load(path).score_samples(X), detector.score_samples(X)
    )


def test_unknown_format_is_named(fitted_conv_detector, tmp_path):
    with pytest.raises(ValueError, match="format='zip'"):
        skvae.save(fitted_conv_detector, tmp_path / "m.skvae", format="zip")
