"""What every experiment shares: the run record, timing, results files."""

import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# Fashion-MNIST's classes, shortened for table columns (the data set's own
# names are `load_fashion_mnist().target_names`).
FASHION_MNIST_SHORT_NAMES = (
    "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Boot",
)  # fmt: skip


def add_params(parser, estimator="VAEOutlierDetector"):
    """``--params``: ``estimator`` keyword arguments as JSON (default none)."""
    parser.add_argument(
        "--params",
        type=json.loads,
        default={},
        help=f"{estimator} keyword arguments as JSON, e.g. "
        "'{\"hidden_dims\": [24, 48]}'",
    )


def add_benchmark_options(parser):
    """The positional options, after ``--``, of ``python -m skvae.benchmark``."""
    parser.add_argument(
        "options",
        nargs="*",
        help="after --: the options of python -m skvae.benchmark naming the splits",
    )


def environment(argv=None):
    """The machine, the versions, the git commit and the command of a run.

    Parameters
    ----------
    argv : list of str or None
        The command's arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    record : dict
        JSON-serialisable.
    """
    import sklearn
    import skorch
    import torch

    import skvae

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "sklearn": sklearn.__version__,
        "skvae": skvae.__version__,
    }
    try:
        import pyod

        versions["pyod"] = pyod.__version__
    except ImportError:
        pass
    return {
        "command": "python -m benchmarks "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **git_state(),
        "versions": versions,
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def git_state():
    """The checkout's commit and whether it had uncommitted changes."""

    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "HEAD") or None
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit, "uncommitted_changes": dirty}


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn, *args):
    """Call ``fn(*args)``; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def best_call_ms(functions, repeats, calls=1):
    """Best milliseconds of one call of each function, over alternating repeats.

    Each repeat calls every function ``calls`` times in a row, so with
    ``calls > 1`` each is timed as a loop calling it again and again would
    find the machine (its own data in cache), and the repeats alternate the
    functions as :func:`best_of_alternating` does.
    """
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(repeats):
        for name, function in functions.items():
            for _ in range(calls):
                start = time.perf_counter()
                function()
                best[name] = min(best[name], time.perf_counter() - start)
    return {name: 1e3 * seconds for name, seconds in best.items()}


def best_of_alternating(functions, repeats, *, report=print):
    """Time each function ``repeats`` times, alternating them within a repeat.

    Alternating lets every side meet the machine in the same states (caches,
    other load, clock), so a ratio of best times compares like with like.

    Parameters
    ----------
    functions : dict of str to callable
        Called without arguments.
    repeats : int
        Rounds; each calls every function once, in the given order.
    report : callable or None
        Called with a line after each call.

    Returns
    -------
    seconds : dict of str to list of float
        Every time of each function; ``min`` of a list is its best.
    """
    seconds = {name: [] for name in functions}
    for repeat in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            seconds[name].append(time.perf_counter() - start)
            if report is not None:
                report(f"repeat {repeat}: {name} {seconds[name][-1]:.3f} s")
    return seconds


def write_json(path, data):
    """Write ``data`` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def append_jsonl(path, record):
    """Append one record as a JSON line (results saved as they finish)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lines:
        lines.write(json.dumps(record) + "\n")


def read_jsonl(path):
    """The records of a JSON-lines file; none if it does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def unfinished_splits(path, options):
    """The splits of ``python -m skvae.benchmark OPTIONS`` not yet in ``path``.

    ``path`` holds one JSON line per finished split (its ``"split"``), so an
    interrupted run continues where it stopped.
    """
    from skvae.benchmark import benchmark_splits

    done = {record["split"] for record in read_jsonl(path)}
    for split in benchmark_splits(options):
        if split[0] not in done:
            yield split


def read_json(path):
    """The data of a JSON results file."""
    return json.loads(Path(path).read_text())


def in_fresh_process(module, function, *args, threads):
    """Call ``module.function(*args)`` in a fresh Python process.

    Memory peaks and import costs are measured apart from this process's.
    The function prints its result as its last line of JSON; it is returned.
    """
    code = (
        "import json, sys\n"
        f"from {module} import {function}\n"
        f"{function}(*json.loads(sys.argv[1]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(args))],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def rss_kib():
    """Current (anonymous, total) resident memory of this process in KiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "VmRSS"):
            fields[key] = int(value.split()[0])
    return fields["RssAnon"], fields["VmRSS"]


def measure_rss(fn):
    """Call ``fn()``; return its result, its seconds and the RSS it took.

    A sampler thread reads the process's resident memory every 10 ms; the
    returned dict holds the anonymous RSS before the call and the peaks of
    the anonymous and total RSS during it, in MiB.
    """
    before = rss_kib()
    peak = list(before)
    done = threading.Event()

    def sample():
        while not done.is_set():
            anon, total = rss_kib()
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
    memory = {
        "anon_before_mib": before[0] / 1024,
        "anon_peak_mib": peak[0] / 1024,
        "total_peak_mib": peak[1] / 1024,
    }
    return result, seconds, memory


def run_detection_command(options, out, *, threads, seed):
    """Run ``python -m skvae.benchmark OPTIONS`` writing into the folder ``out``.

    The command saves each finished method and split in ``out/records.jsonl``
    and continues an interrupted run from there.
    """
    command = [sys.executable, "-m", "skvae.benchmark", *options]
    command += ["--output-dir", str(out), "--threads", str(threads)]
    if "--random-state" not in options:
        command += ["--random-state", str(seed)]
    subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
        check=True,
    )
