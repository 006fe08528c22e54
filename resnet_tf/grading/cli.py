"""The ``grade`` command: ``python -m resnet_tf grade SUBMISSION... --out DIR``."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Grade students' exercise notebooks. Each submission runs from a private copy in a fresh,
sandboxed kernel; afterwards the kernel hands over the answers its check(...) calls saw,
as plain data, and the grader scores them itself: the students' checks plus hidden ones
drawn from the instructor's key, against each student's own variant. Writes
DIR/gradebook.csv, DIR/<name>/results.json (Gradescope format), DIR/<name>/feedback.md
and DIR/<name>/executed.ipynb, and prints a summary. A broken submission is reported in
its row and grading goes on. Exit codes: 0 when grading ran, 2 for usage errors, 130
when interrupted (finished submissions are kept). Submissions are never modified.

Make a key once per course with --new-key FILE; keep it secret and out of the repository.
"""


def register(subparsers) -> None:
    """Add the ``grade`` sub-command."""
    from .sandbox import Limits

    defaults = Limits()
    parser = subparsers.add_parser(
        "grade", help="grade a class's exercise notebooks",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", nargs="*", metavar="SUBMISSION",
                        help="notebook files, or folders searched recursively for *.ipynb")
    parser.add_argument("--out", metavar="DIR",
                        help="output folder (new or empty, unless --force)")
    parser.add_argument("--assignment", default=None, metavar="NAME",
                        help="the assignment to grade (required when there are several; "
                             "a notebook's metadata never decides it)")
    parser.add_argument("--key", default=None, metavar="FILE",
                        help="the instructor's key file; the hidden cases are drawn from "
                             "it (default: the key text in $RESNET_TF_GRADE_KEY, else none, "
                             "which is weaker)")
    parser.add_argument("--new-key", default=None, metavar="FILE",
                        help="create a new key file (never overwrites one) and exit")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="longest one cell may run before it is interrupted and the "
                             "next cell runs (default: 600)")
    parser.add_argument("--notebook-timeout", type=float, default=None, metavar="SECONDS",
                        help="wall-clock limit for one whole submission "
                             "(default: 6 x --timeout)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="submissions graded at the same time (default: 1)")
    parser.add_argument("--hidden-visibility", default="after_published",
                        choices=("after_published", "after_due_date"),
                        help="when students see the hidden checks' results, and with them "
                             "their total, on Gradescope (default: after_published)")
    parser.add_argument("--memory-limit", type=int, default=defaults.memory_mb, metavar="MB",
                        help="address space of one kernel (default: %(default)s)")
    parser.add_argument("--max-processes", type=int, default=defaults.processes,
                        metavar="N", help="processes and threads per kernel "
                                          "(default: %(default)s)")
    parser.add_argument("--max-file-size", type=int, default=defaults.file_size_mb,
                        metavar="MB", help="largest file a kernel may write "
                                           "(default: %(default)s)")
    parser.add_argument("--max-submission-size", type=float, default=50, metavar="MB",
                        help="larger submission files are not graded (default: 50)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="do not use bubblewrap even where it works (the resource "
                             "limits stay)")
    parser.add_argument("--force", action="store_true",
                        help="write into an output folder that is not empty, replacing the "
                             "files of an earlier run there")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the grader; 0 when grading ran, 2 for usage errors, 130 when interrupted."""
    from .collect import UsageError
    from .grader import Interrupted, Options, grade_class
    from .keys import KeyFileError, load_key, new_key
    from .reports import summary_table
    from .sandbox import Limits

    if args.new_key:
        try:
            path = new_key(args.new_key)
        except (KeyFileError, OSError) as exc:
            return _usage(str(exc))
        print(f"new key written to {path} (keep it secret, keep a backup)")
        return 0
    if not args.submissions:
        return _usage("give the submissions to grade")
    if not args.out:
        return _usage("--out DIR is required")
    if args.timeout <= 0:
        return _usage("--timeout must be positive")
    notebook_timeout = args.notebook_timeout or 6 * args.timeout
    if notebook_timeout <= 0:
        return _usage("--notebook-timeout must be positive")
    if args.jobs < 1:
        return _usage("--jobs must be at least 1")
    try:
        key = load_key(args.key)
    except KeyFileError as exc:
        return _usage(str(exc))
    limits = Limits(memory_mb=args.memory_limit or None, processes=args.max_processes or None,
                    file_size_mb=args.max_file_size or None)
    options = Options(cell_timeout=args.timeout, notebook_timeout=notebook_timeout,
                      jobs=args.jobs, force=args.force, key=key, limits=limits,
                      sandbox=not args.no_sandbox, max_submission_mb=args.max_submission_size,
                      hidden_visibility=args.hidden_visibility)

    def progress(result, done: int, total: int) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {result.submission.name}: {result.total:g} points, "
                  f"{result.status} ({result.seconds:.0f} s)", flush=True)

    try:
        run = grade_class(args.submissions, args.out, options, args.assignment, progress,
                          key_file=args.key)
    except UsageError as exc:
        return _usage(str(exc))
    except Interrupted as stop:
        print()
        print(summary_table(stop.run))
        print(f"\ninterrupted: {len(stop.run.results)} submission(s) graded and recorded, "
              f"{len(stop.run.interrupted)} not graded", file=sys.stderr)
        return 130
    print()
    print(summary_table(run))
    return 0


def _usage(message: str) -> int:
    """Print a usage error and return its exit code."""
    print(f"python -m resnet_tf grade: error: {message}", file=sys.stderr)
    return 2
