"""Command line: ``python -m resnet_tf COMMAND ...``.

Commands live in the modules that implement them; each such module has a
``register(subparsers)`` function that adds its sub-parser and sets
``func=handler`` (the handler takes the parsed arguments and returns an exit
code). This file only lists where to find them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

COMMAND_MODULES = (
    "resnet_tf.commands",
    "resnet_tf.reproduce.cli",
    "resnet_tf.exercises.generate",
    "resnet_tf.grading.cli",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m resnet_tf",
        description="Residual networks in Keras: train, inspect, grade.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:  # its parent package is not installed
            continue
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError, OSError) as error:
        # Bad input and unavailable data are explained, not dumped as a traceback.
        print(f"{parser.prog} {args.command}: error: {error}", file=sys.stderr)
        return 2
