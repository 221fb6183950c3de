"""`tether completion bash|zsh|fish`: the shell script that completes tether's commands and
options (click's own completion, read from the live command tree)."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from tether.exitcodes import ExitCode

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": 'eval "$(tether completion bash)"   # in ~/.bashrc',
    "zsh": 'eval "$(tether completion zsh)"    # in ~/.zshrc',
    "fish": "tether completion fish > ~/.config/fish/completions/tether.fish",
}


def completion(root: click.Command, shell: str) -> int:
    found = get_completion_class(shell)
    assert found is not None, f"click has no {shell} completion"
    script = found(root, {}, "tether", "_TETHER_COMPLETE").source()
    click.echo(f"# tether completion for {shell}; install: {INSTALL[shell]}")
    click.echo(script)
    return int(ExitCode.OK)
