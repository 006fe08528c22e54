"""The records of a grading run, shared by the grader, the reports and the course book.

Kept apart from :mod:`~resnet_tf.grading.grader` so that the modules that write results
(:mod:`~resnet_tf.grading.reports`, :mod:`~resnet_tf.grading.course`) need not import the
pipeline that produces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sandbox as sb
from .collect import Submission
from .runner import CellError
from .scoring import ProblemScore

MAX_SUBMISSION_MB = 50
#: Statuses of submissions whose notebook ran, fully or in part.
RAN_STATUSES = ("graded", "cell_errors", "timeout", "kernel_died")


class Interrupted(Exception):
    """The run was stopped by Ctrl-C or SIGTERM; the finished submissions are recorded."""

    def __init__(self, run: ClassResult, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.run = run
        self.signum = signum


@dataclass
class Options:
    """Settings of a grading run (see ``python -m resnet_tf grade --help``)."""

    cell_timeout: float = 600.0
    notebook_timeout: float = 3600.0
    jobs: int = 1
    force: bool = False
    key: bytes | None = None
    limits: sb.Limits = field(default_factory=sb.Limits)
    sandbox: bool = True
    max_submission_mb: float = MAX_SUBMISSION_MB
    hidden_visibility: str = "after_published"


@dataclass
class SubmissionResult:
    """Everything the grader learned about one submission."""

    submission: Submission
    status: str
    message: str = ""
    sha256: str = ""
    problems: list[ProblemScore] = field(default_factory=list)
    cell_errors: list[CellError] = field(default_factory=list)
    declared_assignment: str | None = None
    seconds: float = 0.0
    executed: Any = None
    notes: list[str] = field(default_factory=list)
    student: str = ""
    version: str | None = None

    @property
    def total(self) -> float:
        """The sum of the problem scores."""
        return float(sum(p.score for p in self.problems))

    @property
    def ran(self) -> bool:
        """True when the notebook ran (fully or in part); otherwise it scored nothing."""
        return self.status in RAN_STATUSES


@dataclass
class ClassResult:
    """A whole grading run."""

    assignment: str
    problem_ids: list[str]
    points: dict[str, float]
    titles: dict[str, str]
    results: list[SubmissionResult]
    out_dir: Path
    seconds: float = 0.0
    version: str = ""
    keyed: bool = False
    sandbox: str = ""
    notes: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    hidden_visibility: str = "after_published"

    @property
    def max_total(self) -> float:
        """Points available in the assignment."""
        return float(sum(self.points[p] for p in self.problem_ids))
