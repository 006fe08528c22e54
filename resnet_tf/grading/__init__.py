"""Grading a class's exercise notebooks (``python -m resnet_tf grade``).

- :mod:`~resnet_tf.grading.collect`  finding submissions and naming them uniquely
- :mod:`~resnet_tf.grading.sandbox`  limits, another user and bubblewrap for each kernel
- :mod:`~resnet_tf.grading.runner`   running one notebook in a fresh kernel, collecting its
  answers as data
- :mod:`~resnet_tf.grading.scoring`  one score per problem, judged in the grader's process
- :mod:`~resnet_tf.grading.keys`     the instructor's key
- :mod:`~resnet_tf.grading.results`  the records of a run (options, per-submission results)
- :mod:`~resnet_tf.grading.grader`   the pipeline over a whole class
- :mod:`~resnet_tf.grading.reports`  gradebook, Gradescope results, feedback, summary
- :mod:`~resnet_tf.grading.insights` what the class got wrong, similar submissions
- :mod:`~resnet_tf.grading.identity` student ids from notebooks, LMS file names, a roster
- :mod:`~resnet_tf.grading.course`   the term's gradebook, late work, LMS exports
- :mod:`~resnet_tf.grading.gradescope` the Gradescope autograder zip and its run
- :mod:`~resnet_tf.grading.cli`      the ``grade`` command

The student's kernel is not trusted: it runs the notebook and hands over answers as
plain data; scores are computed here (see ``docs/instructors.md``, "Trust model").
"""

from .collect import Submission, UsageError
from .grader import (
    ClassResult,
    Interrupted,
    Options,
    SubmissionResult,
    grade_class,
    parse_notebook,
)
from .scoring import ProblemScore, score_problems

__all__ = [
    "ClassResult",
    "Interrupted",
    "Options",
    "ProblemScore",
    "Submission",
    "SubmissionResult",
    "UsageError",
    "grade_class",
    "parse_notebook",
    "score_problems",
]
