"""`gantune` command line: thin subcommands over library functions; the only place errors become exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from trainables.errors import GantuneError
from tuner import allocator

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"gantune: error: {message} (see `{self.prog} --help`)\n")


def _commands() -> dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]]:
    from tuner.cli import autofix, evaluate, report, sweep, train, triage, ui, watch

    return {"train": (train.add_arguments, train.run),
            "evaluate": (evaluate.add_arguments, evaluate.run),
            "autofix": (autofix.add_arguments, autofix.run),
            "sweep": (sweep.add_arguments, sweep.run),
            "ui": (ui.add_arguments, ui.run),
            "report": (report.add_arguments, report.run),
            "triage": (triage.add_arguments, triage.run),
            "watch": (watch.add_arguments, watch.run)}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gantune", description="Train GANs, and know when and why they collapse.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (add_arguments, handler) in _commands().items():
        command = sub.add_parser(name, help=(handler.__doc__ or "").strip().splitlines()[0])
        add_arguments(command)
        command.set_defaults(handler=handler)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments; after `--`, a command for the subcommands that start one (`gantune watch PATH -- CMD`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    head, tail = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, None)
    parser = build_parser()
    args = parser.parse_args(head)
    if tail is not None:
        if not hasattr(args, "cmd") or not tail:
            parser.error("`--` must be followed by a command, and only `gantune watch` takes one")
        args.cmd = tail
    return args


def main(argv: list[str] | None = None) -> int:
    """The command line (`argv` None: this process's own, which first restarts with the allocator set-up)."""
    try:
        if argv is None:
            allocator.restart_with_setup()
    except GantuneError as err:
        print(f"gantune: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    args = parse(argv)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # inside the try: a reader that left shows up here, not at exit
        return code
    except GantuneError as err:
        print(f"gantune: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("gantune: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gantune autofix --run x | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
