"""The ``bnas-tf`` command line: one subcommand per step, each module adding its own arguments."""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module with add_arguments(parser) and run(args) -> int, one-line help)
SUBCOMMANDS = {
    "run": (
        "bnas_tf.pipeline.run",
        "the whole job: search, retrain the winner, convert with LCE, verify, write a report",
    ),
    "search": (
        "bnas_tf.pipeline.search",
        "search an architecture with a recipe; writes genotype.json and the search log",
    ),
    "train": ("bnas_tf.pipeline.train", "retrain a genotype from scratch with a recipe's schedule; writes model.keras"),
    "convert": ("bnas_tf.convert.cli", "convert a saved Keras model or run folder to .tflite with Larq Compute Engine"),
    "lint": (
        "bnas_tf.pipeline.lint",
        "show what Larq Compute Engine will run as binary in a model or genotype, before training",
    ),
    "report": ("bnas_tf.pipeline.report", "regenerate report.md and the PNG plots of a run folder"),
    "recipes": ("bnas_tf.pipeline.recipes_command", "list the papers' experiments, or show one recipe's settings"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bnas-tf", description="Binarized neural architecture search for Keras.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (ValueError, TypeError, OSError) as error:
        print(f"bnas-tf {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
