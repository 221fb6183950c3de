"""The command line: click options -> typed arguments -> one command function -> exit code.

Nothing here decides anything; each command lives in tether.commands.<name>.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from tether import __version__
from tether.error_handler import error_handler
from tether.exitcodes import EXIT_CODE_TABLE, ExitCode
from tether.options import HostOptions, SourceOptions, resolve_host_options

F = TypeVar("F", bound=Callable[..., Any])

# "\b" keeps click from re-wrapping the table.
EPILOG = "\b\nExit codes:\n" + "\n".join(
    f"  {int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_TABLE
)


def source_options(func: F) -> F:
    """--source / --repo / --ref: where the desired state comes from."""
    func = click.option(
        "--ref",
        metavar="REF",
        help="Branch, tag or commit of --repo (default: the remote's default branch).",
    )(func)
    func = click.option(
        "--repo", metavar="URL_OR_PATH", help="A git remote holding the config repo."
    )(func)
    return click.option(
        "--source",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="A config repo folder (default: the current folder if it holds tether.yaml).",
    )(func)


def host_options(func: F) -> F:
    """--target-root / --target-home / --state-dir / --secrets-file."""
    func = click.option(
        "--secrets-file",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="TETHER_SECRETS_FILE",
        metavar="FILE",
        help="The dotenv secret store [env: TETHER_SECRETS_FILE].",
    )(func)
    func = click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="TETHER_STATE_DIR",
        metavar="DIR",
        help="tether's own state (ledger, mirror, backups, lock) [env: TETHER_STATE_DIR; "
        "default /var/lib/tether for root, else $XDG_STATE_HOME/tether].",
    )(func)
    func = click.option(
        "--target-home",
        envvar="TARGET_HOME",
        metavar="DIR",
        help="The home inventory paths are relative to; overrides the manifest [env: TARGET_HOME].",
    )(func)
    return click.option(
        "--target-root",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="TETHER_TARGET_ROOT",
        metavar="DIR",
        help="Prefix of every destination, e.g. /host in a container [env: TETHER_TARGET_ROOT; "
        "default /].",
    )(func)


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print data as JSON on stdout.")(
        func
    )


def host(
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
) -> HostOptions:
    return resolve_host_options(target_root, target_home, state_dir, secrets_file)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="tether")
def cli() -> None:
    """tether: make a host rebuildable from git.

    A config repo (tether.yaml, inventory/include-paths.txt, configs/) is the desired state;
    reconcile writes it to the host, capture brings host changes back, redacted.
    """


@cli.command()
@click.argument(
    "directory", required=False, type=click.Path(path_type=Path, file_okay=False), metavar="[DIR]"
)
@source_options
@json_option
def validate(
    directory: Path | None, source: Path | None, repo: str | None, ref: str | None, as_json: bool
) -> int:
    """Check the manifest, the inventory, overrides, services and tracked files."""
    from tether.commands.validate import validate as run
    from tether.desired import open_tree

    src = SourceOptions.resolve(directory or source, repo, ref)
    return run(open_tree(src), as_json=as_json)


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), metavar="DIR")
@click.option("--home", "target_home", metavar="DIR", help="target.home to write in tether.yaml.")
def init(directory: Path, target_home: str | None) -> int:
    """Scaffold a new config repo in DIR (never overwrites a file)."""
    from tether.commands.init import init as run

    return run(directory, target_home=target_home)


def wait_option(func: F) -> F:
    return click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0.0,
        metavar="SECONDS",
        help="Wait up to SECONDS for another run's lock instead of stopping.",
    )(func)


@cli.command()
@click.option(
    "--plan/--apply",
    "plan_only",
    default=None,
    help="Only show the plan (default), or apply it [env: DRY_RUN=false means --apply].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace drift, conflict and preexisting files, backing them up [env: OVERWRITE=true].",
)
@click.option("--prune", is_flag=True, help="Remove files tether wrote that are no longer desired.")
@click.option("--diff", is_flag=True, help="Show unified diffs (secret values masked).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PLAN.json",
    help="Save the plan for `tether apply PLAN.json`.",
)
@click.option(
    "--rebuild-ledger",
    is_flag=True,
    help="Start a new ledger recording the destinations already in sync.",
)
@wait_option
@source_options
@host_options
@json_option
def reconcile(  # noqa: PLR0917
    plan_only: bool | None,
    overwrite: bool,
    prune: bool,
    diff: bool,
    out: Path | None,
    rebuild_ledger: bool,
    wait: float,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
) -> int:
    """Plan (default) or apply the config repo onto this host, three-way."""
    from tether.commands.reconcile import reconcile as run

    return run(
        SourceOptions.resolve(source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        explicit_root=target_root is not None,
        apply=None if plan_only is None else not plan_only,
        overwrite=overwrite,
        prune=prune,
        diff=diff,
        as_json=as_json,
        out=out,
        rebuild_ledger=rebuild_ledger,
        wait=wait,
    )


@cli.command("apply")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False), metavar="PLAN.json")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="TETHER_STATE_DIR",
    metavar="DIR",
    help="State dir (default: the one the plan was made with) [env: TETHER_STATE_DIR].",
)
@click.option(
    "--secrets-file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="TETHER_SECRETS_FILE",
    metavar="FILE",
    help="The dotenv secret store [env: TETHER_SECRETS_FILE].",
)
@wait_option
@json_option
def apply_cmd(
    plan_file: Path, state_dir: Path | None, secrets_file: Path | None, wait: float, as_json: bool
) -> int:
    """Apply a saved plan exactly, refusing it whole if any destination moved since."""
    from tether.commands.apply import apply_saved

    return apply_saved(
        plan_file, state_dir=state_dir, secrets_file=secrets_file, as_json=as_json, wait=wait
    )


@cli.group(invoke_without_command=True)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="TETHER_STATE_DIR",
    metavar="DIR",
    help="tether's state dir [env: TETHER_STATE_DIR].",
)
@json_option
@click.pass_context
def backups(ctx: click.Context, state_dir: Path | None, as_json: bool) -> int:
    """List the backups of overwritten files (newest first)."""
    from tether.options import default_state_dir

    ctx.obj = state_dir or default_state_dir()
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    from tether.commands.backups import list_backups

    return list_backups(ctx.obj, as_json=as_json)


@backups.command("restore")
@click.argument("backup_id", metavar="ID")
@wait_option
@click.pass_obj
def backups_restore(state_dir: Path, backup_id: str, wait: float) -> int:
    """Put backup ID back at its destination (the current bytes are backed up first)."""
    from tether.commands.backups import restore_backup

    return restore_backup(state_dir, backup_id, wait=wait)


def main(argv: Sequence[str] | None = None) -> int:
    with error_handler() as result:
        try:
            code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        result[0] = int(code) if isinstance(code, int) else int(ExitCode.OK)
    return result[0]
