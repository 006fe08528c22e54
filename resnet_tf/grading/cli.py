"""The ``grade`` command: ``python -m resnet_tf grade SUBMISSION... --out DIR``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from .collect import UsageError

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

A term: grade each assignment into one course folder (--course DIR) that keeps every
grade; the student of each submission is read from its STUDENT_ID cell and from the LMS
file name (--names canvas|moodle|gradescope|plain|REGEX), checked against --roster; late
work loses points by --due and --late-penalty. Grading one student's file again replaces
only that student's row (the earlier grade goes to DIR/history.jsonl). Then:

  python -m resnet_tf grade export --course DIR --format canvas|moodle|csv --out FILE
  python -m resnet_tf grade gradescope ASSIGNMENT --out autograder.zip [--key FILE]

(To grade a folder that is literally named export or gradescope, write ./export.)
Each run also writes, in its output folder, misconceptions.txt (what the class got
wrong, per problem and part), scores.png (score distribution per problem) and
similarity.txt (submissions with identical or near-identical answer cells, for a human
to look at; scores are never changed by it).
"""

MODES = ("export", "gradescope")


def register(subparsers) -> None:
    """Add the ``grade`` sub-command."""
    from .reports import HIDDEN_VISIBILITIES
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
                        choices=HIDDEN_VISIBILITIES,
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
    term = parser.add_argument_group("a term: identities, one course gradebook, exports")
    term.add_argument("--course", default=None, metavar="DIR",
                      help="course folder whose gradebook keeps every assignment's grades; "
                           "a run adds or replaces only the rows it graded (default --out: "
                           "DIR/runs/ASSIGNMENT-TIME)")
    term.add_argument("--names", default=None, metavar="FORMAT",
                      help="read the student from the file names: canvas, moodle, "
                           "gradescope, plain (ID.ipynb) or a regular expression with "
                           "named groups student_id/lms_id/name/late/submitted")
    term.add_argument("--roster", default=None, metavar="CSV",
                      help="the class list (a Canvas gradebook export works); students "
                           "without a submission get 0 and the status missing")
    term.add_argument("--due", default=None, metavar="TIME",
                      help="deadline, ISO 8601 (e.g. 2026-10-01T23:59+02:00; no zone: UTC)")
    term.add_argument("--late-penalty", default=None, metavar="RULE",
                      help="points lost by late work: 10%%/day, 2%%/hour,max=50%% or 100%% "
                           "(default with --due: 100%%, late work earns nothing)")
    term.add_argument("--course-root", default=None, metavar="DIR",
                      help="the course repository (holding exercises/), used to tell the "
                           "handed-out cells from answers for the similarity report "
                           "(default: $RESNET_TF_COURSE_ROOT)")
    term.add_argument("--format", default=None, choices=("canvas", "moodle", "csv"),
                      help="with 'export': the file format")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run the grader; 0 when grading ran, 2 for usage errors, 130 when interrupted."""
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
    if args.submissions[0] in MODES:
        try:
            return _MODE_HANDLERS[args.submissions[0]](args)
        except UsageError as exc:
            return _usage(str(exc))
    try:
        how = identification(args)
    except UsageError as exc:
        return _usage(str(exc))
    if not args.out and args.course:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        args.out = str(Path(args.course) / "runs" / f"{args.assignment or 'run'}-{stamp}")
    if not args.out:
        return _usage("--out DIR is required (or --course DIR)")
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
                          key_file=args.key, course_root=args.course_root)
    except UsageError as exc:
        return _usage(str(exc))
    except Interrupted as stop:
        print()
        print(summary_table(stop.run))
        _record(stop.run, args, how)
        print(f"\ninterrupted: {len(stop.run.results)} submission(s) graded and recorded, "
              f"{len(stop.run.interrupted)} not graded", file=sys.stderr)
        return 130
    print()
    print(summary_table(run))
    _record(run, args, how)
    return 0


def identification(args: argparse.Namespace):
    """The :class:`~.course.Identification` of ``--names``, ``--roster``, ``--due``."""
    from .course import Identification, LatePolicy, parse_late_penalty
    from .identity import compile_pattern, parse_time, read_roster

    how = Identification()
    if args.names:
        how.pattern = compile_pattern(args.names)
    if args.roster:
        how.roster = read_roster(args.roster)
    if args.late_penalty and not args.due:
        raise UsageError("--late-penalty needs --due")
    if args.due:
        try:
            due = parse_time(args.due)
        except ValueError as exc:
            raise UsageError(f"--due: {exc}") from None
        percent, period, cap = parse_late_penalty(args.late_penalty or "100%")
        how.late = LatePolicy(due, percent, period, cap)
    if (how.pattern or how.roster or how.late) and not args.course:
        raise UsageError("--names, --roster and --due need --course DIR (the course "
                         "gradebook they fill)")
    return how


def _record(run, args: argparse.Namespace, how) -> None:
    """Put a run's rows into the course gradebook (with --course) and say what changed."""
    if not args.course:
        return
    from .course import CourseBook

    update = CourseBook(args.course).record(run, how)
    print()
    print("\n".join(update.lines()))
    print(f"Course gradebook: {Path(args.course) / 'gradebook.csv'}")


def _export(args: argparse.Namespace) -> int:
    """``grade export --course DIR --format F --out FILE [--assignment A]``."""
    from .course import CourseBook, export

    if not args.course or not args.format or not args.out:
        raise UsageError("export needs --course DIR, --format canvas|moodle|csv and "
                         "--out FILE")
    if len(args.submissions) > 1:
        raise UsageError("export takes no submissions")
    book = CourseBook(args.course)
    chosen = [a.strip() for a in args.assignment.split(",")] if args.assignment else None
    path = export(book, args.format, args.out, chosen)
    print(f"{args.format} gradebook written to {path}")
    return 0


def _gradescope(args: argparse.Namespace) -> int:
    """``grade gradescope ASSIGNMENT --out autograder.zip [--key FILE]``."""
    from .gradescope import build_autograder

    if len(args.submissions) != 2 or not args.out:
        raise UsageError("usage: grade gradescope ASSIGNMENT --out autograder.zip "
                         "[--key FILE]")
    path = build_autograder(args.submissions[1], args.out, key_file=args.key,
                            hidden_visibility=args.hidden_visibility,
                            timeout=args.timeout)
    print(f"Gradescope autograder written to {path} (upload it as the assignment's "
          "autograder; Ubuntu base image)")
    return 0


_MODE_HANDLERS = {"export": _export, "gradescope": _gradescope}


def _usage(message: str) -> int:
    """Print a usage error and return its exit code."""
    print(f"python -m resnet_tf grade: error: {message}", file=sys.stderr)
    return 2
