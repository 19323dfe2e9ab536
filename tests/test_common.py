from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEClassifier, VAEOutlierDetector, VAETransformer

# The common checks train dozens of models on tiny tabular data, which takes
# the dense (MLP) path; the convolutional path's API is checked on image data
# in the estimator test modules.
SMALL = {"hidden_dims": (8,), "latent_dim": 2, "max_epochs": 2}

ESTIMATORS = [
    VAEOutlierDetector(**SMALL),
    VAEOutlierDetector(**SMALL, contamination=0.1, decoder_var=0.1),
    VAEOutlierDetector(**SMALL, score_type="iwae", n_samples=2),
    VAETransformer(**SMALL),
    # check_classifiers_train asks for > 0.83 training accuracy on blobs.
    VAEClassifier(hidden_dims=(16,), latent_dim=2, max_epochs=100),
    VAEClassifier(hidden_dims=(16,), latent_dim=2, max_epochs=100, head_mode="frozen"),
]


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda est: est._expected_failed_checks()
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
