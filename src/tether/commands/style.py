"""How much a command says and whether it colours it: -q, -v and --color, read by the printers.

The choices live in the click context of one invocation (set by the options' callbacks, on the
`tether` group or after any subcommand), so nothing carries over from one run to the next.

- `-q/--quiet`: results only. Narration (a plan's header and its list of files to write, the
  lines of files a capture commits) is left out; what needs a person (conflict, drift, blocked,
  held, failed, findings), warnings, errors and the one summary line stay. Exit codes never
  change.
- `-v/--verbose`: narration plus details (a plan's files already in sync, timings).
- `--color=auto|always|never`: auto colours a terminal unless NO_COLOR is set to anything or
  TERM is `dumb`; always colours even a pipe (and beats NO_COLOR); never colours nothing.

`--json` output goes through none of this: it is never coloured nor trimmed.
"""

from __future__ import annotations

import os
from typing import Any

import click

QUIET, NORMAL, VERBOSE = -1, 0, 1
COLOR_CHOICES = ("auto", "always", "never")
# A line's colour by its word (a plan's or a capture's action, a check's level): green writes
# something new, yellow changes or differs, red needs a person before anything happens.
WORD_COLORS = {
    "create": "green",
    "add": "green",
    "modify": "yellow",
    "delete": "yellow",
    "refused": "red",
    "update": "yellow",
    "drift": "yellow",
    "prune": "yellow",
    "preexisting": "yellow",
    "conflict": "red",
    "blocked": "red",
    "failed": "red",
    "held": "red",
    "warning": "yellow",
    "error": "red",
}
_KEY = "tether.style."


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> None:
    if not value:
        return
    ctx.meta[_KEY + str(param.name)] = value
    if ctx.meta.get(_KEY + "quiet") and ctx.meta.get(_KEY + "verbose"):
        raise click.UsageError("-q/--quiet and -v/--verbose together: give one of them", ctx=ctx)


def _flag(names: list[str], help_text: str) -> click.Option:
    return click.Option(names, is_flag=True, expose_value=False, callback=_remember, help=help_text)


def output_options() -> list[click.Parameter]:
    """-q, -v and --color, for the group and for every command (after the subcommand too)."""
    return [
        _flag(
            ["-q", "--quiet"],
            "Results only: findings, files needing attention, warnings, errors, summary.",
        ),
        _flag(["-v", "--verbose"], "Say more: files already in sync, timings."),
        click.Option(
            ["--color"],
            type=click.Choice(COLOR_CHOICES),
            metavar="[auto|always|never]",
            expose_value=False,
            callback=_remember,
            help="Colour the output [default: auto: on a terminal, unless NO_COLOR is set].",
        ),
    ]


class Command(click.Command):
    """A tether command: the output options are accepted after its name too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(output_options())


class Group(click.Group):
    """A tether command group: its commands and subgroups take the output options."""

    command_class = Command
    group_class = type  # subgroups are of this class too

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(output_options())


def _meta() -> dict[str, Any]:
    ctx = click.get_current_context(silent=True)
    return ctx.meta if ctx is not None else {}


def level() -> int:
    meta = _meta()
    return QUIET if meta.get(_KEY + "quiet") else VERBOSE if meta.get(_KEY + "verbose") else NORMAL


def color_wanted() -> bool | None:
    """True: colour; False: strip colour; None: colour a terminal only (click decides)."""
    choice = _meta().get(_KEY + "color", "auto")
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return None


def paint(word: str, text: str) -> str:
    """`text` in the colour of `word` (removed again on output when colour is off)."""
    color = WORD_COLORS.get(word)
    return click.style(text, fg=color) if color else text


def echo(text: str, *, err: bool = False) -> None:
    """A result line: always printed, coloured or not as chosen."""
    click.echo(text, err=err, color=color_wanted())


def narrate(text: str, *, err: bool = False) -> None:
    """A line that tells what happens around the results: left out by -q."""
    if level() >= NORMAL:
        echo(text, err=err)


def detail(text: str, *, err: bool = False) -> None:
    """A line only -v asks for."""
    if level() >= VERBOSE:
        echo(text, err=err)
