"""Execute paired notebooks from their ``.py`` source and store the outputs.

    python tools/execute_notebooks.py chapters/*.py solutions/*.py exercises/*.py

Each ``X.py`` (jupytext percent format) is read, executed top to bottom in a
fresh kernel in the ``quick`` profile, and written to ``X.ipynb`` with its
outputs; the wall time of each notebook is printed (``--json`` saves them).
Only notebooks whose source changed need re-running, but running all is the
safe way to refresh stored outputs after a package change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "RESNET_TF_PROFILE": "quick", "PYTHONHASHSEED": "0"}


def execute(source: Path, timeout: int = 900) -> float:
    """Run ``source`` and write its ``.ipynb`` twin; return the seconds it took."""
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3", "language": "python",
    }
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    nbformat.write(notebook, source.with_suffix(".ipynb"))
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--json", type=Path, help="write {notebook: seconds} here")
    args = parser.parse_args(argv)
    os.environ.update(QUIET_ENV)
    times = {}
    for source in args.sources:
        if source.suffix != ".py":
            print(f"skipping {source}: give the .py source", file=sys.stderr)
            continue
        seconds = execute(source, args.timeout)
        times[str(source)] = round(seconds, 1)
        print(f"{seconds:7.1f} s  {source}", flush=True)
    print(f"{sum(times.values()):7.1f} s  total")
    if args.json:
        args.json.write_text(json.dumps(times, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
