"""The benchmark runner: ``python -m benchmarks EXPERIMENT {run,summarize} ...``.

Every experiment takes ``--threads`` (torch and OpenMP threads, default 1:
give each benchmark process one thread when anything else runs), ``--seed``
and ``--out`` (its results folder, default ``benchmarks/results/EXPERIMENT``).
``run`` measures and saves as results finish; ``summarize`` prints the
tables from the saved results. Each ``run`` appends its record (the command,
git commit, versions, machine, seconds) to ``OUT/runs.jsonl``.

    python -m benchmarks                          # the experiments
    python -m benchmarks speed run --threads 2    # one of them
    python -m benchmarks speed summarize
"""

import argparse
import importlib
import os
import sys
import time

from ._shared import RESULTS, append_jsonl, environment
from .experiments import EXPERIMENTS


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    threads = _threads(argv)
    # OpenMP reads its thread count once, when torch loads: set it first.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    args = _parser(argv).parse_args(argv)
    if args.experiment is None:
        _list_experiments()
        return 0
    import torch

    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    if args.action == "summarize":
        args.module.summarize(args)
        return 0
    record = environment(argv)
    start = time.perf_counter()
    try:
        args.module.run(args)
    except BaseException as error:
        record["error"] = repr(error)
        raise
    finally:
        record["seconds"] = round(time.perf_counter() - start, 1)
        append_jsonl(os.path.join(args.out, "runs.jsonl"), record)
    return 0


def _threads(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=1)
    return pre.parse_known_args(argv)[0].threads


def _parser(argv):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    experiments = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    chosen = next((arg for arg in argv if arg in EXPERIMENTS), None)
    for name, summary in EXPERIMENTS.items():
        experiment = experiments.add_parser(name, help=summary, description=summary)
        if name != chosen:
            continue  # only the chosen experiment's module is imported
        module = importlib.import_module(f"benchmarks.experiments.{name}")
        actions = experiment.add_subparsers(
            dest="action", metavar="ACTION", required=True
        )
        run = actions.add_parser("run", help="measure and save the results")
        module.add_arguments(run)
        summarize = actions.add_parser("summarize", help="tables from saved results")
        if hasattr(module, "add_summary_arguments"):
            module.add_summary_arguments(summarize)
        for action in (run, summarize):
            _add_shared_arguments(action, name)
            action.set_defaults(module=module)
    return parser


def _add_shared_arguments(parser, name):
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and OpenMP threads (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--out",
        default=str(RESULTS / name),
        help=f"results folder (default benchmarks/results/{name})",
    )


def _list_experiments():
    print(__doc__.split("\n\n")[0], "\n")
    width = max(map(len, EXPERIMENTS))
    for name, summary in EXPERIMENTS.items():
        print(f"  {name:{width}s}  {summary}")
    print("\npython -m benchmarks EXPERIMENT run --help  (its options)")


if __name__ == "__main__":
    sys.exit(main())
