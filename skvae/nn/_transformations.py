"""Geometric transformations of images and the network that tells them apart.

Transformation prediction (Golan & El-Yaniv 2018; Bergman & Hoshen 2020)
learns what normal images look like by training a classifier to say which of
a fixed set of transformations was applied to a training image: on an
anomaly, the classifier is less sure which transformation it sees, and its
features lie away from those of the training images.
"""

from copy import deepcopy
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from ._blocks import Dense, conv_block, run_conv_block

# Square images: 4 rotations by 90 degrees times an optional horizontal flip.
# Other images keep their shape: rotations by 0 and 180 degrees, flip or not.
SQUARE_TRANSFORMATIONS = 8
RECTANGULAR_TRANSFORMATIONS = 4


def n_transformations(image_shape):
    """Return how many transformations images of ``image_shape`` get."""
    _, height, width = image_shape
    return SQUARE_TRANSFORMATIONS if height == width else RECTANGULAR_TRANSFORMATIONS


def transform_images(x, index, n_total):
    """Apply transformation ``index`` of ``n_total`` to a batch ``(N, C, H, W)``.

    Transformation 0 is the identity. With 8, ``index % 4`` quarter turns
    and a horizontal flip for ``index >= 4``; with 4, ``index % 2`` half
    turns and a horizontal flip for ``index >= 2``.

    Parameters
    ----------
    x : torch.Tensor of shape (N, C, H, W)
        The images.
    index : int
        Which transformation, ``0 <= index < n_total``.
    n_total : {4, 8}
        8 for square images (rotations by quarter turns), 4 for others (half
        turns), each with and without a flip.

    Returns
    -------
    x_transformed : torch.Tensor
        The transformed batch; ``(N, C, W, H)`` after a quarter turn.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import transform_images
    >>> x = torch.arange(4.0).reshape(1, 1, 2, 2)
    >>> transform_images(x, 0, 8).flatten().tolist()  # the identity
    [0.0, 1.0, 2.0, 3.0]
    >>> transform_images(x, 4, 8).flatten().tolist()  # the horizontal flip
    [1.0, 0.0, 3.0, 2.0]
    """
    turns_per_step = 1 if n_total == SQUARE_TRANSFORMATIONS else 2
    n_rotations = n_total // 2
    out = torch.rot90(x, turns_per_step * (index % n_rotations), dims=(2, 3))
    return out.flip(-1) if index >= n_rotations else out


def random_transformations(x, n_total):
    """Transform each image of ``x`` by a random one of ``n_total``.

    Returns the transformed batch and the transformation of each image. The
    draws come from torch's global generator, which the estimators seed.
    """
    labels = torch.randint(0, n_total, (len(x),), device=x.device)
    out = torch.empty_like(x)
    for index in range(n_total):
        rows = labels == index
        if rows.any():
            out[rows] = transform_images(x[rows], index, n_total)
    return out, labels


class TransformationClassifier(nn.Module):
    """Convolutional classifier of which transformation an image went through.

    Three stride-2 convolutions, global average pooling and a linear layer
    to one logit per transformation; :meth:`embed` returns the pooled
    features.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of the input images.
    channels : tuple of int, default=(32, 64, 128)
        Output channels of each stride-2 convolution.
    kernel_size : int, default=3
        Odd kernel size of every convolution.
    n_scored : int or None, default=None
        How many transformations :meth:`score_copies` reads: the first
        ``n_scored`` (of square images, 4 are the quarter turns without the
        mirror images); ``None`` reads all of them. Training always uses
        every transformation.

    Examples
    --------
    >>> import torch
    >>> from skvae.nn import TransformationClassifier
    >>> classifier = TransformationClassifier((1, 8, 8), channels=(4, 8))
    >>> classifier.n_transformations
    8
    >>> tuple(classifier(torch.rand(3, 1, 8, 8)).shape)  # logits per transformation
    (3, 8)
    """

    # Modules pickled before n_scored existed read every transformation.
    n_scored = None

    def __init__(
        self, image_shape, channels=(32, 64, 128), kernel_size=3, n_scored=None
    ):
        super().__init__()
        widths = (image_shape[0], *channels)
        self.n_transformations = n_transformations(image_shape)
        if n_scored is not None and not 1 <= n_scored <= self.n_transformations:
            raise ValueError(
                f"n_scored={n_scored} must be between 1 and the "
                f"{self.n_transformations} transformations of images of shape "
                f"{tuple(image_shape)}, or None for all of them."
            )
        self.n_scored = n_scored
        self.features = nn.Sequential(
            *[
                conv_block(n_in, n_out, kernel_size)
                for n_in, n_out in zip(widths[:-1], widths[1:], strict=True)
            ]
        )
        self.out = Dense(channels[-1], self.n_transformations)

    def embed(self, x):
        """Pooled features of images ``x``, shape ``(N, channels[-1])``."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x):
        """Logits of each transformation, shape ``(N, n_transformations)``."""
        return self.out(self.embed(x))

    def in_dtype(self, dtype):
        """Return a copy for scoring whose convolutions compute in ``dtype``.

        The copy's convolution stack holds its weights in ``dtype`` and
        channels-last layout, reads its input in the same and, in float32
        on the CPU, runs each convolution with its activation as one fused
        oneDNN call (bfloat16 keeps them apart: fused, an image's bits there
        depended on its place in the pass);
        the pooling and the dense layer to the logits stay float32, and so
        do the outputs. In float32 the copy's features differ from the
        module's by rounding alone (about 1e-7 of their scale) and it
        classifies about 1.2x faster; on CPUs with AMX,
        ``torch.bfloat16`` classifies about 2.4x faster than float32, with
        features that differ from float32's by about 0.3% of their scale.
        In either, an image's result does not depend on the other images
        of its pass. The copy does not train.

        Parameters
        ----------
        dtype : torch.dtype
            ``torch.float32`` or ``torch.bfloat16``.

        Returns
        -------
        classifier : TransformationClassifier
            A new module; ``self`` is unchanged.

        Examples
        --------
        >>> import torch
        >>> from skvae.nn import TransformationClassifier
        >>> classifier = TransformationClassifier((1, 8, 8), channels=(4, 8)).eval()
        >>> fast = classifier.in_dtype(torch.bfloat16)
        >>> fast.embed(torch.rand(3, 1, 8, 8)).dtype
        torch.float32
        """
        twin = deepcopy(self)
        twin.features = _ScoringFeatures(twin.features, dtype)
        return twin.requires_grad_(False)

    @property
    def n_copies(self):
        """How many transformed copies of an image :meth:`score_copies` classifies."""
        return self.n_scored or self.n_transformations

    def right_transformation_log_prob(self, x):
        """Mean log-probability of the right transformation over the scored copies.

        Each image is transformed in each of the first :attr:`n_copies`
        ways and classified; the result averages the log-probability given
        to the transformation applied.
        """
        return self.score_copies(x).transformation

    def score_copies(self, x):
        """Classify the scored transformed copies of ``x``; three summaries per image.

        Each is a mean over the first :attr:`n_copies` transformed copies:
        of the log-probability given to the transformation applied (see
        :meth:`right_transformation_log_prob`), of the log-probability
        given to its orientation, the transformation or its mirror image
        (the same turn with the flip toggled), and of the pooled features,
        shape ``(N, channels[-1])``: a description of the image that does
        not depend on which of those transformations (with 4 of a square
        image's 8, which quarter turn) it arrived in.

        The orientation leaves out what the transformation's probability
        also says, whether the image is mirrored: of a mirror-symmetric
        class (most clothes) that cannot be told, so the probability of the
        right transformation tops out at about a half on normal images and
        rewards an asymmetric anomaly the classifier happens to place.

        Returns
        -------
        scores : tuple of torch.Tensor
            A named tuple ``(transformation, orientation, features)``.
        """
        n, n_copies = self.n_transformations, self.n_copies
        # One pass over all copies: scoring runs in small blocks of images,
        # where a pass's fixed cost outweighs the arithmetic.
        copies = torch.cat([transform_images(x, index, n) for index in range(n_copies)])
        embedded = self.embed(copies)
        # The logits of the flat (copies, features) rows: Dense keeps each
        # row's bits apart from the others' on 2-D input only.
        logits = self.out(embedded).view(n_copies, -1, n)
        embedded = embedded.view(n_copies, -1, embedded.shape[-1])
        log_probs = F.log_softmax(logits, dim=2)
        right = torch.arange(n_copies, device=x.device)
        # Transformations n/2 apart are the same turn, mirrored or not.
        mirrored = (right + n // 2) % n
        right_log_probs = log_probs[right, :, right]
        orientation = _log_add_exp(right_log_probs, log_probs[right, :, mirrored])
        return CopyScores(
            _mean_of_copies(right_log_probs),
            _mean_of_copies(orientation),
            _mean_of_copies(embedded),
        )


class CopyScores(NamedTuple):
    """What :meth:`TransformationClassifier.score_copies` returns per image."""

    transformation: torch.Tensor
    """Mean log-probability of the right transformation, shape ``(N,)``."""
    orientation: torch.Tensor
    """Mean log-probability of the right transformation or its mirror image."""
    features: torch.Tensor
    """Mean pooled features, shape ``(N, channels[-1])``."""


class _ScoringFeatures(nn.Module):
    """A convolution stack run in ``dtype`` on channels-last input; float32 out."""

    def __init__(self, features, dtype):
        super().__init__()
        self.dtype = dtype
        # Channels-last: oneDNN's convolutions run without reordering their
        # input and output, 1.2x faster in float32 and 1.7x in bfloat16
        # than in the default layout (docs/performance.md).
        self.stack = features.to(dtype=dtype, memory_format=torch.channels_last)

    def forward(self, x):
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        for block in self.stack:
            x = run_conv_block(block, x)
        return x.float()


def _log_add_exp(a, b):
    """``log(exp(a) + exp(b))`` elementwise, each element's bits its own.

    ``torch.logaddexp`` runs its vectorised kernel over whole vectors of
    elements and its scalar one over the rest, which round differently, so
    an element's result would depend on how many were computed with it.
    ``log_softmax`` over a last dimension of two works row by row: of
    ``(larger, smaller)``, its first entry is ``larger - log(exp(a) +
    exp(b))``, between ``-log 2`` and 0.
    """
    larger, smaller = torch.maximum(a, b), torch.minimum(a, b)
    pairs = torch.stack([larger, smaller], dim=-1)
    return larger - F.log_softmax(pairs, dim=-1)[..., 0]


def _mean_of_copies(values):
    """Mean over the first dimension, added in a fixed order.

    ``Tensor.mean(dim=0)`` vectorises over the other dimensions and rounds a
    row differently depending on how many rows there are; a scored image's
    result must not depend on the images scored with it.
    """
    total = values[0]
    for copy in values[1:]:
        total = total + copy
    return total / len(values)
