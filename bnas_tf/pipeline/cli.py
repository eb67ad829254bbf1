"""The ``bnas-tf`` command line: one subcommand per step.

The parsers come from :mod:`bnas_tf.pipeline.commands` (argparse only), so ``--help`` answers without loading
TensorFlow; a command's module is imported only to run it, after the library log lines are quieted
(:mod:`bnas_tf.native_logs`) unless ``--verbose`` asks for them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bnas_tf import native_logs
from bnas_tf.pipeline.commands import SUBCOMMANDS

VERBOSE_HELP = (
    "also show TensorFlow's and the LCE converter's own log lines (C++ INFO/WARNING lines, MLIR diagnostics, absl)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bnas-tf", description="Binarized neural architecture search for Keras.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text, add_arguments) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module)
        add_arguments(sub_parser)
        sub_parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if not args.verbose:
        native_logs.quiet()  # before the command's module imports TensorFlow
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (ValueError, TypeError, OSError) as error:
        print(f"bnas-tf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
