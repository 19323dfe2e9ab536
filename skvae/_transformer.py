"""Dimensionality reduction with a variational autoencoder."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state

from ._base import _BaseVAE, fill_doc, fit_all_or_nothing
from .scoring import decoded_means, latent_means
from .utils._sklearn import check_array, check_is_fitted

__all__ = ["VAETransformer"]


@fill_doc
class VAETransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseVAE):
    """Dimensionality reduction with a variational autoencoder.

    ``transform`` maps each sample to the mean of its posterior q(z|x), a
    ``latent_dim``-dimensional code; ``inverse_transform`` decodes codes back
    to the input space, and ``sample`` draws new samples from the prior. Use
    it like :class:`~sklearn.decomposition.PCA`: in a ``Pipeline`` before a
    classifier, or with ``latent_dim=2`` to plot the data.

    Parameters
    ----------
    %(vae_parameters)s

    Attributes
    ----------
    %(vae_attributes)s

    See Also
    --------
    sklearn.decomposition.PCA : Linear dimensionality reduction.
    VAEOutlierDetector : The same model used to flag unusual samples.

    Notes
    -----
    ``fit_transform(X)`` equals ``fit(X).transform(X)``: the codes are the
    deterministic posterior means. ``score(X)`` is the mean ELBO, so
    ``GridSearchCV`` can choose ``latent_dim`` without labels.

    Examples
    --------
    >>> import numpy as np
    >>> from skvae import VAETransformer
    >>> X = np.random.RandomState(0).normal(size=(64, 6))
    >>> vae = VAETransformer(latent_dim=2, max_epochs=3, random_state=0).fit(X)
    >>> vae.transform(X).shape
    (64, 2)
    >>> vae.inverse_transform(vae.transform(X[:3])).shape
    (3, 6)
    >>> vae.get_feature_names_out()
    array(['vaetransformer0', 'vaetransformer1'], dtype=object)
    """

    @fit_all_or_nothing
    def fit(self, X, y=None):
        """Fit the VAE on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Training data. Images may be ``(n, H, W)`` or ``(n, C, H, W)``.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        X = self._validate_input(X, reset=True)
        self._fit_vae(X)
        return self

    def transform(self, X):
        """Encode ``X`` as the means of its posterior q(z|x).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
            Samples.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
            Latent codes.
        """
        check_is_fitted(self)
        return self._map_module(latent_means, self._validate_input(X, reset=False))

    def inverse_transform(self, X):
        """Decode latent codes to the mean of p(x|z), in the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, latent_dim)
            Latent codes, e.g. from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features) or image array
            Decoded samples, as images of ``(n, *input_shape_)`` when the
            estimator was fitted on an image array, else flat rows.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=np.float32)
        if Z.shape[1] != self._n_features_out:
            raise ValueError(
                f"X has {Z.shape[1]} features, but inverse_transform expects "
                f"latent codes of {self._n_features_out} features, as "
                "transform returns them."
            )
        return self._decode(Z)

    def sample(self, n_samples=1, random_state=None):
        """Draw new samples: codes from the prior N(0, I), decoded to E[x|z].

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seeds the latent draws.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features) or image array
            Decoded samples, shaped like the output of
            :meth:`inverse_transform`.
        """
        check_is_fitted(self)
        rng = check_random_state(random_state)
        Z = rng.standard_normal((n_samples, self._n_features_out))
        Z = Z.astype(np.float32)
        return self._decode(Z)

    def _decode(self, Z):
        X = decoded_means(self.net_.module_, Z, device=self.net_.device)
        return X.reshape(len(Z), *self.sample_shape_)

    @property
    def _n_features_out(self):
        """Number of output features, for ``get_feature_names_out``."""
        return self.latent_dim
