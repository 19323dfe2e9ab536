from sklearn.utils.estimator_checks import parametrize_with_checks

from skvae import VAEOutlierDetector

# The common checks train dozens of models on tiny tabular data, which takes
# the dense (MLP) path; the convolutional path's API is checked on image data
# in test_outlier.py.
SMALL = {"hidden_dims": (8,), "latent_dim": 2, "max_epochs": 2}


@parametrize_with_checks(
    [
        VAEOutlierDetector(**SMALL),
        VAEOutlierDetector(**SMALL, contamination=0.1, decoder_var=0.1),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
