import pytest
import torch

from skvae._data import (
    ArrayDataset,
    LabeledBatchSampler,
    SemiSupervisedLoader,
    keep_batch,
    random_shifts,
    shift_flip,
)

pytestmark = pytest.mark.compat


def _centred_images(n=32, side=12):
    """Images whose content stays inside the frame after a 2-pixel shift."""
    torch.manual_seed(0)
    x = torch.zeros(n, 1, side, side)
    x[:, :, 3:-3, 3:-3] = torch.rand(n, 1, side - 6, side - 6)
    return x


def test_shift_flip_without_shift_only_mirrors():
    x = _centred_images()
    out = shift_flip(x, max_shift=0)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same | mirrored)
    assert same.any() and mirrored.any()


def test_shift_flip_moves_content_without_losing_it():
    x = _centred_images()
    out = shift_flip(x, max_shift=2)
    assert out.shape == x.shape
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    assert not torch.equal(out, x)


def _shifted(image, dy, dx):
    """``image`` (C, H, W) moved down by ``dy`` and right by ``dx``, zero fill."""
    _, h, w = image.shape
    out = torch.zeros_like(image)
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@pytest.mark.parametrize("max_shift", [1, 2])
def test_random_shifts_move_each_image_by_at_most_max_shift(max_shift):
    torch.manual_seed(0)
    x = torch.rand(16, 2, 5, 7)  # content up to the border: shifts lose some
    out = random_shifts(x, max_shift)
    offsets = range(-max_shift, max_shift + 1)
    seen = set()
    for image, moved in zip(x, out, strict=True):
        matches = [
            (dy, dx)
            for dy in offsets
            for dx in offsets
            if torch.equal(_shifted(image, dy, dx), moved)
        ]
        assert len(matches) == 1
        seen.update(matches)
    assert len(seen) > 1  # the offsets vary from image to image


def test_random_shifts_by_zero_return_the_images():
    x = torch.rand(3, 1, 4, 4)
    assert random_shifts(x, 0) is x


@pytest.mark.parametrize("augment", [False, True])
def test_loader_augments_image_batches_only_when_asked(augment):
    x = _centred_images()
    y = torch.tensor([0, 1] * 4 + [-1] * 24)
    dataset = torch.utils.data.TensorDataset(x, y)
    dataset.y = y
    loader = SemiSupervisedLoader(dataset, batch_size=8, augment=augment)
    x_batch, y_batch = next(iter(loader))
    assert x_batch.shape == (8, 1, 12, 12)
    assert torch.equal(y_batch, y[:8])
    assert torch.equal(x_batch, x[:8]) != augment


@pytest.mark.parametrize(
    "n_unlabeled, drop_last, sizes",
    [
        (20, False, [8, 8, 8, 4]),  # 6 unlabeled rows a batch, 2 in the last
        (20, True, [8, 8, 8]),
        (18, True, [8, 8, 8]),  # no incomplete batch to leave out
        (4, True, [6]),  # no full batch: the incomplete one stays
    ],
)
def test_labeled_batches_leave_out_the_incomplete_last_one_only_when_asked(
    n_unlabeled, drop_last, sizes
):
    y = torch.tensor([0, 1, 0, 1] + [-1] * n_unlabeled)
    sampler = LabeledBatchSampler(y, batch_size=8, n_labeled=2, drop_last=drop_last)
    batches = [y[rows] for rows in sampler]
    assert len(sampler) == len(batches)
    assert [len(batch) for batch in batches] == sizes
    assert all((batch >= 0).sum() == 2 for batch in batches)
    unlabeled_seen = torch.cat([batch[batch < 0] for batch in batches])
    assert len(unlabeled_seen) == sum(sizes) - 2 * len(sizes)


@pytest.mark.parametrize("n_labeled", [4, 24])  # mixed batches; plain ones
def test_loader_passes_drop_last_to_either_kind_of_batch(n_labeled):
    y = torch.tensor([0, 1] * (n_labeled // 2) + [-1] * (24 - n_labeled))
    dataset = torch.utils.data.TensorDataset(torch.rand(len(y), 3), y)
    dataset.y = y
    loader = SemiSupervisedLoader(
        dataset, batch_size=7, shuffle=True, labeled_fraction=0.25, drop_last=True
    )
    assert all(len(y_batch) == 7 for _, y_batch in loader)


def test_dataset_hands_the_loader_whole_stacked_batches():
    """torch's DataLoader calls __getitems__ with a batch's indices (torch>=2.1).

    If a torch release stops doing so, batches would arrive as lists of
    single-row tuples and this test fails.
    """
    X = torch.arange(20.0).view(10, 2)
    y = torch.arange(10)
    loader = torch.utils.data.DataLoader(
        ArrayDataset(X, y), batch_size=4, collate_fn=keep_batch
    )
    x_batch, y_batch = next(iter(loader))
    assert torch.equal(x_batch, X[:4]) and torch.equal(y_batch, y[:4])


def _lazy_rows():
    import numpy as np

    from skvae._validation import ValidatedRows

    raw = np.arange(10 * 6, dtype=np.uint8).reshape(10, 6)
    return raw, ValidatedRows(raw, lambda rows: rows.astype(np.float32) / 2)


@pytest.mark.parametrize(
    "index", [slice(2, 7), slice(None), [7, 1, 1, 4], [0]], ids=str
)
def test_validated_rows_read_like_the_converted_array(index):
    import numpy as np

    raw, rows = _lazy_rows()
    expected = raw.astype(np.float32)[index] / 2
    np.testing.assert_array_equal(
        rows[np.asarray(index) if isinstance(index, list) else index], expected
    )
    taken = rows.take([9, 3, 5, 0, 2]).take([4, 1])  # rows 2 and 3
    np.testing.assert_array_equal(taken[:], raw[[2, 3]].astype(np.float32) / 2)
    assert rows.reshaped((2, 3))[[1]].shape == (1, 2, 3) and len(taken) == 2


def test_array_dataset_reads_validated_rows_batch_by_batch():
    import numpy as np

    raw, rows = _lazy_rows()
    X, y = ArrayDataset(rows.reshaped((1, 2, 3))).__getitems__([5, 0])
    assert y is None and X.dtype == torch.float32
    torch.testing.assert_close(
        X, torch.from_numpy(raw[[5, 0]].reshape(2, 1, 2, 3).astype(np.float32) / 2)
    )
