import os

import numpy as np
import pytest
from PIL import Image

from skvae.datasets import _image_folder, list_image_files, load_image_folder

FORMATS = ["png", "jpg", "bmp", "tif"]


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _gray(seed, shape=(12, 16)):
    return np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def folder(tmp_path):
    """Two classes in sub-folders, one nested a level deeper; all 12x16 PNGs."""
    images = tmp_path / "images"
    for i, name in enumerate(["good/a.png", "good/deeper/b.png", "scratch/c.png"]):
        _save(images / name, _gray(i))
    return images


@pytest.mark.parametrize("extension", FORMATS)
def test_each_format_is_read_recursively(extension, tmp_path):
    pixels = _gray(0)
    _save(tmp_path / "sub" / f"image.{extension.upper()}", pixels)
    data = load_image_folder(tmp_path)
    assert data.images.shape == (1, 12, 16) and data.images.dtype == np.uint8
    assert data.filenames.tolist() == [f"sub/image.{extension.upper()}"]
    if extension != "jpg":  # lossless formats keep every pixel
        np.testing.assert_array_equal(data.images[0], pixels)


def test_files_are_sorted_and_hidden_or_other_files_left_out(folder):
    (folder / "notes.txt").write_text("not an image")
    _save(folder / ".hidden" / "d.png", _gray(5))
    _save(folder / "good" / ".e.png", _gray(6))
    data = load_image_folder(folder)
    assert data.filenames.tolist() == [
        "good/a.png",
        "good/deeper/b.png",
        "scratch/c.png",
    ]
    assert [f.name for f in list_image_files(folder)] == ["a.png", "b.png", "c.png"]
    np.testing.assert_array_equal(data.images[2], _gray(2))


def test_rgb_images_come_channels_first(tmp_path):
    rgb = np.random.RandomState(0).randint(0, 256, (12, 16, 3), dtype=np.uint8)
    _save(tmp_path / "x.png", rgb)
    data = load_image_folder(tmp_path, color="rgb")
    assert data.images.shape == (1, 3, 12, 16)
    np.testing.assert_array_equal(data.images[0], rgb.transpose(2, 0, 1))
    gray = load_image_folder(tmp_path).images[0]
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(gray, expected)


@pytest.mark.parametrize("mode", ["RGBA", "P", "1"])
def test_other_modes_are_converted(mode, tmp_path):
    image = Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).convert(mode)
    image.save(tmp_path / "x.png")
    assert load_image_folder(tmp_path, color="rgb").images.shape == (1, 3, 8, 8)
    assert load_image_folder(tmp_path).images.shape == (1, 8, 8)


def test_16_bit_grayscale_keeps_its_range(tmp_path):
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(
        load_image_folder(tmp_path).images[0], [[0, 1, 128, 255]]
    )


def _framed(height=20, width=40):
    """A white square in the middle of a black, wider image."""
    pixels = np.zeros((height, width), np.uint8)
    left = (width - height) // 2
    pixels[:, left : left + height] = 255
    return pixels


def test_center_crop_keeps_the_middle_and_resize_squeezes_all(tmp_path):
    _save(tmp_path / "wide.png", _framed())
    cropped = load_image_folder(tmp_path, size=10, fit="center_crop").images[0]
    squeezed = load_image_folder(tmp_path, size=(10, 10), fit="resize").images[0]
    assert cropped.shape == squeezed.shape == (10, 10)
    # Only the white middle is left (the filter blends the outermost columns).
    assert cropped[:, 1:-1].min() == 255 and cropped.min() > 200
    assert squeezed[:, 0].max() == 0 and squeezed[:, 5].min() == 255


def test_non_square_size_is_height_then_width(tmp_path):
    _save(tmp_path / "x.png", _gray(0, (30, 30)))
    assert load_image_folder(tmp_path, size=(8, 12)).images.shape == (1, 8, 12)


def test_images_of_different_sizes_need_a_size(tmp_path):
    _save(tmp_path / "a.png", _gray(0, (8, 8)))
    _save(tmp_path / "b.png", _gray(1, (9, 8)))
    with pytest.raises(ValueError, match=r"b.png is 9x8.*Pass size="):
        load_image_folder(tmp_path)
    assert load_image_folder(tmp_path, size=8).images.shape == (2, 8, 8)


def test_sub_folders_give_labels(folder):
    data = load_image_folder(folder, labels=True)
    assert data.target.tolist() == [0, 0, 1]
    assert data.target_names.tolist() == ["good", "scratch"]


def test_labels_need_every_image_in_a_sub_folder(folder):
    _save(folder / "loose.png", _gray(9))
    with pytest.raises(ValueError, match="loose.png"):
        load_image_folder(folder, labels=True)


@pytest.mark.parametrize("damage", ["truncated", "not an image", "empty"])
def test_a_damaged_file_is_named_or_skipped(damage, folder):
    content = (folder / "good" / "a.png").read_bytes()
    broken = folder / "scratch" / "broken.png"
    broken.write_bytes(
        {"truncated": content[:60], "not an image": b"hello" * 50, "empty": b""}[damage]
    )
    with pytest.raises(ValueError, match=r"broken.png cannot be read") as info:
        load_image_folder(folder)
    assert info.value.__cause__ is not None
    with pytest.warns(UserWarning, match=r"Skipped 1 of 4 .*broken.png"):
        data = load_image_folder(folder, on_error="warn", labels=True)
    assert "scratch/broken.png" not in data.filenames.tolist()
    assert len(data.images) == len(data.filenames) == len(data.target) == 3


def test_missing_or_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="holds no image file"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"size": 0}, "size=0"),
        ({"size": (8, 8, 3)}, "size="),
        ({"fit": "pad"}, "fit='pad'"),
        ({"color": "cmyk"}, "color='cmyk'"),
        ({"on_error": "ignore"}, "on_error='ignore'"),
    ],
)
def test_bad_arguments_are_named(kwargs, match, folder):
    with pytest.raises(ValueError, match=match):
        load_image_folder(folder, **kwargs)


def test_cache_is_a_memmap_reused_until_the_folder_changes(folder, monkeypatch):
    cache = folder.parent / "cache.npy"
    in_memory = load_image_folder(folder, labels=True)
    cached = load_image_folder(folder, labels=True, cache=cache)
    assert isinstance(cached.images, np.memmap) and not cached.images.flags.writeable
    np.testing.assert_array_equal(cached.images, in_memory.images)
    assert cached.filenames.tolist() == in_memory.filenames.tolist()

    def unreadable(file, settings):
        raise AssertionError("the cache was rebuilt")

    with monkeypatch.context() as patch:
        patch.setattr(_image_folder, "_read_image", unreadable)
        again = load_image_folder(folder, labels=True, cache=cache)
        np.testing.assert_array_equal(again.images, in_memory.images)
        with pytest.raises(AssertionError, match="rebuilt"):  # other arguments
            load_image_folder(folder, size=6, cache=cache)
    changed = folder / "good" / "a.png"
    _save(changed, _gray(7))
    os.utime(changed, ns=(1, 1))  # another modification time
    np.testing.assert_array_equal(
        load_image_folder(folder, cache=cache).images[0], _gray(7)
    )


def test_cache_leaves_skipped_files_out(folder):
    (folder / "good" / "broken.png").write_bytes(b"broken")
    cache = folder.parent / "cache.npy"
    with pytest.warns(UserWarning, match="Skipped 1 of 4"):
        data = load_image_folder(folder, on_error="warn", cache=cache)
    assert data.images.shape == (3, 12, 16)
    assert "good/broken.png" not in data.filenames.tolist()
    with pytest.warns(UserWarning, match="Skipped 1 of 4"):
        in_memory = load_image_folder(folder, on_error="warn").images
    np.testing.assert_array_equal(np.load(cache), in_memory)
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        "cache.npy",
        "cache.npy.json",
        "images",
    ]


def test_detector_fits_and_scores_rgb_non_square_images_from_a_folder(tmp_path):
    from skvae import VAEOutlierDetector

    rng = np.random.RandomState(0)
    for i in range(40):
        _save(
            tmp_path / "images" / f"{i:02d}.png",
            rng.randint(0, 256, (12, 16, 3), np.uint8),
        )
    data = load_image_folder(tmp_path / "images", color="rgb", cache=tmp_path / "c.npy")
    detector = VAEOutlierDetector(
        hidden_dims=(4, 8), latent_dim=2, max_epochs=2, random_state=0
    ).fit(data.images)
    assert detector.input_shape_ == (3, 12, 16)
    scores = detector.score_samples(data.images)
    assert scores.shape == (40,) and np.all(np.isfinite(scores))
