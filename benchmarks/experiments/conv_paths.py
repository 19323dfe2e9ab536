"""Convolution kernels for a lone row: which keep its bits, and at what cost.

``score_samples`` runs a lone row in a pass of 4 rows (``skvae.scoring``
pads the last pass to a multiple of 4) because PyTorch convolves a single
image with another kernel (its own im2col path) than two or more (oneDNN),
and the two round differently. This checks, for the default VAE and the
transformation classifier at several image shapes, on the CPU:

- bits: for every convolution and dense layer, whether a row alone gives
  the same output as within a pass of 64 rows (the layer fed the inputs the
  64-row pass gave it), with PyTorch's choice of kernel, with oneDNN forced
  for the convolutions (``torch.ops.aten.mkldnn_convolution`` and
  ``torch.ops.mkldnn._convolution_transpose_pointwise``), and for the
  dense layers with the row padded to 4;
- milliseconds (best of ``--repeats`` alternating repeats): the module's
  forward pass for one row padded to 4 rows (what scoring runs now), alone
  with PyTorch's choice, alone with oneDNN forced for the convolutions, and
  per row in passes of 64 with PyTorch's choice and with oneDNN forced.

- bits of elementwise functions (``exp``, ``tanh``, ``sigmoid``, ``silu``,
  ``log_softmax``) on a row of a few features alone and within 64 rows: a
  vectorised loop and its scalar tail may round differently, and a lone
  short row falls wholly in the tail.

The weights are freshly initialised: bits and times do not depend on them.

    python -m benchmarks conv_paths run
"""

from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from skvae.nn import TransformationClassifier, make_vae

from .._shared import best_of_alternating, environment, read_json, write_json

RESULTS_FILE = "conv_paths.json"
SHAPES = ((1, 28, 28), (1, 8, 8), (3, 32, 32))
PASS_ROWS = 64
PADDED_ROWS = 4


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=50)


def models(image_shape):
    """The default detector's two networks for images of ``image_shape``."""
    vae = make_vae(image_shape, 16, hidden_dims=(32, 64))
    classifier = TransformationClassifier(image_shape, channels=(32, 64, 128))
    return {
        "VAE": (vae.eval(), vae),
        "transformation classifier": (classifier.eval(), classifier.score_copies),
    }


def onednn_forward(layer):
    """``layer``'s forward pass with oneDNN's kernel at any number of rows."""
    if isinstance(layer, nn.ConvTranspose2d):

        def forward(x):
            return torch.ops.mkldnn._convolution_transpose_pointwise(
                x, layer.weight, layer.bias, layer.padding, layer.output_padding,
                layer.stride, layer.dilation, layer.groups, "none", [], "",
            )  # fmt: skip

    else:

        def forward(x):
            return torch.ops.aten.mkldnn_convolution(
                x, layer.weight, layer.bias, layer.padding, layer.stride,
                layer.dilation, layer.groups,
            )  # fmt: skip

    return forward


def convolutions(module):
    return [
        m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]


@contextmanager
def onednn_convolutions(module):
    """Every convolution of ``module`` runs oneDNN's kernel, whatever the rows."""
    layers = convolutions(module)
    for layer in layers:
        layer.forward = onednn_forward(layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def layer_inputs(module, run, x):
    """Each convolution's and dense layer's input in the pass ``run(x)``."""
    inputs, hooks = {}, []

    def keep_input(layer, args, output):
        inputs.setdefault(layer, args[0])  # returns None: the output stays

    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            hooks.append(layer.register_forward_hook(keep_input))
    try:
        run(x)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def same_bits(layer, batch, rows, full=None):
    """Whether ``layer`` gives each of ``rows`` of ``batch`` the same bits alone.

    ``full`` is the whole batch's output to compare with (by default
    ``layer(batch)``).
    """
    full = layer(batch) if full is None else full
    return all(torch.equal(layer(batch[i : i + 1]), full[i : i + 1]) for i in rows)


def padded_same_bits(layer, batch, rows):
    """The same, with the lone row zero-padded to ``PADDED_ROWS`` rows."""
    full = layer(batch)
    for i in rows:
        padded = torch.zeros((PADDED_ROWS, *batch.shape[1:]))
        padded[0] = batch[i]
        if not torch.equal(layer(padded)[:1], full[i : i + 1]):
            return False
    return True


def check_bits(module, run, x):
    """Per kind of layer and kernel: does every layer keep a lone row's bits?"""
    inputs = layer_inputs(module, run, x)
    rows = (0, 1, len(x) // 2, len(x) - 1)
    convs = [m for m in inputs if not isinstance(m, nn.Linear)]
    dense = [m for m in inputs if isinstance(m, nn.Linear)]
    bits = {
        "convolutions, PyTorch's choice": all(
            same_bits(m, inputs[m], rows) for m in convs
        ),
        "dense layers, alone": all(same_bits(m, inputs[m], rows) for m in dense),
        "dense layers, padded to 4": all(
            padded_same_bits(m, inputs[m], rows) for m in dense
        ),
    }
    # Compared with PyTorch's own 64-row output: what bulk scoring computes.
    full = {m: m(inputs[m]) for m in convs}
    with onednn_convolutions(module):
        bits["convolutions, oneDNN forced"] = all(
            same_bits(m, inputs[m], rows, full[m]) for m in convs
        )
    return bits


ELEMENTWISE = {
    "exp": torch.exp,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "silu": torch.nn.functional.silu,
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
}
ROW_SIZES = (2, 3, 8, 16, 64)


def elementwise_bits():
    """Per function and row size: does a lone row keep its bits of a 64-row pass?"""
    bits = {}
    for name, function in ELEMENTWISE.items():
        for size in ROW_SIZES:
            x = 4 * torch.rand(PASS_ROWS, size) - 2
            bits[f"{name}, {size} features"] = same_bits(
                function, x, (0, 1, PASS_ROWS // 2, PASS_ROWS - 1)
            )
    return bits


def timings(module, run, x, repeats):
    """Best milliseconds of one row (three ways) and per row of a 64-row pass."""
    one, padded = x[:1], torch.cat([x[:1], torch.zeros_like(x[: PADDED_ROWS - 1])])

    def forced(rows):
        def call():
            with onednn_convolutions(module):
                run(rows)

        return call

    functions = {
        "one row padded to 4": lambda: run(padded),
        "one row alone": lambda: run(one),
        "one row alone, oneDNN forced": forced(one),
        "64 rows": lambda: run(x),
        "64 rows, oneDNN forced": forced(x),
    }
    seconds = best_of_alternating(functions, repeats, report=None)
    ms = {name: 1e3 * min(values) for name, values in seconds.items()}
    for name in ("64 rows", "64 rows, oneDNN forced"):
        ms[name + " (per row)"] = ms.pop(name) / len(x)
    return ms


def run(args):
    torch.manual_seed(args.seed)
    results = []
    with torch.inference_mode():
        for shape in SHAPES:
            x = torch.rand(PASS_ROWS, *shape)
            for name, (module, forward) in models(shape).items():
                results.append(
                    {
                        "shape": list(shape),
                        "network": name,
                        "bits": check_bits(module, forward, x),
                        "ms": timings(module, forward, x, args.repeats),
                    }
                )
        elementwise = elementwise_bits()
    write_json(
        Path(args.out) / RESULTS_FILE,
        {"results": results, "elementwise": elementwise, "environment": environment()},
    )
    summarize(args)


def summarize(args):
    saved = read_json(Path(args.out) / RESULTS_FILE)
    results = saved["results"]
    bit_names = list(results[0]["bits"])
    ms_names = list(results[0]["ms"])
    print("| shape | network | " + " | ".join(bit_names) + " |")
    print("|---|---|" + "---|" * len(bit_names))
    for r in results:
        cells = ["same" if r["bits"][n] else "differ" for n in bit_names]
        print(
            f"| {'x'.join(map(str, r['shape']))} | {r['network']} | "
            + " | ".join(cells)
            + " |"
        )
    print()
    print("| shape | network | " + " | ".join(ms_names) + " |")
    print("|---|---|" + "---|" * len(ms_names))
    for r in results:
        cells = [f"{r['ms'][n]:.3f}" for n in ms_names]
        print(
            f"| {'x'.join(map(str, r['shape']))} | {r['network']} | "
            + " | ".join(cells)
            + " |"
        )
    print()
    differ = [name for name, same in saved.get("elementwise", {}).items() if not same]
    print("elementwise, a lone row's bits differ: " + ("; ".join(differ) or "none"))
