"""Seeding and evaluation helpers for torch modules."""

from contextlib import contextmanager

import torch

from ._threads import SharedLimit


@contextmanager
def seeded(seed, device="cpu"):
    """Run the block with torch's RNGs seeded, restoring the global state after.

    skorch has no ``random_state`` (skorch issue #33), so the estimator owns
    it: weight init, mini-batch shuffling and sampled latents all draw from
    torch's global generators, which this seeds without leaking the seed
    into the caller's session.
    """
    cuda_devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def evaluating(module, gradients=False):
    """Put ``module`` in eval mode, restoring its mode after.

    Without ``gradients`` the block runs in inference mode; with them, grad
    mode is on (explanation maps differentiate the module).
    """
    # Switching modes walks every submodule: a cost that scoring one row
    # notices, so a module already in eval mode is left alone.
    was_training = module.training
    if was_training:
        module.eval()
    try:
        with grad_mode(gradients):
            yield module
    finally:
        if was_training:
            module.train()


def grad_mode(gradients):
    """Grad mode with ``gradients``, otherwise inference mode.

    Both are thread-local: a worker thread enters its own.
    """
    return torch.enable_grad() if gradients else torch.inference_mode()


def _torch_to_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads, lambda: torch.set_num_threads(threads)


_one_torch_thread = SharedLimit(_torch_to_one_thread)


def one_torch_thread():
    """Run torch's CPU operators on one thread inside the block.

    Yields the intra-op thread count set before (the first of several
    overlapping callers' one), which the caller may spend on threads of its
    own, and restores it when the last overlapping caller leaves. torch's
    thread count is process-wide, like the BLAS limits of threadpoolctl: other
    threads' torch work inside the block also runs on one thread.
    """
    return _one_torch_thread.hold()
