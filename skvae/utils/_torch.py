"""Seeding and evaluation helpers for torch modules."""

from contextlib import contextmanager

import torch


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
    grad_mode = torch.enable_grad() if gradients else torch.inference_mode()
    try:
        with grad_mode:
            yield module
    finally:
        if was_training:
            module.train()
