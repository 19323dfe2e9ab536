"""The ``skvae`` command line: fit a detector on a folder of images, score, explain.

Each command reads its images with :func:`skvae.datasets.load_image_folder`;
``fit`` stores how it read them (size, fit, color) in the model file, so
``score`` and ``explain`` read new images the same way.
"""

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

EXIT_OK = 0
EXIT_FAILURE = 1  # bad data, a damaged model, a missing folder
EXIT_USAGE = 2  # bad arguments (argparse's code)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT

# Images scored per step of the progress bar.
SCORE_CHUNK_IMAGES = 4096

EXAMPLES = """\
examples:
  skvae fit good_parts/ -o parts.skvae --size 64 64
  skvae score parts.skvae today/ --csv scores.csv
  skvae explain parts.skvae today/ --out maps/

exit codes: 0 done, 1 failed (the message says why), 2 bad arguments,
130 interrupted.
"""


def main(argv=None):
    """Run the command line; return its exit code.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    code : int
        0 when the command succeeded, 1 when it failed (with a message on
        stderr), 2 for bad arguments, 130 when interrupted.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.command(args)
    except (OSError, ValueError) as error:
        print(f"skvae {args.name}: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"skvae {args.name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _parser():
    parser = argparse.ArgumentParser(
        prog="skvae",
        description="Find unusual images in a folder with a variational autoencoder.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    fit = _command(
        commands, "fit", _fit, "train a detector on a folder of normal images"
    )
    fit.add_argument("folder", type=Path, help="folder of (mostly normal) images")
    fit.add_argument(
        "-o", "--output", type=Path, required=True, help="model file to write"
    )
    _image_arguments(fit)
    fit.add_argument(
        "--epochs", default="auto", help='training epochs, or "auto" (default)'
    )
    fit.add_argument("--latent-dim", type=int, default=16, help="default: 16")
    fit.add_argument(
        "--contamination",
        type=float,
        default=0.01,
        help="share of normal images to flag at the threshold (default: 0.01)",
    )
    fit.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")

    score = _command(commands, "score", _score, "score the images of a folder")
    score.add_argument("model", type=Path, help="model file written by skvae fit")
    score.add_argument("folder", type=Path, help="folder of images to score")
    score.add_argument(
        "--csv",
        type=Path,
        help="write path, score, p_value, is_outlier rows here (default: stdout)",
    )
    _reading_arguments(score)

    explain = _command(
        commands, "explain", _explain, "write anomaly-map PNGs of a folder's images"
    )
    explain.add_argument("model", type=Path, help="model file written by skvae fit")
    explain.add_argument("folder", type=Path, help="folder of images to explain")
    explain.add_argument(
        "--out", type=Path, required=True, help="folder for the maps (mirrors FOLDER)"
    )
    _reading_arguments(explain)
    return parser


def _command(commands, name, run, summary):
    command = commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.set_defaults(command=run, name=name)
    command.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return command


def _reading_arguments(command):
    command.add_argument(
        "--skip-damaged",
        action="store_true",
        help="skip files that cannot be read (with a warning) instead of failing",
    )


def _image_arguments(command):
    command.add_argument(
        "--size",
        type=int,
        nargs="+",
        metavar="SIDE",
        help="bring every image to HEIGHT WIDTH (or one SIDE); default: keep the size",
    )
    command.add_argument(
        "--fit",
        choices=["resize", "center_crop"],
        default="resize",
        dest="fit_mode",
        help="how to reach --size: scale the whole image, or keep the aspect "
        "ratio and cut the centre (default: resize)",
    )
    command.add_argument(
        "--color",
        choices=["grayscale", "rgb"],
        default="grayscale",
        help="default: grayscale",
    )
    command.add_argument("--cache", type=Path, help="keep the images in this .npy file")
    _reading_arguments(command)


def _fit(args):
    from . import save
    from ._outlier import VAEOutlierDetector

    size = _size(args.size)
    reading = {"size": size, "fit": args.fit_mode, "color": args.color}
    data = _read(args.folder, reading, args, cache=args.cache)
    detector = VAEOutlierDetector(
        latent_dim=args.latent_dim,
        max_epochs=_epochs(args.epochs),
        contamination=args.contamination,
        random_state=args.random_state,
        verbose=0 if args.quiet else 2,
    )
    _say(args, f"training on {len(data.images):,} images from {args.folder}")
    detector.fit(data.images)
    metadata = {"images": {**reading, "size": list(size) if size else None}}
    save(detector, args.output, metadata=metadata)
    _say(args, f"wrote {args.output}")


def _score(args):
    detector, reading = _load_model(args.model)
    data = _read(args.folder, reading, args)
    _check_shape(data.images, detector, args)
    scores = _in_chunks(detector.score_samples, data.images, args, "scoring")
    pvalues = _pvalues(detector, scores)
    is_outlier = scores - detector.offset_ < 0  # predict's rule
    out = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(out)
        writer.writerow(["path", "score", "p_value", "is_outlier"])
        for row in zip(data.filenames, scores, pvalues, is_outlier, strict=True):
            name, score, pvalue, flagged = row
            writer.writerow([name, repr(float(score)), _cell(pvalue), int(flagged)])
    finally:
        if args.csv:
            out.close()
    _say(args, f"{int(is_outlier.sum())} of {len(scores)} images flagged")


def _explain(args):
    from .explain import anomaly_map

    detector, reading = _load_model(args.model)
    data = _read(args.folder, reading, args)
    _check_shape(data.images, detector, args)
    maps = _in_chunks(
        lambda images: anomaly_map(detector, images).sum(axis=1),
        data.images,
        args,
        "explaining",
    )
    # One colour scale for the whole folder, robust to a few extreme pixels.
    low, high = np.percentile(maps, [1, 99.5])
    for name, image, pixel_map in zip(data.filenames, data.images, maps, strict=True):
        target = args.out / Path(name).with_suffix(".map.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        _side_by_side(image, pixel_map, low, high).save(target)
    _say(args, f"wrote {len(maps)} maps to {args.out}")


def _load_model(path):
    """Return the detector of a model file and how ``skvae fit`` read its images."""
    from . import load
    from ._outlier import VAEOutlierDetector

    if not Path(path).is_file():
        raise FileNotFoundError(f"Model file {path} does not exist.")
    detector, metadata = load(path, with_metadata=True)
    if not isinstance(detector, VAEOutlierDetector):
        raise ValueError(
            f"{path} holds a {type(detector).__name__}; the command line needs a "
            "VAEOutlierDetector (write one with skvae fit)."
        )
    reading = metadata.get("images") or _reading_of(detector)
    size = reading.get("size")
    return detector, {**reading, "size": tuple(size) if size else None}


def _reading_of(detector):
    """How to read images for a detector fitted outside the command line."""
    channels, height, width = detector.input_shape_
    color = "rgb" if channels == 3 else "grayscale"
    return {"size": (height, width), "fit": "resize", "color": color}


def _read(folder, reading, args, cache=None):
    from .datasets import load_image_folder

    try:
        return load_image_folder(
            folder,
            size=reading["size"],
            fit=reading["fit"],
            color=reading["color"],
            on_error="warn" if args.skip_damaged else "raise",
            cache=cache,
            verbose=not args.quiet,
        )
    except ValueError as error:
        message = str(error)
        for argument, option in _OPTIONS_FOR_ARGUMENTS.items():
            message = message.replace(argument, option)
        raise ValueError(message) from error


# The loader's advice names its Python arguments; the command line names its
# options instead.
_OPTIONS_FOR_ARGUMENTS = {
    'pass on_error="warn"': "pass --skip-damaged",
    "Pass size=(height, width)": "Pass --size HEIGHT WIDTH",
}


def _check_shape(images, detector, args):
    """Raise if the folder's images do not have the model's shape."""
    channels = 1 if images.ndim == 3 else images.shape[1]
    found = (channels, *images.shape[-2:])
    if found != tuple(detector.input_shape_):
        raise ValueError(
            f"the images in {args.folder} are {_shape_text(found)}, but "
            f"{args.model} takes {_shape_text(detector.input_shape_)}. Resize "
            "them, or refit with skvae fit --size HEIGHT WIDTH (and --color rgb "
            "for color images)."
        )


def _shape_text(shape):
    channels, height, width = shape
    kind = {1: "grayscale", 3: "RGB"}.get(channels, f"{channels}-channel")
    return f"{height}x{width} {kind}"


def _in_chunks(fn, images, args, what):
    """``fn`` of consecutive chunks of ``images``, stacked, with a progress bar."""
    starts = range(0, len(images), SCORE_CHUNK_IMAGES)
    if not args.quiet:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=what, unit="chunk")
    return np.concatenate(
        [fn(images[start : start + SCORE_CHUNK_IMAGES]) for start in starts]
    )


def _pvalues(detector, scores):
    """Conformal p-values of ``scores``; NaN when the model holds no calibration set."""
    from .conformal import conformal_pvalues

    if not len(detector.calibration_indices_):
        return np.full(len(scores), np.nan)
    return conformal_pvalues(detector.calibration_scores_, scores)


def _cell(value):
    return "" if np.isnan(value) else repr(float(value))


def _side_by_side(image, pixel_map, low, high):
    """Return the image and its colour-mapped anomaly map side by side (PIL)."""
    from matplotlib import colormaps
    from PIL import Image

    rgb = np.repeat(image[None], 3, axis=0) if image.ndim == 2 else image
    shade = np.clip((pixel_map - low) / max(high - low, 1e-12), 0, 1)
    heat = (colormaps["inferno"](shade)[..., :3] * 255).astype(np.uint8)
    both = np.concatenate([rgb.transpose(1, 2, 0), heat], axis=1)
    # Small images are enlarged (by whole pixels) to be seen.
    factor = max(1, 128 // both.shape[0])
    return Image.fromarray(both.repeat(factor, axis=0).repeat(factor, axis=1))


def _size(values):
    if values is None:
        return None
    if len(values) not in (1, 2):
        raise ValueError(f"--size takes HEIGHT WIDTH or one SIDE, not {values}.")
    return (values[0], values[-1])


def _epochs(value):
    if value == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f'--epochs must be a number or "auto", not {value!r}.'
        ) from None


def _say(args, message):
    if not args.quiet:
        print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
