"""Per-student variants and the seeds of hidden checks.

**Variants.** A problem whose answers are numbers can give every student their own
parameters. They are drawn from a generator seeded with the SHA-256 of the problem id
and the student id, so anyone can recompute them from the id (``check()`` works offline,
the grader recomputes them itself): the point is not secrecy but that copying another
student's numbers, or the published solution's, earns nothing. An empty id means the
book's own numbers.

**Hidden checks.** Function and formula answers are also tested on cases the student
never sees. Their seeds come from :func:`hidden_seed`: with an instructor's key they are
an HMAC-SHA256 of the key, the problem, the part and the student id, so reading the
public code does not reveal them; without a key they come from a public hash (weaker:
fine for self-study, not for a graded course).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

import numpy as np

MAX_ID_LENGTH = 64
_ALLOWED = re.compile(r"[^0-9A-Za-z._@+-]")


def normalize_id(student_id: object) -> str:
    """A student id as the variants use it: trimmed, case-folded, letters/digits/``._@+-``.

    ``" S1234 "`` and ``"s1234"`` are the same student; anything that is not a string is
    treated as no id (``""``). At most :data:`MAX_ID_LENGTH` characters are kept.
    """
    if not isinstance(student_id, str):
        return ""
    text = unicodedata.normalize("NFKC", str.__str__(student_id)).strip().casefold()
    return _ALLOWED.sub("", text)[:MAX_ID_LENGTH]


def variant_rng(problem_id: str, student_id: str) -> np.random.Generator:
    """The public generator of a student's parameters for one problem."""
    digest = hashlib.sha256(
        f"resnet_tf variant\x00{problem_id}\x00{normalize_id(student_id)}".encode()
    ).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


def hidden_seed(key: bytes | None, problem_id: str, part: str, student_id: str = "") -> int:
    """The seed of the hidden cases of one part (see the module docstring).

    With ``key`` (the instructor's secret) the seed is an HMAC-SHA256 of the problem,
    part and student id; without it, a public SHA-256 of the same text.
    """
    message = f"hidden cases\x00{problem_id}\x00{part}\x00{normalize_id(student_id)}".encode()
    if key:
        digest = hmac.new(key, message, hashlib.sha256).digest()
    else:
        digest = hashlib.sha256(b"resnet_tf public\x00" + message).digest()
    return int.from_bytes(digest[:16], "big")
