"""torch.compile and the VAE's layers: what bounds its share of the matmul peak.

Issue 33 asks for the VAE's training and scoring at 50% and 40% of the
machine's float32 matmul peak. This measures, for the default detector's
VAE (freshly initialised: times do not depend on the weights), on the CPU:

- eager against ``torch.compile`` (inductor): one training step (forward,
  negative ELBO, backward, Adam) at ``--batch-size`` images and one scoring
  pass (the per-image ELBO terms, no gradients) at ``--score-batch``
  images; milliseconds (best of ``--repeats`` alternating repeats, each of
  ``--calls`` consecutive calls), GFLOP/s and their share of the peak, and
  the seconds of the first, compiling call of each;
- whether the compiled scoring pass keeps a row's bits whatever pass it
  runs in (``score_samples`` promises that): the first rows scored in a
  pass of ``--score-batch`` images and in one of 16, and against eager;
- every convolution, transposed convolution and dense layer of the eager
  scoring pass alone, fed the input it had in that pass: milliseconds,
  GFLOP/s and share of the peak, and each layer's share of the pass;
  likewise each layer's forward and backward within the training step,
  and the share of the step the layers leave (loss, activations, Adam).

    python -m benchmarks compiled run --threads 2
"""

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch._inductor import config as inductor_config
from torch.utils.flop_counter import FlopCounterMode

from skvae import VAEOutlierDetector
from skvae.nn import NegativeELBO

from .._shared import best_call_ms, environment, read_json, write_json
from .speed import fresh_copy, matmul_peak_gflops

RESULTS_FILE = "compiled.json"
IMAGE_SHAPE = (1, 28, 28)
# Rows of the small pass the compiled scoring pass is checked against.
SMALL_PASS_ROWS = 16


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--score-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)


def default_vae(seed):
    """The default detector's VAE for 28x28 images, freshly initialised."""
    images = np.random.RandomState(seed).randint(0, 256, (256, 28, 28), np.uint8)
    detector = VAEOutlierDetector(
        max_epochs=1, transformations=None, score_type="elbo", random_state=seed
    ).fit(images)
    return fresh_copy(detector.net_.module_, seed)


def training_step(module, x, compiled):
    """One Adam step of the negative ELBO, its loss eager or compiled."""
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    criterion = NegativeELBO()

    def loss(x):
        return criterion(*module.elbo_terms(x, module(x)))

    loss = torch.compile(loss) if compiled else loss

    def step():
        optimizer.zero_grad()
        loss(x).backward()
        optimizer.step()

    return step


def scoring_pass(module, x, compiled=False):
    """The per-image ELBO terms of ``x`` without gradients, eager or compiled."""

    def terms(x):
        return module.elbo_terms(x, module(x))

    terms = torch.compile(terms) if compiled else terms

    def run():
        with torch.no_grad():
            return terms(x)

    return run


def first_call_seconds(function):
    """Seconds of the first call: for a compiled function, its compilation.

    Inductor's caches on disk are bypassed, as on a machine that never
    compiled the module.
    """
    start = time.perf_counter()
    with inductor_config.patch(force_disable_caches=True):
        function()
    return time.perf_counter() - start


def flops(function):
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def eager_and_compiled(args, peak):
    """Times, GFLOP/s and first-call seconds of both ways, training and scoring."""
    x_train = torch.rand(args.batch_size, *IMAGE_SHAPE)
    x_score = torch.rand(args.score_batch, *IMAGE_SHAPE)
    vae = default_vae(args.seed)
    tasks = {"training step": {}, "scoring pass": {}}
    first_call = {}
    for way in ("eager", "compiled"):
        compiled = way == "compiled"
        step = training_step(fresh_copy(vae, args.seed), x_train, compiled)
        score = scoring_pass(fresh_copy(vae, args.seed).eval(), x_score, compiled)
        for task, function in (("training step", step), ("scoring pass", score)):
            tasks[task][way] = function
            first_call[task, way] = first_call_seconds(function)
    rows = []
    for task, functions in tasks.items():
        ms = best_call_ms(functions, args.repeats, args.calls)
        task_flops = flops(functions["eager"])
        for way in functions:
            gflops = task_flops / ms[way] / 1e6
            rows.append(
                {
                    "task": task,
                    "way": way,
                    "ms": ms[way],
                    "gflops": gflops,
                    "share_of_peak": gflops / peak,
                    "first_call_seconds": first_call[task, way],
                }
            )
    return rows


def compiled_bits(args):
    """Whether compiled scoring keeps a row's bits across passes, and vs eager."""
    module = default_vae(args.seed).eval()
    x = torch.rand(args.score_batch, *IMAGE_SHAPE)
    small = x[:SMALL_PASS_ROWS].clone()
    long_pass = scoring_pass(module, x, compiled=True)()[0][:SMALL_PASS_ROWS]
    short_pass = scoring_pass(module, small, compiled=True)()[0]
    eager = scoring_pass(module, small)()[0]
    return {
        "same_bits_in_passes_of_two_sizes": bool(torch.equal(long_pass, short_pass)),
        "max_relative_difference_between_passes": _relative(long_pass, short_pass),
        "max_relative_difference_to_eager": _relative(short_pass, eager),
    }


def _relative(a, b):
    return float(((a - b).abs() / b.abs().clamp_min(1e-30)).max())


def layer_times(args, peak):
    """Each conv, transposed conv and dense layer of the eager scoring pass alone."""
    module = default_vae(args.seed).eval()
    x = torch.rand(args.score_batch, *IMAGE_SHAPE)
    layers = _timed_layers(module)
    whole = scoring_pass(module, x)
    inputs = _layer_inputs(layers, whole)

    def call(layer, tensor):
        def run():
            with torch.no_grad():
                layer(tensor)

        return run

    functions = {name: call(layers[name], inputs[name]) for name in layers}
    return _layer_rows(layers, functions, whole, "whole pass", args, peak)


def layer_training_times(args, peak):
    """Each layer's forward and backward within the eager training step, alone.

    Every layer but the first also computes the gradient of its input, as
    in the step; the rest of the step (the loss, the activations, Adam) is
    what the layers leave of it.
    """
    module = default_vae(args.seed).train()
    x = torch.rand(args.batch_size, *IMAGE_SHAPE)
    layers = _timed_layers(module)
    step = training_step(module, x, compiled=False)
    inputs = _layer_inputs(layers, step)
    first = next(iter(layers))

    def call(name):
        layer = layers[name]
        tensor = inputs[name].detach().requires_grad_(name != first)
        output_gradient = torch.rand_like(layer(tensor))

        def run():
            layer.zero_grad(set_to_none=True)
            layer(tensor).backward(output_gradient)

        return run

    functions = {name: call(name) for name in layers}
    return _layer_rows(layers, functions, step, "training step", args, peak)


def _timed_layers(module):
    return {
        name: layer
        for name, layer in module.named_modules()
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d))
        or type(layer).__name__ == "Dense"
    }


def _layer_inputs(layers, function):
    """The input each of ``layers`` gets when ``function`` runs once."""
    inputs = {}

    def keep_input(name):
        def hook(layer, layer_args, output):
            # Kept, not returned: a returned value would replace the output.
            inputs[name] = layer_args[0].detach()

        return hook

    hooks = [
        layer.register_forward_hook(keep_input(name)) for name, layer in layers.items()
    ]
    function()
    for hook in hooks:
        hook.remove()
    return inputs


def _layer_rows(layers, functions, whole, whole_name, args, peak):
    """Time the layers' ``functions`` beside ``whole``; one row per layer."""
    ms = best_call_ms({**functions, whole_name: whole}, args.repeats, args.calls)
    rows = []
    for name, layer in layers.items():
        gflops = flops(functions[name]) / ms[name] / 1e6
        rows.append(
            {
                "layer": name,
                "kind": type(layer).__name__,
                "ms": ms[name],
                "gflops": gflops,
                "share_of_peak": gflops / peak,
                "share_of_pass": ms[name] / ms[whole_name],
            }
        )
    return rows, ms[whole_name]


def run(args):
    peak = matmul_peak_gflops()
    ways = eager_and_compiled(args, peak)
    layers, pass_ms = layer_times(args, peak)
    training_layers, step_ms = layer_training_times(args, peak)
    write_json(
        Path(args.out) / RESULTS_FILE,
        {
            "environment": environment(),
            "options": {
                "batch_size": args.batch_size,
                "score_batch": args.score_batch,
                "repeats": args.repeats,
                "calls": args.calls,
            },
            "peak_gflops": peak,
            "ways": ways,
            "compiled_bits": compiled_bits(args),
            "layers": layers,
            "eager_pass_ms": pass_ms,
            "training_layers": training_layers,
            "eager_step_ms": step_ms,
        },
    )
    summarize(args)


def summarize(args):
    result = read_json(Path(args.out) / RESULTS_FILE)
    options = result["options"]
    print(
        f"matmul peak {result['peak_gflops']:.0f} GFLOP/s; training batch "
        f"{options['batch_size']}, scoring pass {options['score_batch']} images"
    )
    print("| task | way | ms | GFLOP/s | share of peak | first call s |")
    print("|---|---|---|---|---|---|")
    for row in result["ways"]:
        print(
            f"| {row['task']} | {row['way']} | {row['ms']:.2f} | {row['gflops']:.0f} | "
            f"{row['share_of_peak']:.0%} | {row['first_call_seconds']:.1f} |"
        )
    bits = result["compiled_bits"]
    print(
        "compiled scoring: same bits in passes of two sizes: "
        f"{bits['same_bits_in_passes_of_two_sizes']} (max relative difference "
        f"{bits['max_relative_difference_between_passes']:.1e}; to eager "
        f"{bits['max_relative_difference_to_eager']:.1e})"
    )
    print(f"eager scoring pass {result['eager_pass_ms']:.2f} ms, by layer:")
    _print_layers(result["layers"], "share of the pass")
    if "training_layers" in result:  # results from before 2026-12-07 lack it
        print(
            f"eager training step {result['eager_step_ms']:.2f} ms, by layer "
            "(forward and backward):"
        )
        _print_layers(result["training_layers"], "share of the step")
        rest = 1 - sum(row["share_of_pass"] for row in result["training_layers"])
        print(f"the rest of the step (loss, activations, Adam): {rest:.0%}")


def _print_layers(rows, share_name):
    print(f"| layer | kind | ms | GFLOP/s | share of peak | {share_name} |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['layer']} | {row['kind']} | {row['ms']:.2f} | "
            f"{row['gflops']:.0f} | {row['share_of_peak']:.0%} | "
            f"{row['share_of_pass']:.0%} |"
        )
