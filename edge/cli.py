"""`maskwatch` (`python -m edge`): one command, one subcommand per job.

Each subcommand lives in edge/commands/<name>.py with `register(subparsers)`; heavy imports stay inside
the handlers so `maskwatch check` or `--help` start fast on a Pi.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from edge import __version__

COMMANDS = ("run", "detect", "evaluate", "check", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maskwatch", description="Face-mask alarm for building entrances.")
    parser.add_argument("--version", action="version", version=f"maskwatch {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"edge.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", None) or logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        # with --json (detect, evaluate, bench) stdout is what scripts parse: only JSON goes there
        stream=sys.stderr if getattr(args, "json", False) else sys.stdout,
    )
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:  # the reader went away (`maskwatch detect --json DIR | head -1`): end quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail
        return 1
