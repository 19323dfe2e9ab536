"""The machine and library versions a benchmark result was measured with."""

import platform

import sklearn
import skorch
import torch

import skvae


def environment(args):
    """Versions, CPU, torch threads and the script's arguments, as a dict."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "skvae": skvae.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
