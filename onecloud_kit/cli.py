"""One command-line convention for the three packages: ``python -m <package> [<command>] [options]``.

Each package declares its commands (:class:`Command`: a name, one line of help,
its arguments, what it runs) and calls :func:`main`. What every CLI then does
alike (Datasette's click group is the model):

- ``--help`` lists every command, nested ones included, with one line each;
- a default command (``serve`` for the two servers) runs when none is named,
  so ``python -m collector --port 9000`` is ``python -m collector serve --port 9000``;
- ``settings [--format env|markdown]`` prints the package's settings with their
  defaults, from the same declaration as ``.env.example`` and the docs;
- the settings are built once, here, from the environment, and handed to the
  command; a bad value is one line on stderr naming the variable, exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from onecloud_kit.settings import FromEnv, SettingsError, env_example, markdown_table

S = TypeVar("S", bound=FromEnv)

#: Exit code of a usage or settings error (argparse's own), distinct from a command that ran and failed (1).
EXIT_USAGE = 2


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True, slots=True)
class Command:
    """One command: ``run(args, settings)`` returns the exit code.

    ``settings=False``: the command needs no settings (or builds them only when it must, with
    :func:`load_settings`) and gets ``None``. A command with ``commands`` is a group (``isp-db build``).
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace, Any], int] | None = None
    arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    settings: bool = True
    commands: tuple[Command, ...] = ()


class CommandError(Exception):
    """A command cannot go on; the message is printed as ``<prog>: <message>`` (exit code :data:`EXIT_USAGE`)."""


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """The settings from the environment; a bad value becomes a :class:`CommandError` naming the variable."""
    try:
        return cls.from_env(os.environ if environ is None else environ)
    except SettingsError as exc:
        raise CommandError(str(exc)) from None


def _settings_command(settings_cls: type[FromEnv], title: str) -> Command:
    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=("env", "markdown"), default="env", help="output format (default env)")

    def run(args: argparse.Namespace, _: None) -> int:
        if args.format == "env":
            sys.stdout.write(env_example(settings_cls, title))
        else:
            sys.stdout.write(markdown_table(settings_cls))
        return 0

    return Command("settings", "print the settings with their defaults (env file or markdown table)", run, arguments,
                   settings=False)  # fmt: skip


def _walk(commands: Sequence[Command], prefix: str = "") -> Iterator[tuple[str, Command]]:
    for cmd in commands:
        path = f"{prefix}{cmd.name}"
        if cmd.commands:
            yield from _walk(cmd.commands, path + " ")
        else:
            yield path, cmd


def command_list(commands: Sequence[Command], default: str | None = None) -> str:
    """Every runnable command with its line of help: the ``--help`` listing (and what the docs test reads)."""
    rows = list(_walk(commands))
    width = max(len(path) for path, _ in rows)
    lines = []
    for path, cmd in rows:
        suffix = " (the default)" if path == default else ""
        lines.append(f"  {path:<{width}}  {cmd.help}{suffix}")
    return "\n".join(lines)


def _add(sub: Any, cmd: Command, prog: str) -> None:
    p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
    if cmd.commands:
        nested = p.add_subparsers(
            dest=f"{cmd.name}_command", metavar="<command>", required=True, prog=f"{prog} {cmd.name}"
        )
        for child in cmd.commands:
            _add(nested, child, prog)
        return
    cmd.arguments(p)
    p.set_defaults(_command=cmd)


def build_parser(
    prog: str, description: str, commands: Sequence[Command], default: str | None = None
) -> argparse.ArgumentParser:
    usage = f"{prog} [<command>] [options]" if default else f"{prog} <command> [options]"
    epilog = "commands:\n" + command_list(commands, default)
    epilog += f"\n\n`{prog} <command> --help` shows a command's options."
    if default:
        epilog += f" Without a command, `{default}` runs: `{prog} --port N` is `{prog} {default} --port N`."
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The listing above names every command once; argparse's own list of choices would repeat it.
    sub = parser.add_subparsers(dest="_name", metavar="<command>", help=argparse.SUPPRESS, prog=prog)
    for cmd in commands:
        _add(sub, cmd, prog)
    return parser


def parse(
    prog: str,
    description: str,
    settings_cls: type[FromEnv],
    commands: Sequence[Command],
    argv: Sequence[str] | None = None,
    *,
    default: str | None = None,
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The parser and ``argv`` parsed by it, as :func:`main` does (the docs test checks printed commands so).

    A usage error exits with :data:`EXIT_USAGE` (argparse's ``SystemExit``); the chosen command is ``_command``.
    """
    parser = build_parser(prog, description, [*commands, _settings_command(settings_cls, prog)], default)
    args_in = list(sys.argv[1:] if argv is None else argv)
    if default and (not args_in or (args_in[0].startswith("-") and args_in[0] not in ("-h", "--help"))):
        args_in.insert(0, default)  # options without a command are the default command's
    return parser, parser.parse_args(args_in)


def main(
    prog: str,
    description: str,
    settings_cls: type[FromEnv],
    commands: Sequence[Command],
    argv: Sequence[str] | None = None,
    *,
    default: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Parse ``argv``, build the settings once if the command needs them, run it; the process's exit code."""
    environ = os.environ if environ is None else environ
    parser, args = parse(prog, description, settings_cls, commands, argv, default=default)
    cmd: Command | None = getattr(args, "_command", None)
    if cmd is None or cmd.run is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=environ.get("ANALYTICS_LOG_LEVEL", "info").upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_settings(settings_cls, environ) if cmd.settings else None
        return int(cmd.run(args, settings))
    except CommandError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_USAGE
