"""Execute paired notebooks from their ``.py`` source and store the outputs.

    python tools/execute_notebooks.py chapters/*.py solutions/*.py exercises/*.py

Each ``X.py`` (jupytext percent format) runs top to bottom in a fresh kernel in
the ``quick`` profile (:func:`resnet_tf.notebooks.execute`) and is written to
``X.ipynb`` with its outputs; the wall time of each notebook is printed
(``--json`` saves them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resnet_tf.notebooks import execute


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--json", type=Path, help="write {notebook: seconds} here")
    args = parser.parse_args(argv)
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
