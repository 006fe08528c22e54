"""The instructor's key: the secret the hidden cases are drawn from.

A key file holds 64 hexadecimal digits (32 random bytes) on one line. Make one with
``python -m resnet_tf grade --new-key FILE``; it is created readable by its owner only
and an existing file is never overwritten. Keep it out of the repository and out of
anything students receive: whoever has it can compute every hidden case.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_ENV = "RESNET_TF_GRADE_KEY"
KEY_FILE_LIMIT = 4096


class KeyFileError(ValueError):
    """A key that cannot be used (missing, empty, too short, unreadable)."""


def new_key(path: str | os.PathLike) -> Path:
    """Create a key file at ``path`` (mode 0600); refuse to replace an existing file."""
    path = Path(path).expanduser()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} exists; a key is never overwritten (grades made with it "
                        "could not be reproduced)") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def parse_key(text: str) -> bytes:
    """The key bytes of a key's text: hex digits as bytes, any other text as UTF-8."""
    text = text.strip()
    if not text:
        raise KeyFileError("the key is empty")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode("utf-8")
    if len(key) < 16:
        raise KeyFileError("the key is too short (at least 16 bytes; make one with --new-key)")
    return key


def load_key(path: str | os.PathLike | None) -> bytes | None:
    """The key from ``path``, else from the environment variable :data:`KEY_ENV`, else None."""
    if path is not None:
        path = Path(path).expanduser()
        try:
            if not path.is_file() or path.stat().st_size > KEY_FILE_LIMIT:
                raise KeyFileError(f"{path} is not a key file")
            return parse_key(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise KeyFileError(f"cannot read the key {path}: {error}") from None
    text = os.environ.get(KEY_ENV)
    return parse_key(text) if text else None
