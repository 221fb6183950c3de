"""The command line: click options -> typed arguments -> one command function -> exit code.

Nothing here decides anything; each command lives in tether.commands.<name>.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from tether import __version__
from tether.commands import style
from tether.commands.errorhandler import error_handler
from tether.config.options import HostOptions, SourceOptions, resolve_host_options
from tether.exitcodes import EXIT_CODE_TABLE, ExitCode, for_process

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
    return folder_source_option(
        "A config repo folder (default: the current folder if it holds tether.yaml)."
    )(func)


STATE_DIR_HELP = (
    "tether's own state (ledger, mirror, backups, lock) [env: TETHER_STATE_DIR; "
    "default /var/lib/tether for root, else $XDG_STATE_HOME/tether]."
)


def path_option(
    name: str, help_text: str, *, folder: bool, envvar: str | None = None
) -> Callable[[F], F]:
    """A --NAME PATH option: a folder (DIR) or a file (FILE), optionally read from `envvar`."""
    return click.option(
        name,
        type=click.Path(path_type=Path, file_okay=not folder, dir_okay=folder),
        envvar=envvar,
        metavar="DIR" if folder else "FILE",
        help=help_text,
    )


def state_dir_option(help_text: str = STATE_DIR_HELP) -> Callable[[F], F]:
    """--state-dir, the same everywhere but for what its default means to the command."""
    return path_option("--state-dir", help_text, folder=True, envvar="TETHER_STATE_DIR")


SECRETS_FILE_HELP = (
    "The dotenv secret store [env: TETHER_SECRETS_FILE; default: secrets.file of tether.yaml]."
)


def secrets_file_option(help_text: str = SECRETS_FILE_HELP) -> Callable[[F], F]:
    return path_option("--secrets-file", help_text, folder=False, envvar="TETHER_SECRETS_FILE")


def folder_source_option(help_text: str) -> Callable[[F], F]:
    """--source DIR alone, for commands that read a config repo folder but no remote."""
    return path_option("--source", help_text, folder=True)


def metrics_file_option(help_text: str) -> Callable[[F], F]:
    return path_option("--metrics-file", help_text, folder=False)


HOST_KEY = "tether.host"


def _remember_host(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[HOST_KEY] = value


def host_name_option(func: F) -> F:
    """--host NAME: which profile of `hosts:` this run is (read back by chosen_host())."""
    return click.option(
        "--host",
        envvar="TETHER_HOST",
        metavar="NAME",
        expose_value=False,
        callback=_remember_host,
        help="The host profile of tether.yaml's hosts: [env: TETHER_HOST; default: the short "
        "hostname].",
    )(func)


NO_REPORT_KEY = "tether.no_report"


def _remember_no_report(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[NO_REPORT_KEY] = True


def no_report_option(func: F) -> F:
    return click.option(
        "--no-report",
        is_flag=True,
        expose_value=False,
        callback=_remember_no_report,
        help="Do not push this host's status to refs/tether/status/<host> on the remote.",
    )(func)


def chosen_host() -> str | None:
    value = click.get_current_context().meta.get(HOST_KEY)
    return value if isinstance(value, str) else None


def host_options(func: F) -> F:
    """--host / --no-report / --target-root / --target-home / --state-dir / --secrets-file."""
    func = no_report_option(func)
    func = host_name_option(func)
    func = secrets_file_option()(func)
    func = state_dir_option()(func)
    func = click.option(
        "--target-home",
        envvar="TARGET_HOME",
        metavar="DIR",
        help="The home inventory paths are relative to; overrides the manifest [env: TARGET_HOME].",
    )(func)
    return path_option(
        "--target-root",
        "Prefix of every destination, e.g. /host in a container [env: TETHER_TARGET_ROOT; "
        "default /].",
        folder=True,
        envvar="TETHER_TARGET_ROOT",
    )(func)


def detailed_exitcode_option(func: F) -> F:
    return click.option(
        "--detailed-exitcode",
        is_flag=True,
        help="Exit 2 when changes are pending (default: 0, as for any successful plan).",
    )(func)


def handler_options(func: F) -> F:
    """--bring-up / --no-handlers: which service handlers run after the files."""
    func = click.option(
        "--no-handlers",
        is_flag=True,
        help="Write files only; services whose files changed stay pending for a later run.",
    )(func)
    return click.option(
        "--bring-up",
        is_flag=True,
        help="Run every service's on_change (and ready) in order, changed or not.",
    )(func)


def only_option(func: F) -> F:
    """--only PATH/GLOB (repeatable): limit the run to these inventory paths."""
    return click.option(
        "--only",
        multiple=True,
        metavar="PATH/GLOB",
        help="Only these inventory paths (a glob, a path, or a folder above them); repeatable.",
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
    meta = click.get_current_context().meta
    return resolve_host_options(
        target_root,
        target_home,
        state_dir,
        secrets_file,
        host_name=chosen_host(),
        report=not meta.get(NO_REPORT_KEY, False),
    )


@click.group(
    cls=style.Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EPILOG,
)
@click.version_option(__version__, prog_name="tether")
def cli() -> None:
    """tether: make a host rebuildable from git.

    A config repo (tether.yaml, inventory/include-paths.txt, configs/) is the desired state;
    reconcile writes it to the host, capture brings host changes back, redacted.
    """


@cli.command(short_help="Check the manifest, inventory, overrides and tracked files.")
@click.argument(
    "directory", required=False, type=click.Path(path_type=Path, file_okay=False), metavar="[DIR]"
)
@source_options
@host_name_option
@state_dir_option()
@json_option
def validate(
    *,
    directory: Path | None,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> int:
    """Check the manifest, the inventory, overrides, services and tracked files."""
    from tether.commands.validate import validate as run
    from tether.reconcile.desired import open_tree

    if directory is not None and source is not None:
        raise click.UsageError("DIR and --source name two config repos; give one")
    src = SourceOptions.resolve(directory or source, repo, ref)
    return run(open_tree(src, state_dir), as_json=as_json, host=chosen_host())


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), metavar="DIR")
@click.option(
    "--home",
    "--target-home",
    "target_home",
    metavar="DIR",
    help="target.home to write in tether.yaml (default: your home); --target-home is an alias.",
)
@click.option(
    "--from-host",
    is_flag=True,
    help="Propose the allowlist from the config found under --home, git init DIR and capture "
    "those files into it, redacted.",
)
@click.option(
    "--remote",
    metavar="URL_OR_PATH",
    help="With --from-host: capture.remote of the new repo, and its git origin.",
)
@state_dir_option()
@secrets_file_option(
    "With --from-host: the store the secrets found go to [env: TETHER_SECRETS_FILE; default: "
    "secrets.file of the new tether.yaml]."
)
def init(  # noqa: PLR0917
    directory: Path,
    target_home: str | None,
    from_host: bool,
    remote: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
) -> int:
    """Scaffold a new config repo in DIR (never overwrites a file). With --from-host, from an
    existing host: the allowlist proposed from what is under the home, `git init`, and a first
    redacted capture committed in DIR."""
    from tether.commands import init as run

    if not from_host:
        if remote is not None:
            raise click.UsageError("--remote goes with --from-host")
        return run.init(directory, target_home=target_home)
    from tether.commands.capture import CaptureRequest, capture

    home = run.start_from_host(directory, target_home=target_home, remote=remote)
    request = CaptureRequest(
        repo=str(directory.resolve()),
        message="tether init --from-host: first capture {time}",
        ledger_repo=remote,
    )
    options = resolve_host_options(None, home, state_dir, secrets_file, report=False)
    code = capture(request, options, explicit_root=False)
    return run.finish_from_host(directory, remote, code)


def root_option(func: F) -> F:
    func = click.option(
        "--user", is_flag=True, help="systemd --user units (~/.config/systemd/user)."
    )(func)
    return click.option(
        "--root",
        type=click.Path(path_type=Path, file_okay=False),
        metavar="DIR",
        help="Work on the units under another root (an image, a test) instead of this host.",
    )(func)


@cli.group(short_help="Run on a schedule: systemd timers, or a foreground loop.")
def agent() -> None:
    """Run tether on a schedule: systemd timers, or a foreground loop."""


@agent.command("install", short_help="Install systemd timers for reconcile (and capture).")
@source_options
@host_options
@root_option
@click.option("--print", "print_only", is_flag=True, help="Print the units; install nothing.")
@click.option(
    "--interval", default="15min", show_default=True, metavar="DURATION", help="How often."
)
@click.option("--jitter", metavar="DURATION", help="RandomizedDelaySec (default: interval/4).")
@click.option(
    "--capture",
    type=click.Choice(["off", "hourly", "daily", "weekly"]),
    default="off",
    show_default=True,
    help="Also run `tether capture` on this schedule.",
)
@click.option(
    "--writable",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="What reconcile may write (repeatable; default: the target root).",
)
@click.option(
    "--metrics-dir",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Write Prometheus textfile metrics here (tether-*.prom).",
)
@click.option("--no-verify", is_flag=True, help="Skip `systemd-analyze verify`.")
def agent_install(
    *,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    root: Path | None,
    user: bool,
    print_only: bool,
    interval: str,
    jitter: str | None,
    capture: str,
    writable: tuple[Path, ...],
    metrics_dir: Path | None,
    no_verify: bool,
) -> int:
    """Install systemd timers for reconcile (and capture) with these options."""
    from tether.agent.durations import parse_duration
    from tether.commands import agent as cmd

    spec = cmd.build_spec(
        SourceOptions.resolve(source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        interval=parse_duration(interval, "--interval"),
        jitter=parse_duration(jitter, "--jitter") if jitter else None,
        capture=capture,
        user=user,
        writable=writable,
        metrics_dir=metrics_dir,
    )
    return cmd.install(spec, root=root, print_only=print_only, verify=not no_verify)


@agent.command("uninstall")
@root_option
def agent_uninstall(root: Path | None, user: bool) -> int:
    """Remove exactly what `agent install` wrote."""
    from tether.commands.agent import uninstall

    return uninstall(root=root, user=user)


@agent.command("run", short_help="Reconcile in the foreground every --interval.")
@source_options
@host_options
@click.option(
    "--interval", default="5min", show_default=True, metavar="DURATION", help="Between ticks."
)
@click.option(
    "--jitter", default="30s", show_default=True, metavar="DURATION", help="Random extra wait."
)
@click.option("--once", is_flag=True, help="Run one tick and exit with its exit code.")
@click.option(
    "--bring-up",
    is_flag=True,
    envvar="BRING_UP",
    help="The first tick runs every service's handlers (reconcile --apply --bring-up), until "
    "one tick succeeds; later ticks run only changed and pending ones [env: BRING_UP=true].",
)
@metrics_file_option("Each tick writes Prometheus textfile-collector metrics to FILE.")
def agent_run(
    *,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    interval: str,
    jitter: str,
    once: bool,
    bring_up: bool,
    metrics_file: Path | None,
) -> int:
    """Reconcile in the foreground every --interval (for hosts without systemd)."""
    from tether.commands.agent import run

    return run(
        SourceOptions.resolve(source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        interval=interval,
        jitter=jitter,
        once=once,
        metrics_file=metrics_file,
        bring_up=bring_up,
    )


@agent.command("suspend")
@state_dir_option()
@click.option("--reason", metavar="TEXT", help="Why (shown by status and the agent).")
def agent_suspend(state_dir: Path | None, reason: str | None) -> int:
    """Skip scheduled runs until `tether agent resume`."""
    from tether.commands.agent import suspend_cmd

    return suspend_cmd(host(None, None, state_dir, None).state_dir, reason)


@agent.command("resume")
@state_dir_option()
def agent_resume(state_dir: Path | None) -> int:
    """Let scheduled runs happen again."""
    from tether.commands.agent import resume_cmd

    return resume_cmd(host(None, None, state_dir, None).state_dir)


@cli.command(short_help="Conditions, revisions and the last runs (0 when Ready, else 3).")
@state_dir_option()
@json_option
def status(state_dir: Path | None, as_json: bool) -> int:
    """Conditions, revisions and the last runs (exit 0 when Ready, 3 otherwise)."""
    from tether.commands.status import status as run

    return run(host(None, None, state_dir, None).state_dir, as_json=as_json)


@cli.command(short_help="Every host's last report beside the branch (3: one not Ready).")
@click.option("--repo", required=True, metavar="URL_OR_PATH", help="The config repo's remote.")
@click.option(
    "--branch", metavar="BRANCH", help="Compare with BRANCH (default: the remote's HEAD)."
)
@click.option(
    "--stale-after",
    default="15min",
    show_default=True,
    metavar="DURATION",
    help="A host whose last report is older counts as not Ready (3 agent intervals).",
)
@click.option("--prometheus", is_flag=True, help="Print textfile-collector metrics instead.")
@state_dir_option()
@json_option
def fleet(
    *,
    repo: str,
    branch: str | None,
    stale_after: str,
    prometheus: bool,
    state_dir: Path | None,
    as_json: bool,
) -> int:
    """One line per host from refs/tether/status/<host>: applied revision (and how far behind
    the branch), age of the last report, Ready, drift/conflict/blocked, pending services."""
    from tether.agent.durations import parse_duration
    from tether.commands.fleet import fleet as run

    return run(
        repo,
        host(None, None, state_dir, None).state_dir,
        branch=branch,
        stale_after=parse_duration(stale_after, "--stale-after"),
        as_json=as_json,
        prometheus=prometheus,
    )


@cli.command(short_help="Check that this host can reconcile (repo, secrets, lock, units).")
@source_options
@host_options
@root_option
@json_option
def doctor(
    *,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    root: Path | None,
    user: bool,
    as_json: bool,
) -> int:
    """Check this host can reconcile: repo, remote, secrets, ledger, lock, hooks, units."""
    from tether.commands.doctor import doctor as run

    return run(
        (source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        root=root,
        user=user,
        as_json=as_json,
    )


@cli.command(short_help="Tag the remote's head (an annotated tag, never moved).")
@source_options
@state_dir_option()
@click.option("--name", metavar="NAME", help="Tag name (default: snapshots.tag of the manifest).")
@click.option("--message", metavar="MSG", help="Tag message.")
@click.option("--push", is_flag=True, help="Push the tag to the remote (fails loudly if rejected).")
@json_option
def snapshot(
    *,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    state_dir: Path | None,
    name: str | None,
    message: str | None,
    push: bool,
    as_json: bool,
) -> int:
    """Tag the remote's current head (an annotated tag; an existing tag is never moved)."""
    from tether.commands.snapshot import snapshot as run

    src = SourceOptions.resolve(source, repo, ref)
    return run(src, state_dir, name=name, message=message, push=push, as_json=as_json)


@cli.command(short_help="List the snapshot tags, newest first.")
@source_options
@state_dir_option()
@click.option("--all", "all_tags", is_flag=True, help="Every tag, not only snapshot tags.")
@json_option
def snapshots(
    *,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    state_dir: Path | None,
    all_tags: bool,
    as_json: bool,
) -> int:
    """List the snapshot tags: name, date, commit and message, newest first."""
    from tether.commands.snapshot import snapshots as run

    src = SourceOptions.resolve(source, repo, ref)
    return run(src, state_dir, as_json=as_json, all_tags=all_tags)


@cli.command(short_help="Find secrets in files, the index, commits or a push.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), metavar="[PATH]...")
@click.option("--staged", is_flag=True, help="Scan the index (what `git commit` would record).")
@click.option("--commits", metavar="A..B", help="Scan what each commit in A..B adds.")
@click.option(
    "--pre-push",
    is_flag=True,
    help="Scan every commit a push sends (git's pre-push stdin, or pre-commit's environment).",
)
@click.option(
    "--remote",
    metavar="NAME",
    help="With --pre-push: the remote pushed to (git passes it to the hook as $1); only its "
    "tracking refs count as already pushed.",
)
@click.option(
    "--hook",
    is_flag=True,
    help="As a pre-commit framework hook: pushed commits at pre-push, else the files given.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="Output format on stdout.",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Accepted findings (default: .tether-baseline.json at the repo root).",
)
@click.option(
    "--update-baseline", is_flag=True, help="Accept every current finding into the baseline."
)
@click.option(
    "--max-size",
    type=int,
    default=1024 * 1024,
    show_default=True,
    metavar="BYTES",
    help="Skip (and count) larger files.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="REGEX",
    help="Leave out paths (relative to the repo root) matching this regex; repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
def scan(  # noqa: PLR0917 (one parameter per click option)
    paths: tuple[Path, ...],
    staged: bool,
    commits: str | None,
    pre_push: bool,
    remote: str | None,
    hook: bool,
    fmt: str,
    baseline: Path | None,
    update_baseline: bool,
    max_size: int,
    exclude: tuple[str, ...],
    as_json: bool,
) -> int:
    """Find secrets in files, the index, a commit range or a push (exit 3 when found).

    Values are never printed. Silence a line with a `tether:allow` comment; accept existing
    findings with --update-baseline.
    """
    from tether.commands.scan import ScanRequest
    from tether.commands.scan import scan as run

    if as_json and fmt not in ("text", "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two formats; give one")
    request = ScanRequest(
        paths=paths,
        staged=staged,
        commits=commits,
        pre_push=pre_push,
        remote=remote,
        hook=hook,
        fmt="json" if as_json else fmt,
        baseline=baseline,
        update_baseline=update_baseline,
        max_size=max_size,
        exclude=exclude,
    )
    return run(request)


@cli.group()
def hooks() -> None:
    """Plain git hooks (for repos without the pre-commit framework)."""


@hooks.command("install", short_help="Install pre-commit and pre-push hooks running `tether scan`.")
@click.argument(
    "repo", required=False, type=click.Path(path_type=Path, file_okay=False), metavar="[REPO]"
)
@click.option("--force", is_flag=True, help="Replace a hook tether did not write.")
@click.option("--chain", is_flag=True, help="Keep a foreign hook and run it after tether's.")
def hooks_install(repo: Path | None, force: bool, chain: bool) -> int:
    """Install pre-commit and pre-push hooks that run `tether scan` (honours core.hooksPath)."""
    from tether.commands.hooks import install

    return install(repo or Path.cwd(), force=force, chain=chain)


@cli.command(short_help="Replace secrets in files by placeholders; store the values.")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH..."
)
@click.option("--check", is_flag=True, help="Write nothing; list what would be redacted.")
@secrets_file_option()
def redact(paths: tuple[Path, ...], check: bool, secrets_file: Path | None) -> int:
    """Replace secrets in PATH... by named placeholders; store the values.

    With --check (the pre-commit mode) exit 3 listing `path:line: NAME` for each secret.
    """
    from tether.commands.redact import run

    return run(list(paths), check=check, secrets_file=secrets_file)


@cli.group(short_help="Check the secret store against the repo; carry it to a new host.")
def secrets() -> None:
    """The secret store against the config repo's placeholders (names only, never values),
    and the store sealed with a passphrase to carry it to a new host."""


@secrets.command("list", short_help="Each name: stored or not, and where the repo uses it.")
@folder_source_option("The config repo folder (default: the current folder).")
@host_name_option
@secrets_file_option()
@json_option
def secrets_list(source: Path | None, secrets_file: Path | None, as_json: bool) -> int:
    """Every secret name: whether it is stored and where the repo uses it."""
    from tether.commands.secrets import list_secrets

    folder = SourceOptions.resolve(source, None, None).folder  # same checks as every --source
    return list_secrets(folder, secrets_file, as_json=as_json, host=chosen_host())


@secrets.command("check")
@folder_source_option("The config repo folder (default: the current folder).")
@host_name_option
@secrets_file_option()
@json_option
def secrets_check(source: Path | None, secrets_file: Path | None, as_json: bool) -> int:
    """Exit 3 when a placeholder in the repo has no value in the store."""
    from tether.commands.secrets import check_secrets

    folder = SourceOptions.resolve(source, None, None).folder  # same checks as every --source
    return check_secrets(folder, secrets_file, as_json=as_json, host=chosen_host())


def passphrase_options(func: F) -> F:
    """--passphrase-file and --source (whose tether.yaml may say where the store is)."""
    func = path_option(
        "--passphrase-file",
        "Read the passphrase from the first line of FILE (mode 0600) [else TETHER_PASSPHRASE, "
        "else asked without echo].",
        folder=False,
    )(func)
    return folder_source_option(
        "A config repo folder whose secrets.file names the store (default: the current folder "
        "when it holds tether.yaml)."
    )(func)


@secrets.command("export", short_help="Seal the store into a file with a passphrase.")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="The file to write (0600), sealed with a passphrase.",
)
@click.option("--force", is_flag=True, help="Replace FILE when it exists.")
@passphrase_options
@host_name_option
@secrets_file_option()
def secrets_export(
    to: Path,
    force: bool,
    passphrase_file: Path | None,
    source: Path | None,
    secrets_file: Path | None,
) -> int:
    """Seal the secret store into FILE with a passphrase (scrypt + AES-256-GCM)."""
    from tether.commands.secrets import export_secrets

    return export_secrets(
        to,
        source=source,
        secrets_file=secrets_file,
        passphrase_file=passphrase_file,
        force=force,
        host=chosen_host(),
    )


@secrets.command("import", short_help="Merge a sealed export into the store.")
@click.option(
    "--from",
    "from_file",
    required=True,
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file made by `tether secrets export`.",
)
@click.option("--overwrite", is_flag=True, help="Replace stored values that differ.")
@passphrase_options
@host_name_option
@secrets_file_option()
def secrets_import(
    from_file: Path,
    overwrite: bool,
    passphrase_file: Path | None,
    source: Path | None,
    secrets_file: Path | None,
) -> int:
    """Merge an export into the secret store; exit 3 when values differ (see --overwrite)."""
    from tether.commands.secrets import import_secrets

    return import_secrets(
        from_file,
        source=source,
        secrets_file=secrets_file,
        passphrase_file=passphrase_file,
        overwrite=overwrite,
        host=chosen_host(),
    )


def wait_option(func: F) -> F:
    return click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=0.0,
        metavar="SECONDS",
        help="Wait up to SECONDS for another run's lock instead of stopping.",
    )(func)


@cli.command(short_help="Plan (default) or apply the config repo onto this host.")
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
@click.option(
    "--require-fresh",
    is_flag=True,
    help="Fail when the remote cannot be fetched (default: carry on from the last fetch, exit 3).",
)
@metrics_file_option("Write Prometheus textfile-collector metrics of this run to FILE.")
@wait_option
@handler_options
@only_option
@source_options
@host_options
@json_option
@detailed_exitcode_option
def reconcile(  # noqa: PLR0917
    plan_only: bool | None,
    only: tuple[str, ...],
    require_fresh: bool,
    metrics_file: Path | None,
    overwrite: bool,
    prune: bool,
    diff: bool,
    out: Path | None,
    rebuild_ledger: bool,
    wait: float,
    bring_up: bool,
    no_handlers: bool,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    """Plan (default) or apply the config repo onto this host, three-way; after an apply, the
    services owning a changed file run their handlers, in order."""
    from tether.commands.reconcile import reconcile as run

    code = run(
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
        require_fresh=require_fresh,
        metrics_file=metrics_file,
        bring_up=bring_up,
        handlers=not no_handlers,
        only=only,
    )
    return for_process(code, detailed=detailed_exitcode)


@cli.command(short_help="Show the plan's diffs only (secret values masked).")
@click.argument("paths", nargs=-1, metavar="[PATH/GLOB...]")
@only_option
@source_options
@host_options
def diff(  # noqa: PLR0917
    paths: tuple[str, ...],
    only: tuple[str, ...],
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
) -> int:
    """The diffs host -> repo of every file the plan would change or that needs attention, as
    `reconcile --diff` shows them, nothing else (like `chezmoi diff`)."""
    from tether.commands.reconcilerun import diff as run

    return run(
        SourceOptions.resolve(source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        explicit_root=target_root is not None,
        only=paths + only,
    )


@cli.command(short_help="Print the shell completion script (bash, zsh or fish).")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> int:
    """Print the script that completes tether's commands and options in SHELL:
    `eval "$(tether completion bash)"` in ~/.bashrc (zsh alike); for fish, save it as
    ~/.config/fish/completions/tether.fish."""
    from tether.commands.completion import completion as run

    return run(cli, shell)


@cli.command("ls", short_help="List the managed files: action, layer, destination.")
@only_option
@source_options
@host_options
@json_option
def ls_command(  # noqa: PLR0917
    only: tuple[str, ...],
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
) -> int:
    """Every managed file with the action a plan gives it, its layer (shared or host) and its
    destination."""
    from tether.commands.reconcilerun import ls as run

    return run(
        SourceOptions.resolve(source, repo, ref),
        host(target_root, target_home, state_dir, secrets_file),
        explicit_root=target_root is not None,
        only=only,
        as_json=as_json,
    )


@cli.group(
    "services",
    invoke_without_command=True,
    short_help="The services, pending or ok (0 when none is pending, else 3).",
)
@source_options
@host_options
@json_option
@click.pass_context
def services(  # noqa: PLR0917
    ctx: click.Context,
    source: Path | None,
    repo: str | None,
    ref: str | None,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
) -> int:
    """The manifest's services and what their handlers still owe: ok, pending, or failed
    (exit 0 when none is pending, 3 otherwise)."""
    ctx.obj = ServicesArgs(source, repo, ref, target_root, target_home, state_dir, secrets_file)
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    from tether.commands.services import list_services

    return list_services(*ctx.obj.resolve(), explicit_root=target_root is not None, as_json=as_json)


@dataclass(frozen=True)
class ServicesArgs:
    """The `services` group's options, resolved only by the subcommands that need them."""

    source: Path | None
    repo: str | None
    ref: str | None
    target_root: Path | None
    target_home: str | None
    state_dir: Path | None
    secrets_file: Path | None

    def host(self) -> HostOptions:
        return host(self.target_root, self.target_home, self.state_dir, self.secrets_file)

    def resolve(self) -> tuple[SourceOptions, HostOptions]:
        return SourceOptions.resolve(self.source, self.repo, self.ref), self.host()


@services.command("run", short_help="Run the pending (or named) services now, in order.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@wait_option
@json_option
@click.pass_obj
def services_run(args: ServicesArgs, names: tuple[str, ...], wait: float, as_json: bool) -> int:
    """Run the pending services (or the NAMEd ones, pending or not) now, in `after` order;
    exit 3 when one failed."""
    from tether.commands.services import run_services

    return run_services(
        *args.resolve(),
        names,
        explicit_root=args.target_root is not None,
        as_json=as_json,
        wait=wait,
    )


@services.command("forget", short_help="Clear a service's pending state without running it.")
@click.argument("name")
@wait_option
@click.pass_obj
def services_forget(args: ServicesArgs, name: str, wait: float) -> int:
    """Clear NAME's pending state (its handlers are not run)."""
    from tether.commands.services import forget_service

    return forget_service(args.host(), name, wait=wait)


def capture_options(message_help: str) -> Callable[[F], F]:
    """--repo / --source / --branch / --dry-run / --no-push / --message: capture and add."""

    def apply(func: F) -> F:
        func = click.option("--message", metavar="MSG", help=message_help)(func)
        func = click.option("--no-push", is_flag=True, help="Commit to the mirror only.")(func)
        func = click.option(
            "--dry-run", is_flag=True, help="Show what would be committed; write nothing."
        )(func)
        func = click.option(
            "--branch",
            "--ref",
            "branch",
            metavar="BRANCH",
            help="Branch to commit to [default: capture.branch, else main]; --ref is an alias.",
        )(func)
        func = folder_source_option(
            "A config repo folder whose tether.yaml names capture.remote (default: the current "
            "one)."
        )(func)
        return click.option(
            "--repo",
            metavar="URL_OR_PATH",
            help="The remote to capture into [default: capture.remote].",
        )(func)

    return apply


@cli.command(short_help="Copy allowlisted host files into the repo, redacted, and push.")
@capture_options("Commit message ({time}: the UTC time).")
@click.option("--prune", is_flag=True, help="Remove files gone from the host from the repo.")
@click.option(
    "--keep-host",
    multiple=True,
    metavar="PATH",
    help="Resolve a conflict for PATH (or glob) with the host's version (repeatable).",
)
@click.option(
    "--to-host",
    multiple=True,
    metavar="PATH",
    help="Move PATH (an inventory path) from the shared layer into this host's overlay "
    "hosts/<host>/configs/ (repeatable).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Commit nothing while a secret finding remains (default: hold back only its file).",
)
@metrics_file_option("Write Prometheus textfile-collector metrics of this run to FILE.")
@wait_option
@only_option
@host_options
@json_option
@detailed_exitcode_option
def capture(  # noqa: PLR0917
    repo: str | None,
    source: Path | None,
    branch: str | None,
    dry_run: bool,
    no_push: bool,
    prune: bool,
    message: str | None,
    keep_host: tuple[str, ...],
    to_host: tuple[str, ...],
    strict: bool,
    metrics_file: Path | None,
    wait: float,
    only: tuple[str, ...],
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    """Copy allowlisted host files into the config repo: redacted, scanned, committed, pushed."""
    from tether.commands.capture import CaptureRequest
    from tether.commands.capture import capture as run

    request = CaptureRequest(
        repo=repo,
        source=source,
        branch=branch,
        dry_run=dry_run,
        no_push=no_push,
        prune=prune,
        message=message,
        keep_host=keep_host,
        to_host=to_host,
        only=only,
        strict=strict,
    )
    code = run(
        request,
        host(target_root, target_home, state_dir, secrets_file),
        explicit_root=target_root is not None,
        as_json=as_json,
        metrics_file=metrics_file,
        wait=wait,
    )
    return for_process(code, detailed=detailed_exitcode)


@cli.command("add", short_help="Add host files to the allowlist and capture them.")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH..."
)
@capture_options("Commit message (default: tether add: PATHS).")
@wait_option
@host_options
@json_option
@detailed_exitcode_option
def add(  # noqa: PLR0917
    paths: tuple[Path, ...],
    repo: str | None,
    source: Path | None,
    branch: str | None,
    dry_run: bool,
    no_push: bool,
    message: str | None,
    wait: float,
    target_root: Path | None,
    target_home: str | None,
    state_dir: Path | None,
    secrets_file: Path | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    """Append lines for the host files PATH... (absolute, or relative to the current folder;
    below the target home) to the allowlist and capture those files, redacted, in one commit.
    Links, folders, data and files outside the home are refused; a line already there is not
    repeated."""
    from tether.commands.capture import CaptureRequest
    from tether.commands.capture import capture as run

    request = CaptureRequest(
        repo=repo,
        source=source,
        branch=branch,
        dry_run=dry_run,
        no_push=no_push,
        message=message,
        add=tuple(str(p) for p in paths),
    )
    code = run(
        request,
        host(target_root, target_home, state_dir, secrets_file),
        explicit_root=target_root is not None,
        as_json=as_json,
        wait=wait,
    )
    return for_process(code, detailed=detailed_exitcode)


@cli.command("apply", short_help="Apply a saved plan exactly, or refuse it whole.")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False), metavar="PLAN.json")
@state_dir_option("State dir (default: the one the plan was made with) [env: TETHER_STATE_DIR].")
@secrets_file_option(
    "The dotenv secret store (default: the one the plan was made with) [env: TETHER_SECRETS_FILE]."
)
@metrics_file_option("Write Prometheus textfile-collector metrics of this run to FILE.")
@wait_option
@handler_options
@json_option
def apply_cmd(  # noqa: PLR0917
    plan_file: Path,
    state_dir: Path | None,
    secrets_file: Path | None,
    metrics_file: Path | None,
    wait: float,
    bring_up: bool,
    no_handlers: bool,
    as_json: bool,
) -> int:
    """Apply a saved plan exactly, refusing it whole if any destination moved since."""
    from tether.commands.apply import apply_saved

    return apply_saved(
        plan_file,
        state_dir=state_dir,
        secrets_file=secrets_file,
        as_json=as_json,
        wait=wait,
        metrics_file=metrics_file,
        bring_up=bring_up,
        handlers=not no_handlers,
    )


@cli.group(invoke_without_command=True)
@state_dir_option()
@json_option
@click.pass_context
def backups(ctx: click.Context, state_dir: Path | None, as_json: bool) -> int:
    """List the backups of overwritten files (newest first)."""
    from tether.config.options import default_state_dir

    ctx.obj = state_dir or default_state_dir()
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    from tether.commands.backups import list_backups

    return list_backups(ctx.obj, as_json=as_json)


@backups.command("restore", short_help="Put backup ID back at its destination.")
@click.argument("backup_id", metavar="ID")
@wait_option
@state_dir_option()
@click.pass_obj
def backups_restore(
    group_state_dir: Path, backup_id: str, wait: float, state_dir: Path | None
) -> int:
    """Put backup ID back at its destination (the current bytes are backed up first).
    --state-dir goes before or after `restore`."""
    from tether.commands.backups import restore_backup

    return restore_backup(state_dir or group_state_dir, backup_id, wait=wait)


def main(argv: Sequence[str] | None = None) -> int:
    stdout = sys.stdout
    with error_handler() as result:
        try:
            code = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
        except SystemExit:
            if sys.stdout is stdout:
                raise
            # click met a closed pipe: it swapped stdout for a quiet wrapper and exits 1
            code = ExitCode.CLOSED_PIPE
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.UsageError as exc:
            exc.show()
            code = ExitCode.USAGE
        except click.ClickException as exc:
            exc.show()
            code = exc.exit_code
        result[0] = int(code) if isinstance(code, int) else int(ExitCode.OK)
    return result[0]
