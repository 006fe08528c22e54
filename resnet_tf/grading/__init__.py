"""Grading a class's exercise notebooks (``python -m resnet_tf grade``).

- :mod:`~resnet_tf.grading.collect`  finding submissions and naming them uniquely
- :mod:`~resnet_tf.grading.runner`   running one notebook in a fresh kernel, reading its check log
- :mod:`~resnet_tf.grading.scoring`  one score per problem from the logged checks
- :mod:`~resnet_tf.grading.grader`   the pipeline over a whole class
- :mod:`~resnet_tf.grading.reports`  gradebook, Gradescope results, feedback, summary
- :mod:`~resnet_tf.grading.cli`      the ``grade`` command
"""

from .collect import Submission, UsageError
from .grader import ClassResult, Options, SubmissionResult, grade_class, parse_notebook
from .scoring import ProblemScore, score_problems

__all__ = [
    "ClassResult",
    "Options",
    "ProblemScore",
    "Submission",
    "SubmissionResult",
    "UsageError",
    "grade_class",
    "parse_notebook",
    "score_problems",
]
