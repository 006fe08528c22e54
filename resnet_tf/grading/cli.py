"""The ``grade`` command: ``python -m resnet_tf grade SUBMISSION... --out DIR``."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Grade students' exercise notebooks. Each submission runs from a temporary copy in a
fresh kernel (the grader's own Python); every check(...) it calls is scored with the
students' checks plus hidden ones. Writes DIR/gradebook.csv, DIR/<name>/results.json
(Gradescope format), DIR/<name>/feedback.md and DIR/<name>/executed.ipynb, and prints
a summary. A broken submission is reported in its row and grading goes on; the exit
code is non-zero only for usage errors. Submissions are never modified.
"""


def register(subparsers) -> None:
    """Add the ``grade`` sub-command."""
    parser = subparsers.add_parser(
        "grade", help="grade a class's exercise notebooks",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", nargs="+", metavar="SUBMISSION",
                        help="notebook files, or folders searched recursively for *.ipynb")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (new or empty, unless --force)")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="longest one cell may run before it is interrupted and the "
                             "next cell runs (default: 600)")
    parser.add_argument("--notebook-timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-clock limit for one whole submission "
                             "(default: 6 x --timeout)")
    parser.add_argument("--assignment", default=None, metavar="NAME",
                        help="the assignment to grade (default: the one most submissions "
                             "name in their metadata)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="submissions graded at the same time (default: 1)")
    parser.add_argument("--force", action="store_true",
                        help="write into an output folder that is not empty, replacing the "
                             "files of an earlier run there")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the grader; 0 when grading ran, 2 for usage errors."""
    from .collect import UsageError
    from .grader import Options, grade_class
    from .reports import summary_table

    if args.timeout <= 0:
        return _usage("--timeout must be positive")
    notebook_timeout = args.notebook_timeout or 6 * args.timeout
    if notebook_timeout <= 0:
        return _usage("--notebook-timeout must be positive")
    if args.jobs < 1:
        return _usage("--jobs must be at least 1")
    options = Options(cell_timeout=args.timeout, notebook_timeout=notebook_timeout,
                      jobs=args.jobs, force=args.force)

    def progress(result, done: int, total: int) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {result.submission.name}: {result.total:g} points, "
                  f"{result.status} ({result.seconds:.0f} s)", flush=True)

    try:
        run = grade_class(args.submissions, args.out, options, args.assignment, progress)
    except UsageError as exc:
        return _usage(str(exc))
    print()
    print(summary_table(run))
    return 0


def _usage(message: str) -> int:
    """Print a usage error and return its exit code."""
    print(f"python -m resnet_tf grade: error: {message}", file=sys.stderr)
    return 2
