import csv
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import skvae
from skvae import cli
from skvae.datasets import load_image_folder


def _write_images(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def digit_pixels(digits):
    images, y = digits
    return np.round(images * 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def model(tmp_path_factory, digit_pixels):
    """A model fitted by ``skvae fit`` on 60 PNGs of zeros, resized to 8x8."""
    pixels, y = digit_pixels
    root = tmp_path_factory.mktemp("cli")
    train = _write_images(root / "train", pixels[y == 0][:60])
    path = root / "model.skvae"
    code = cli.main(
        ["fit", str(train), "-o", str(path), "--size", "8", "--epochs", "2", "-q"]
    )
    assert code == cli.EXIT_OK
    return path


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_score_writes_one_row_per_image(tmp_path, model, digit_pixels):
    pixels, y = digit_pixels
    new = _write_images(tmp_path / "new", pixels[y == 1][:7])
    out = tmp_path / "scores.csv"
    assert cli.main(["score", str(model), str(new), "--csv", str(out), "-q"]) == 0
    rows = _rows(out)
    assert [row["path"] for row in rows] == [f"{i:03d}.png" for i in range(7)]
    detector, metadata = skvae.load(model, with_metadata=True)
    assert metadata["images"] == {"size": [8, 8], "fit": "resize", "color": "grayscale"}
    expected = detector.score_samples(load_image_folder(new, size=8).images)
    np.testing.assert_allclose([float(row["score"]) for row in rows], expected)
    pvalues = np.array([float(row["p_value"]) for row in rows])
    assert np.all((pvalues > 0) & (pvalues <= 1))
    flags = [int(row["is_outlier"]) for row in rows]
    assert flags == list(
        (detector.predict(load_image_folder(new).images) == -1).astype(int)
    )


def test_score_brings_new_images_to_the_model_size(tmp_path, model):
    rng = np.random.RandomState(0)
    new = _write_images(tmp_path / "big", rng.randint(0, 256, (3, 20, 30), np.uint8))
    out = tmp_path / "scores.csv"
    assert cli.main(["score", str(model), str(new), "--csv", str(out), "-q"]) == 0
    assert len(_rows(out)) == 3


def test_explain_writes_a_map_beside_each_image(tmp_path, model, digit_pixels):
    pixels, _ = digit_pixels
    _write_images(tmp_path / "new" / "batch1", pixels[:3])
    out = tmp_path / "maps"
    assert (
        cli.main(
            ["explain", str(model), str(tmp_path / "new"), "--out", str(out), "-q"]
        )
        == 0
    )
    maps = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert maps == [f"batch1/{i:03d}.map.png" for i in range(3)]
    picture = np.asarray(Image.open(out / maps[0]))
    # The image and its map side by side, enlarged to be seen.
    assert picture.shape == (128, 256, 3)


def _fails_with(args, capsys, message):
    assert cli.main(args) == cli.EXIT_FAILURE
    err = capsys.readouterr().err
    # Progress bars may come first; the error is the last line.
    assert err.splitlines()[-1].startswith(f"skvae {args[0]}: error:")
    assert message in err.splitlines()[-1]


def test_missing_and_empty_folders_fail_clearly(tmp_path, model, capsys):
    _fails_with(
        ["score", str(model), str(tmp_path / "nowhere")], capsys, "does not exist"
    )
    (tmp_path / "empty").mkdir()
    _fails_with(
        ["fit", str(tmp_path / "empty"), "-o", str(tmp_path / "m.skvae")],
        capsys,
        "holds no image file",
    )
    assert not (tmp_path / "m.skvae").exists()


def test_images_of_several_sizes_point_to_the_size_option(
    tmp_path, digit_pixels, capsys
):
    pixels, _ = digit_pixels
    train = _write_images(tmp_path / "train", pixels[:3])
    Image.fromarray(np.zeros((12, 8), np.uint8)).save(train / "tall.png")
    path = tmp_path / "m.skvae"
    _fails_with(["fit", str(train), "-o", str(path)], capsys, "is 12x8")
    _fails_with(
        ["fit", str(train), "-o", str(path)], capsys, "Pass --size HEIGHT WIDTH"
    )
    assert not path.exists()


def test_damaged_or_missing_model_fails_clearly(tmp_path, model, digit_pixels, capsys):
    pixels, _ = digit_pixels
    new = _write_images(tmp_path / "new", pixels[:2])
    damaged = tmp_path / "damaged.skvae"
    damaged.write_bytes(model.read_bytes()[:1000])
    _fails_with(["score", str(damaged), str(new)], capsys, "damaged.skvae is damaged")
    _fails_with(
        ["score", str(tmp_path / "none.skvae"), str(new)], capsys, "does not exist"
    )


def test_wrong_image_size_for_the_model_is_named(tmp_path, digit_pixels, capsys):
    pixels, y = digit_pixels
    train = _write_images(tmp_path / "train", pixels[y == 0][:40])
    path = tmp_path / "own-size.skvae"
    assert cli.main(["fit", str(train), "-o", str(path), "--epochs", "1", "-q"]) == 0
    rng = np.random.RandomState(0)
    new = _write_images(tmp_path / "new", rng.randint(0, 256, (2, 12, 12), np.uint8))
    _fails_with(["score", str(path), str(new)], capsys, "are 12x12 grayscale, but")


def test_damaged_image_is_named_or_skipped(tmp_path, model, digit_pixels, capsys):
    pixels, _ = digit_pixels
    new = _write_images(tmp_path / "new", pixels[:2])
    (new / "broken.png").write_bytes(b"not a png")
    _fails_with(["score", str(model), str(new)], capsys, "broken.png cannot be read")
    _fails_with(["score", str(model), str(new)], capsys, "pass --skip-damaged")
    out = tmp_path / "s.csv"
    with pytest.warns(UserWarning, match="broken.png"):
        code = cli.main(
            ["score", str(model), str(new), "--skip-damaged", "--csv", str(out), "-q"]
        )
    assert code == 0 and len(_rows(out)) == 2


def test_bad_arguments_exit_with_usage_code(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["fit", "folder"])  # no -o
    assert info.value.code == cli.EXIT_USAGE
    assert "--output" in capsys.readouterr().err


def test_ctrl_c_exits_with_130(tmp_path, model, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_read", interrupted)
    assert cli.main(["score", str(model), str(tmp_path)]) == cli.EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["fit"], ["score"], ["explain"]])
def test_help_shows_examples(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([*command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "skvae score" in out


@pytest.mark.multiprocess
def test_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "skvae.cli", "score", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "examples:" in result.stdout and "skvae score" in result.stdout
