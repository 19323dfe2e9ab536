import matplotlib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from skvae import DualVAETransformer, VAEOutlierDetector, VAETransformer
from skvae.datasets import make_cells
from skvae.plotting import (
    plot_dual_reconstructions,
    plot_latent_space,
    plot_latent_traversal,
    plot_precision_recall_curve,
    plot_reconstructions,
    plot_roc_curve,
    plot_score_histogram,
    plot_training_curves,
)

from .conftest import TINY_MLP

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def labelled_test_set(digits_one_class):
    """Five zeros and five other digits, with +1 / -1 labels."""
    _, X_test, is_inlier = digits_one_class
    X = np.concatenate([X_test[:5], X_test[-5:]])
    return X, np.r_[np.ones(5), -np.ones(5)]


@pytest.fixture(scope="module")
def mlp_with_validation(blobs_with_outliers):
    X_train, _ = blobs_with_outliers
    params = {**TINY_MLP, "max_epochs": 4}
    return VAETransformer(**params, early_stopping=True, random_state=0).fit(X_train)


def _images(fig):
    return [im for ax in fig.axes for im in ax.get_images()]


@pytest.mark.parametrize(
    "attention, n_columns",
    [("gradient", 4), ("grad2vae", 4), (None, 3), (["gradient", "grad2vae"], 5)],
)
def test_plot_reconstructions(
    fitted_conv_detector, labelled_test_set, attention, n_columns
):
    X, _ = labelled_test_set
    fig = plot_reconstructions(
        fitted_conv_detector, X[:3], attention=attention, row_labels=list("abc")
    )
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(_images(fig)) == 3 * n_columns
    n_colorbars = n_columns - 2
    assert len(fig.axes) == 3 * n_columns + n_colorbars
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[:2] == ["input", "reconstruction"]
    assert [ax.get_ylabel() for ax in fig.axes[::n_columns][:3]] == list("abc")


def test_plot_reconstructions_reuses_fig_and_checks_attention(
    fitted_conv_detector, labelled_test_set
):
    X, _ = labelled_test_set
    fig = plt.figure()
    out = plot_reconstructions(
        fitted_conv_detector,
        X[:2],
        attention_kwargs={"gradient": {"layer": 0}},
        fig=fig,
    )
    assert out is fig
    with pytest.raises(ValueError, match="attention='sobel' must be one of"):
        plot_reconstructions(fitted_conv_detector, X[:2], attention="sobel")


def test_plot_reconstructions_mlp_needs_square_features(mlp_with_validation):
    with pytest.raises(ValueError, match="5 features is not a square number"):
        plot_reconstructions(mlp_with_validation, np.zeros((2, 5)), attention=None)


def test_plot_latent_space_pca_with_labels(fitted_conv_detector, digits):
    images, y = digits
    ax = plot_latent_space(fitted_conv_detector, images[:60], y[:60])
    assert len(ax.collections) == 1
    assert len(ax.collections[0].get_offsets()) == 60
    assert ax.get_xlabel().startswith("PC 1 of latent means")
    legend_labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend_labels == [str(d) for d in np.unique(y[:60])]


def test_plot_latent_space_2d_on_given_ax(mlp_with_validation, blobs_with_outliers):
    _, ax = plt.subplots()
    out = plot_latent_space(mlp_with_validation, blobs_with_outliers[1], ax=ax)
    assert out is ax
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("z[0]", "z[1]")
    assert ax.get_legend() is None


def test_plot_score_histogram(fitted_conv_detector, labelled_test_set):
    X, y = labelled_test_set
    ax = plot_score_histogram(fitted_conv_detector, X, y, bins=5)
    assert len(ax.containers) == 2
    (line,) = ax.get_lines()
    assert line.get_xdata()[0] == pytest.approx(fitted_conv_detector.offset_)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["inliers (n=5)", "outliers (n=5)"]
    # The default score is a sum of z-scores: no unit on the axis.
    assert ax.get_xlabel() == "score_samples (auto); lower = more anomalous"

    single = plot_score_histogram(fitted_conv_detector, X, threshold=0.0)
    assert len(single.containers) == 1
    assert single.get_lines()[0].get_xdata()[0] == 0.0


@pytest.mark.parametrize("plot", [plot_roc_curve, plot_precision_recall_curve])
def test_roc_and_pr_curves(plot, fitted_conv_detector, labelled_test_set):
    X, y = labelled_test_set
    _, ax = plt.subplots()
    out = plot(fitted_conv_detector, X, y, ax=ax)
    assert out is ax
    assert len(ax.get_lines()) == 2  # the curve and the chance level
    assert "outlier" in ax.get_xlabel()


def test_roc_curve_auc_matches_sklearn(fitted_conv_detector, labelled_test_set):
    """Outliers are the positive class, ranked by -score_samples."""
    X, y = labelled_test_set
    ax = plot_roc_curve(fitted_conv_detector, X, y)
    auc = roc_auc_score(y > 0, fitted_conv_detector.score_samples(X))
    assert f"AUC = {auc:.2f}" in ax.get_legend().get_texts()[0].get_text()


def test_plot_latent_traversal(fitted_conv_detector):
    fig = plot_latent_traversal(fitted_conv_detector, units=[0, 3], n_steps=5)
    assert len(fig.axes) == 10
    assert len(_images(fig)) == 10
    assert [fig.axes[i].get_ylabel() for i in (0, 5)] == ["z[0]", "z[3]"]
    with pytest.raises(ValueError, match="units=\\[4\\] must list latent units"):
        plot_latent_traversal(fitted_conv_detector, units=[4])


def test_plot_training_curves(fitted_conv_detector, mlp_with_validation):
    ax = plot_training_curves(fitted_conv_detector)
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) == len(fitted_conv_detector.history_)
    ax = plot_training_curves(mlp_with_validation)
    assert [line.get_label() for line in ax.get_lines()] == [
        "train loss",
        "validation loss",
    ]


def test_plots_work_for_a_detector_on_flat_square_input(digits):
    """A dense model on 64 features is shown as 8x8 images."""
    images, _ = digits
    X = images[:32].reshape(32, 64)
    det = VAEOutlierDetector(
        architecture="mlp", hidden_dims=(8,), latent_dim=2, max_epochs=2
    ).fit(X)
    fig = plot_reconstructions(det, X[:2], attention=None)
    assert fig.axes[0].get_images()[0].get_array().shape == (8, 8)
    assert len(plot_latent_traversal(det, n_steps=3).axes) == 6


@pytest.fixture(scope="module")
def fitted_dual():
    X, truth = make_cells(64, scenario="X90,20", random_state=0)
    dual = DualVAETransformer(
        hidden_dims=(4,), latent_dim=2, background_latent_dim=2, max_epochs=1
    )
    return dual.fit(X), X


def test_plot_dual_reconstructions(fitted_dual):
    dual, X = fitted_dual
    fig = plot_dual_reconstructions(dual, X[:3], row_labels=["a", "b", "c"])
    assert len(fig.axes) == 12
    images = _images(fig)
    np.testing.assert_array_equal(images[0].get_array(), X[0])
    # Input, foreground reconstruction, pooled target, background reconstruction.
    np.testing.assert_allclose(images[2].get_array(), dual.background_target(X[:1])[0])
    np.testing.assert_allclose(
        images[3].get_array(), dual.reconstruct_background(X[:1])[0], rtol=1e-6
    )
    assert [fig.axes[i].get_ylabel() for i in (0, 4, 8)] == ["a", "b", "c"]
    assert [fig.axes[j].get_title() for j in range(4)] == [
        "input",
        "foreground reconstruction",
        "pooled target g(x)",
        "background reconstruction",
    ]


def test_plot_dual_reconstructions_with_background_removed(fitted_dual):
    dual, X = fitted_dual
    fig = plot_dual_reconstructions(dual, X[:2], with_background_removed=True)
    assert len(fig.axes) == 10
    assert fig.axes[2].get_title() == "background removed"
    np.testing.assert_allclose(
        _images(fig)[2].get_array(),
        dual.reconstruct_foreground(X[:1], remove_background=True)[0],
        rtol=1e-6,
    )


def test_plot_dual_reconstructions_needs_a_dual_vae(fitted_conv_detector, digits):
    images, _ = digits
    with pytest.raises(TypeError, match="needs a fitted DualVAETransformer"):
        plot_dual_reconstructions(fitted_conv_detector, images[:2])


def test_latent_exploration_of_a_dual_vae_spans_both_codes(fitted_dual):
    dual, _ = fitted_dual
    fig = plot_latent_traversal(dual, n_steps=2, span=5.0)
    assert len(fig.axes) == 8
    labels = [fig.axes[i].get_ylabel() for i in range(0, 8, 2)]
    assert labels == ["fg0", "fg1", "bg0", "bg1"]
    assert [ax.get_xlabel() for ax in fig.axes[-2:]] == ["-5.0", "+5.0"]
    # Each image is the foreground decoder's mean of a one-hot code.
    code = np.zeros((1, 4), dtype=np.float32)
    code[0, 3] = 5.0
    np.testing.assert_allclose(
        _images(fig)[7].get_array(), dual.inverse_transform(code)[0], rtol=1e-5
    )
