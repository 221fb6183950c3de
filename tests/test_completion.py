"""`tether completion bash|zsh|fish`: a script the shell accepts, completing the live commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tether.cli import main
from tether.exitcodes import ExitCode

TETHER = Path(sys.executable).parent / "tether"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_script_per_shell(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == ExitCode.OK
    script = capsys.readouterr().out
    assert "_TETHER_COMPLETE" in script
    if shell == "bash" or shutil.which(shell):
        done = subprocess.run([shell, "-n"], input=script, text=True, check=False)
        assert done.returncode == 0  # the shell parses it


def test_bash_completes_commands_and_options() -> None:
    env = {**os.environ, "_TETHER_COMPLETE": "bash_complete", "COMP_CWORD": "1"}
    done = subprocess.run(
        [str(TETHER)],
        env={**env, "COMP_WORDS": "tether rec"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == ["plain,reconcile"]
    done = subprocess.run(
        [str(TETHER)],
        env={**env, "COMP_WORDS": "tether reconcile --ov", "COMP_CWORD": "2"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "plain,--overwrite" in done.stdout.split()


def test_unknown_shell_is_a_usage_error() -> None:
    assert main(["completion", "tcsh"]) == ExitCode.USAGE
