"""Command line: ``python -m skvae.benchmark [--dataset fashion-mnist] ...``."""

from ._command import main

if __name__ == "__main__":
    main()
