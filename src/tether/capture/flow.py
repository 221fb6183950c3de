"""Capture: allowlisted host files -> redacted -> scanned -> one commit on the fetched tip -> push.

Replaces the article's backup-and-push.sh without its work tree, `git add -A` or `pull --rebase
--autostash` (dulwich's rebase and stash can lose data). Each
attempt fetches, reads the manifest and inventory from the tip of the branch, compares every
host file with the tip and with the ledger (what this host last received or captured), and
builds a commit in the mirror's object store on top of that tip. A push that loses a race is
rebuilt on the new tip; every attempt re-observes the host, so nothing needs merging.

A file changed both upstream (the tip's blob is not the ledger's) and on the host (its keyed
hash is not the ledger's) is a conflict: capture then pushes nothing at all and keeps its commit
at refs/tether/pending/<time> in the mirror, so no one's work is lost or half-published.
"""

from __future__ import annotations

import datetime as dt
import random
import socket
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

from tether.config.configrepo import ConfigRepo, open_config_repo
from tether.config.inventory import GLOB_CHARS, check_relative_path, chosen_by, matches
from tether.config.manifest import MANIFEST_NAME, load_manifest
from tether.errors import GitError, SourceError, UsageError
from tether.git import mirror as gitmirror
from tether.git import objects as gitobjects
from tether.git import remote as gitremote
from tether.git.tree import RemoteTree
from tether.hostfs.discover import home_relative
from tether.hostfs.host import Confinement, Probe, read_regular
from tether.hostfs.probe import sig_size
from tether.reconcile.desired import destination, names_host
from tether.reconcile.engine import resolve_paths
from tether.secrets.baseline import BASELINE_NAME, load_baseline, new_salt
from tether.secrets.redact import placeholders_in, redact_binary, redact_files
from tether.secrets.render import has_marker, render
from tether.secrets.scan import STORE_VALUE_RULE, Finding, Scanner, default_rules
from tether.secrets.store import SecretStore, load_store, store_path
from tether.secrets.wholefile import declared_secret_files, is_compose_file, is_keystore
from tether.stamps import file_stamp, git_blob_id, utc_stamp
from tether.state.keyring import Keyring
from tether.state.ledger import LedgerEntry
from tether.textsafe import looks_binary

ATTEMPTS = 20  # lost races before giving up: twenty hosts capturing at once all land
BACKOFF_CAP = 2.0  # seconds: the most a lost race waits before rebuilding on the new tip
PENDING_PREFIX = "refs/tether/pending/"
TEXT = "utf-8"


class Action(StrEnum):
    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"
    CONFLICT = "conflict"
    REFUSED = "refused"
    UNCHANGED = "unchanged"
    MISSING = "missing"
    HELD = "held"  # a secret finding: kept out of the commit and the ledger, retried next time


COMMITTED = (Action.ADD, Action.MODIFY, Action.DELETE)


class FileResult(NamedTuple):
    path: str  # inventory path
    action: Action
    reason: str | None = None


class Held(NamedTuple):
    """A secret finding that holds its file back: where it is and which rule (never a value)."""

    path: str  # inventory path
    line: int
    rule: str

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "rule": self.rule}


class Target(NamedTuple):
    """One allowlisted path and where it lives on the host."""

    path: str
    dest: str
    max_size: int
    allow_binary: bool


class Read(NamedTuple):
    """A host file read for capture: its bytes and what the repo would hold instead."""

    path: str
    dest: str
    probe: Probe
    host: bytes
    repo: bytes | None = None  # redacted; None until redacted
    host_hash: str | None = None  # keyed hash of `host`, once computed
    blob: str | None = None  # git blob id of `repo`, once classified
    used: tuple[str, ...] = ()  # the secret names `repo` uses, once classified


@dataclass(frozen=True)
class Tip:
    mirror: Path
    commit: str
    entries: Mapping[str, tuple[int, str]]  # the tip's tree: path -> (mode, blob id)

    def blob(self, repo_path: str) -> str | None:
        entry = self.entries.get(repo_path)
        return entry[1] if entry else None


@dataclass
class Observation:
    """What one attempt found: results per path, and the files whose bytes go to the repo."""

    results: dict[str, FileResult] = field(default_factory=dict)
    reads: dict[str, Read] = field(default_factory=dict)  # path -> read (changed or to record)
    refresh: dict[str, Probe] = field(default_factory=dict)  # dest -> probe: host == ledger


@dataclass(frozen=True)
class Settings:
    """Everything an attempt needs that does not change between attempts."""

    remote: gitremote.Remote
    branch: str
    state_dir: Path
    ledger_dir: Path  # this config repo's ledger and capture journal (state_dir/repos/...)
    target_root: Path
    explicit_root: bool
    target_home: str | None
    keyring: Keyring
    secrets_file: Path | None
    ledger: Mapping[str, LedgerEntry]
    prune: bool = False
    keep_host: tuple[str, ...] = ()
    to_host: tuple[str, ...] = ()  # paths moved from the shared layer into the host's overlay
    only: tuple[str, ...] = ()  # --only PATH/GLOB: capture these inventory paths alone
    add: tuple[str, ...] = ()  # `tether add`: host files to allowlist and capture (alone)
    host: str | None = None  # --host: the profile of `hosts:` (else $TETHER_HOST, hostname)
    hostname: str = field(default_factory=socket.gethostname)

    @property
    def host_label(self) -> str:
        """The name `files.<glob>.hosts` is matched against: --host when given."""
        return self.host or self.hostname


class Plan(NamedTuple):
    """One attempt's result before anything is written."""

    tip: Tip
    repo: ConfigRepo
    store: SecretStore
    observation: Observation
    changes: dict[str, bytes | None]  # repo path -> bytes (None: delete), conflicts included
    values: dict[str, str]  # secret values found on the host, by name
    added: tuple[str, ...]
    rotated: tuple[str, ...]
    findings: tuple[Finding, ...]
    diffs: dict[str, str]
    allowlisted: tuple[str, ...] = ()  # lines `tether add` appends to the allowlist
    held: tuple[Held, ...] = ()  # findings whose files are kept out of this capture


# ---------------------------------------------------------------------------------------------
# The tip


def fetch_tip(settings: Settings) -> Tip:
    """Fetch the mirror and list the tree of the branch's tip; the branch must exist."""
    result = gitmirror.fetch(settings.remote, settings.state_dir)
    ref = f"refs/heads/{settings.branch}"
    commit = result.refs.get(ref)
    if commit is None:
        raise GitError(
            f"{settings.remote.display}: no branch {settings.branch!r}",
            hint="create the config repo first (tether init, commit, push), or pass --branch",
        )
    return Tip(result.path, commit, gitobjects.list_tree(result.path, commit))


def open_tip(settings: Settings, tip: Tip) -> tuple[ConfigRepo, RemoteTree]:
    tree = RemoteTree(
        tip.mirror, tip.commit, tip.entries, display=settings.remote.display, ref=settings.branch
    )
    if not tree.is_file(MANIFEST_NAME):
        tree.close()
        raise SourceError(
            f"{tree.label}: no {MANIFEST_NAME} at the root of branch {settings.branch}",
            hint="capture needs a config repo: create one with `tether init` and push it",
        )
    return open_config_repo(tree, host=settings.host), tree


def manifest_remote(source: Path) -> tuple[str | None, str | None]:
    """`capture.remote` and `capture.branch` of the manifest in a config repo folder."""
    manifest = load_manifest(source / MANIFEST_NAME)
    return manifest.capture.remote, manifest.capture.branch


# ---------------------------------------------------------------------------------------------
# Which host files


def targets(
    settings: Settings, repo: ConfigRepo, root: str, home: str, added: Sequence[str] = ()
) -> list[Target]:
    """The allowlist expanded on the host (a new matching file counts) and in the tip (a
    file gone from the host counts), minus `capture: false` and other hosts' files; only the
    `added` paths (`tether add`) or those `--only` names when given."""
    manifest = repo.manifest
    paths = set(repo.tracked_paths) | set(added)
    if repo.has_globs:
        home_dir = Path(destination(root, "/", home.lstrip("/"), None))
        on_host = {p for inv in repo.inventories for p in inv.expand_folder(home_dir)}
        paths.update(repo.select(on_host))
    chosen = added or settings.only
    if chosen:
        paths = {p for p in paths if chosen_by(chosen, p)}
    found = []
    limit = manifest.capture.max_file_size
    for path in sorted(paths):
        override = manifest.override_for(path)
        if not override.capture:
            continue
        if override.hosts and not names_host(override.hosts, settings.host_label):
            continue
        dest = destination(root, home, path, override.dest)
        found.append(Target(path, dest, override.max_size or limit, override.allow_binary))
    _check_to_host(settings, repo, {t.path for t in found})
    return found


def added_paths(settings: Settings, root: str, home: str) -> list[str]:
    """The inventory paths of the host files `tether add` names; a usage error for one that is
    outside the home, a link, a folder, data, or not a file."""
    home_dir = destination(root, "/", home.lstrip("/"), None)
    found = []
    for given in settings.add:
        rel, why = home_relative(given, home_dir)
        if rel is not None:
            why = check_relative_path(rel)
            if why is None and any(c in GLOB_CHARS for c in rel):
                why = "'*' or '?' in the name would make the allowlist line a glob"
        if rel is None or why is not None:
            raise UsageError(
                f"tether add {given}: {why}",
                hint="give config files below target.home (--target-home sets it); "
                "nothing was changed",
            )
        found.append(rel)
    return sorted(set(found))


def allowlist_lines(repo: ConfigRepo, tip: Tip, added: Sequence[str]) -> tuple[list[str], bytes]:
    """The lines of `added` the allowlist does not name yet, and the allowlist with them
    appended (one line each, never a duplicate). A path this host's profile leaves out of the
    shared allowlist is a usage error: a line would not make this host track it."""
    named = {p for inventory in repo.inventories for p in inventory.select(added)}
    if repo.profile is not None:
        own = {p for inventory in repo.extra for p in inventory.select(added)}
        left_out = [p for p in added if p not in own and not repo.profile.selects(p)]
        if left_out:
            raise UsageError(
                f"tether add {left_out[0]}: host {repo.profile.name!r}'s include/exclude in "
                f"{MANIFEST_NAME} leaves it out",
                hint="change the host's profile, or list it in the host's own inventory; "
                "nothing was changed",
            )
    new = [p for p in added if p not in named]
    blob = tip.blob(repo.manifest.inventory)
    text = gitobjects.read_blob(tip.mirror, blob) if blob is not None else b""
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return new, text + "".join(f"{p}\n" for p in new).encode(TEXT)


def _check_to_host(settings: Settings, repo: ConfigRepo, tracked: set[str]) -> None:
    if not settings.to_host:
        return
    if repo.profile is None:
        raise UsageError(
            "--to-host needs host profiles: this repo's tether.yaml has no hosts:",
            hint="add the host under hosts: (see docs/manifest.md)",
        )
    for path in settings.to_host:
        if path not in tracked:
            raise UsageError(
                f"--to-host {path}: not a file host {repo.profile.name!r} captures",
                hint="give an inventory path (relative to the home), as `tether reconcile` lists",
            )


# ---------------------------------------------------------------------------------------------
# Observing the host


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n} bytes"


def _gone(path: str, *, in_tip: bool, prune: bool) -> FileResult:
    if not in_tip:
        return FileResult(path, Action.MISSING, "not on the host (nor in the repo)")
    if prune:
        return FileResult(path, Action.DELETE)
    why = "gone from the host; kept in the repo (--prune removes it)"
    return FileResult(path, Action.MISSING, why)


def observe(
    settings: Settings, repo: ConfigRepo, tip: Tip, found: Sequence[Target], root: str
) -> Observation:
    """Probe every target; read only what the ledger's stat cache cannot vouch for."""
    seen = Observation()
    confinement = Confinement(root)
    for target in found:
        path, dest = target.path, target.dest
        in_tip = tip.blob(repo.source_path(path)) is not None
        probe = confinement.probe(dest)
        if probe.kind == "missing":
            seen.results[path] = _gone(path, in_tip=in_tip, prune=settings.prune)
            continue
        if probe.kind == "blocked" or probe.real is None:
            seen.results[path] = FileResult(path, Action.REFUSED, probe.reason)
            continue
        known = settings.ledger.get(dest)
        if known is not None and known.path != path:
            known = None
        cached = path not in settings.to_host  # a file moving to the overlay is always read
        upstream = None
        if known is not None and tip.blob(repo.source_path(path)) != known.blob:
            upstream = "changed upstream, not on the host; reconcile brings it"
        if known is not None and known.vouches_for(probe) and cached:
            seen.results[path] = FileResult(path, Action.UNCHANGED, upstream)  # stat cache
            continue
        size = sig_size(probe.sig) if probe.sig else 0
        if size > target.max_size:
            why = (
                f"{_size(size)}, over the {_size(target.max_size)} limit "
                f"(raise files.<path>.max_size or capture.max_file_size)"
            )
            seen.results[path] = FileResult(path, Action.REFUSED, why)
            continue
        try:
            data = read_regular(probe.real)
        except OSError as exc:
            why = f"cannot read ({exc.strerror})"
            seen.results[path] = FileResult(path, Action.REFUSED, why)
            continue
        digest = settings.keyring.hash(data) if known is not None else None
        if known is not None and digest == known.hash and cached:
            seen.results[path] = FileResult(path, Action.UNCHANGED, upstream)
            seen.refresh[dest] = probe
            continue
        if looks_binary(data) and not target.allow_binary and not is_keystore(path):
            why = "binary (NUL byte); set files.<path>.allow_binary to capture it"
            seen.results[path] = FileResult(path, Action.REFUSED, why)
            continue
        seen.reads[path] = Read(path, dest, probe, data, host_hash=digest)
    _never_prune_everything(seen)
    return seen


def _never_prune_everything(seen: Observation) -> None:
    """Nothing of the allowlist on the host is far likelier a wrong home than an intent."""
    actions = {r.action for r in seen.results.values()}
    if seen.reads or Action.DELETE not in actions or actions - {Action.DELETE, Action.MISSING}:
        return
    why = "nothing of the allowlist is on the host; tether never prunes everything"
    for path, result in seen.results.items():
        if result.action == Action.DELETE:
            seen.results[path] = FileResult(path, Action.MISSING, why)


# ---------------------------------------------------------------------------------------------
# Redaction


def _text(data: bytes) -> str:
    return data.decode(TEXT, "surrogateescape")


def whole_file_paths(repo: ConfigRepo, tip: Tip, texts: Mapping[str, str]) -> set[str]:
    """Files that are secrets as a whole beyond what their names say: declared as Docker
    secrets by a compose file (the host's version when captured now, else the tip's) or
    marked `secret: whole` in the manifest."""
    prefix = repo.manifest.source + "/"
    composes = {p: t for p, t in texts.items() if is_compose_file(p)}
    with gitobjects.ObjectReader(tip.mirror) as reader:
        for repo_path, (_mode, blob) in tip.entries.items():
            path = repo_path[len(prefix) :]
            if repo_path.startswith(prefix) and is_compose_file(path) and path not in composes:
                composes[path] = _text(reader.read_blob(blob))
    declared = declared_secret_files(composes.items())
    marked = {p for p in texts if repo.manifest.override_for(p).whole_secret}
    return declared | marked


def _repo_names(
    repo: ConfigRepo, tip: Tip, skip: set[str], ledger: Mapping[str, LedgerEntry]
) -> dict[str, list[str]]:
    """The placeholder names each other file of the tip uses: from the ledger when it recorded
    that very blob, else read from the blob."""
    prefix = repo.manifest.source + "/"
    known = {e.path: e for e in ledger.values()}
    names: dict[str, list[str]] = {}
    with gitobjects.ObjectReader(tip.mirror) as reader:
        for repo_path, (_mode, blob) in tip.entries.items():
            path = repo_path[len(prefix) :]
            if not repo_path.startswith(prefix) or path in skip:
                continue
            entry = known.get(path)
            if entry is not None and entry.blob == blob:
                names[path] = list(entry.secrets)
                continue
            data = reader.read_blob(blob)
            if has_marker(data):
                names[path] = [n for n, _ in placeholders_in(_text(data))]
    return names


def redact_reads(  # noqa: PLR0917
    obs: Observation,
    repo: ConfigRepo,
    tip: Tip,
    store: Mapping[str, str],
    binary: set[str],
    ledger: Mapping[str, LedgerEntry],
) -> dict[str, str]:
    """Fill `repo` of every read with its redacted bytes; returns the values found by name."""
    texts = {p: _text(r.host) for p, r in obs.reads.items() if p not in binary}
    whole = whole_file_paths(repo, tip, texts)
    results = redact_files(texts, store, {}, whole, literal=True)
    fresh = (s for r in results.values() for s in r.secrets)
    if any(store.get(s.name) != s.value for s in fresh):  # a new name: avoid other files' names
        others = _repo_names(repo, tip, set(texts), ledger)
        if any(others.values()):  # none (a first capture): the first pass was already right
            results = redact_files(texts, store, others, whole, literal=True)
    values: dict[str, str] = {}
    named = {s.name for r in results.values() for s in r.secrets}
    for path, read in obs.reads.items():
        if path in binary and is_keystore(path):  # the store keeps its bytes, in base64
            keystore = redact_binary(read.host, path, store, named)
            obs.reads[path] = read._replace(repo=keystore.text.encode(TEXT))
            values.update((s.name, s.value) for s in keystore.secrets)
            named.update(s.name for s in keystore.secrets)
            continue
        if path in binary:
            obs.reads[path] = read._replace(repo=read.host)
            continue
        result = results[path]
        obs.reads[path] = read._replace(repo=result.text.encode(TEXT, "surrogateescape"))
        values.update((s.name, s.value) for s in result.secrets)
    return values


def store_changes(store: SecretStore, values: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(added, rotated) names, compared with the store file."""
    current = store.file_values
    added = sorted(n for n in values if n not in current)
    rotated = sorted(n for n in values if n in current and current[n] != values[n])
    return added, rotated


def lookup_with(store: SecretStore, values: Mapping[str, str]) -> Callable[[str], str | None]:
    """How reconcile will look names up once `values` are saved (the environment first)."""

    def lookup(name: str) -> str | None:
        found = store.environ.get(name)
        if found is not None:
            return found
        return values.get(name, store.file_values.get(name))

    return lookup


# ---------------------------------------------------------------------------------------------
# Classification


def classify(  # noqa: PLR0917
    settings: Settings,
    repo: ConfigRepo,
    tip: Tip,
    obs: Observation,
    store: SecretStore,
    values: Mapping[str, str],
) -> dict[str, bytes | None]:
    """Decide each read file (and each deletion); returns the changes for the commit."""
    changes: dict[str, bytes | None] = {}
    lookup = lookup_with(store, values)
    for path, read in sorted(obs.reads.items()):
        assert read.repo is not None
        moving = path in settings.to_host
        repo_path = repo.host_path(path) if moving else repo.source_path(path)
        now = tip.blob(repo_path)
        # Checked first: the ledger must never record bytes that reconcile would not restore.
        back = render(read.repo, lookup, repo.manifest.secret_names_for(path))
        if back.data != read.host:
            why = "redacting it would not give the host bytes back (a bare REDACTED on the host?)"
            obs.results[path] = FileResult(path, Action.REFUSED, why)
            del obs.reads[path]
            continue
        blob = git_blob_id(read.repo)
        obs.reads[path] = read._replace(blob=blob, used=back.used)  # for the ledger
        if blob == now:
            obs.results[path] = FileResult(path, Action.UNCHANGED)  # recorded in the ledger
            continue
        # a file moving to the overlay was last received from the shared layer
        conflict = upstream_changed(
            settings, read.dest, path, tip.blob(repo.source_path(path)) if moving else now
        )
        if conflict and not any(matches(p, path) for p in settings.keep_host):
            obs.results[path] = FileResult(path, Action.CONFLICT, conflict)
        else:
            action = Action.ADD if now is None else Action.MODIFY
            obs.results[path] = FileResult(path, action)
        changes[repo_path] = read.repo
    for path, result in obs.results.items():
        if result.action == Action.DELETE:
            repo_path = repo.source_path(path)
            dest = destination_of(settings, path)
            conflict = upstream_changed(settings, dest, path, tip.blob(repo_path))
            if conflict and not any(matches(p, path) for p in settings.keep_host):
                why = f"deleted on the host, but {conflict.split(', ', 1)[0]}"
                obs.results[path] = FileResult(path, Action.CONFLICT, why)
            changes[repo_path] = None
    return changes


def destination_of(settings: Settings, path: str) -> str | None:
    for dest, entry in settings.ledger.items():
        if entry.path == path:
            return dest
    return None


def upstream_changed(
    settings: Settings, dest: str | None, path: str, now: str | None
) -> str | None:
    """Why the tip's version is not what this host last received or captured, or None."""
    known = settings.ledger.get(dest) if dest else None
    if known is None or known.path != path:
        if now is None:
            return None
        return "the repo has its own version and this host has no record of receiving it"
    if known.blob == (now or ""):
        return None
    since = f" {known.revision[:12]}" if known.revision else ""
    if now is None:
        return f"deleted upstream since revision{since}, and changed on the host"
    return f"changed upstream since revision{since}, and changed on the host"


# ---------------------------------------------------------------------------------------------
# Scanning


def scanner_for(tip: Tip, reader: gitobjects.ObjectReader) -> Scanner:
    """The scanner, with the repo's own baseline (accepted findings) when it has one."""
    blob = tip.blob(BASELINE_NAME)
    baseline = None
    if blob is not None:
        with tempfile.TemporaryDirectory(prefix="tether-capture-") as tmp:
            path = Path(tmp) / BASELINE_NAME
            path.write_bytes(reader.read_blob(blob))
            baseline = load_baseline(path)
    salt = baseline.salt if baseline else new_salt()
    return Scanner(default_rules(), salt, baseline.fingerprints if baseline else frozenset())


def scan_changes(
    tip: Tip, changes: Mapping[str, bytes | None], store_values: Iterable[str]
) -> list[Finding]:
    """Findings left in what would be committed (the repo's baseline applies), a value of the
    secret store anywhere in it included."""
    with gitobjects.ObjectReader(tip.mirror) as reader:
        scanner = scanner_for(tip, reader)
    scanner.use_store(store_values)
    scanner.max_size = max([scanner.max_size, *(len(d) for d in changes.values() if d)])
    for repo_path, data in sorted(changes.items()):
        if data is not None:
            scanner.scan_bytes(repo_path, data)
    return scanner.result.findings


PLAIN_VALUE = "(PLAIN TEXT: store value {})"
UNSHOWN_DIFF = (
    "(no diff shown: it holds a secret finding)\n"  # how the dry run masks a value left unredacted
)


def diffs_for(
    tip: Tip, changes: Mapping[str, bytes | None], secrets: Mapping[str, str]
) -> dict[str, str]:
    """Unified diffs of the repo side, as it would be committed: redaction already put the
    placeholders in, so a store value still there is one redaction missed (a finding that holds
    the file back); it is masked, but never in words that pass for a placeholder."""
    from tether.reconcile.report import unified  # noqa: PLC0415 (only --dry-run shows diffs)

    out = {}
    with gitobjects.ObjectReader(tip.mirror) as reader:
        for repo_path, data in sorted(changes.items()):
            blob = tip.blob(repo_path)
            old = reader.read_blob(blob) if blob else None
            out[repo_path] = unified(
                old, data, secrets, f"a/{repo_path}", f"b/{repo_path}", label=PLAIN_VALUE
            )
    return out


# ---------------------------------------------------------------------------------------------
# One attempt, before anything is written


def plan_attempt(settings: Settings, *, want_diffs: bool) -> Plan:
    tip = fetch_tip(settings)
    repo, tree = open_tip(settings, tip)
    try:
        root, home = resolve_paths(
            repo.manifest,
            settings.target_root if settings.explicit_root else None,
            settings.target_home,
        )
        added = added_paths(settings, root, home)
        found = targets(settings, repo, root, home, added)
        obs = observe(settings, repo, tip, found, root)
        # let through by observe: allow_binary, or a keystore (redacted whole, in base64)
        binary = {p for p, read in obs.reads.items() if looks_binary(read.host)}
        store = load_store(store_path(settings.secrets_file, repo.manifest.secrets_file))
        values = redact_reads(obs, repo, tip, store.file_values, binary, settings.ledger)
        added_names, rotated = store_changes(store, values)
        changes = classify(settings, repo, tip, obs, store, values)
        allowlisted: list[str] = []
        kept = (*COMMITTED, Action.UNCHANGED)  # a refused or missing file is not allowlisted
        captured = [p for p in added if p in obs.results and obs.results[p].action in kept]
        if captured:
            allowlisted, inventory = allowlist_lines(repo, tip, captured)
            if allowlisted:
                changes[repo.manifest.inventory] = inventory
        known = {**store.known(), **values}
        findings = scan_changes(tip, changes, known.values()) if changes else []
        diffs = {}
        if want_diffs and changes:
            diffs = diffs_for(tip, changes, known)
            for f in findings:  # the diff would show what the finding's preview masks
                if f.rule != STORE_VALUE_RULE:
                    diffs[f.path] = UNSHOWN_DIFF
    finally:
        tree.close()
    return Plan(
        tip,
        repo,
        store,
        obs,
        changes,
        values,
        tuple(added_names),
        tuple(rotated),
        tuple(findings),
        diffs,
        tuple(allowlisted),
    )


def hold_back(plan: Plan, to_host: Sequence[str]) -> Plan | None:
    """The plan with every file that has a finding kept out: out of the commit, the
    ledger (so the next capture tries it again), the store (the names only it uses) and the
    allowlist lines `tether add` would append (as for a refused file). None
    when a finding is not in a host file (the allowlist `tether add` extends): hold everything.
    """
    obs = plan.observation
    where = {
        (plan.repo.host_path(p) if p in to_host else plan.repo.source_path(p)): p for p in obs.reads
    }
    if any(f.path not in where for f in plan.findings):
        return None
    held = tuple(Held(where[f.path], f.line, f.rule) for f in plan.findings)
    changes = dict(plan.changes)
    for repo_path in {f.path for f in plan.findings}:
        path = where[repo_path]
        why = "; ".join(f"line {h.line}: {h.rule}" for h in held if h.path == path)
        obs.results[path] = FileResult(path, Action.HELD, f"secret finding ({why})")
        changes.pop(repo_path, None)
    allowlisted = plan.allowlisted
    if any(h.path in allowlisted for h in held):  # `tether add`: a held file is not listed
        kept_lines = [p for p in allowlisted if obs.results[p].action != Action.HELD]
        allowlisted_list, inventory = allowlist_lines(plan.repo, plan.tip, kept_lines)
        allowlisted = tuple(allowlisted_list)
        changes.pop(plan.repo.manifest.inventory, None)
        if allowlisted:
            changes[plan.repo.manifest.inventory] = inventory
    kept = (*COMMITTED, Action.UNCHANGED)
    used = {n for p, r in obs.reads.items() if obs.results[p].action in kept for n in r.used}
    return plan._replace(
        allowlisted=allowlisted,
        changes=changes,
        values={n: v for n, v in plan.values.items() if n in used},
        added=tuple(n for n in plan.added if n in used),
        rotated=tuple(n for n in plan.rotated if n in used),
        held=held,
    )


def held_text(held: Sequence[Held], files: int = 5, lines: int = 3) -> str:
    """One line naming the held files, each with its findings' lines and rules; a long list is
    cut short (--json lists every finding)."""
    paths: dict[str, list[str]] = {}
    for h in held:
        paths.setdefault(h.path, []).append(f"line {h.line}: {h.rule}")
    shown = []
    for path, where in sorted(paths.items())[:files]:
        more = f"; {len(where) - lines} more" if len(where) > lines else ""
        shown.append(f"{path} ({'; '.join(where[:lines])}{more})")
    rest = f" and {len(paths) - files} more files" if len(paths) > files else ""
    return f"held back {', '.join(shown)}{rest}"


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after losing race number `attempt`: random, growing, capped, so hosts
    that pushed together do not collide again in lockstep."""
    return float(rand() * min(BACKOFF_CAP, 0.05 * 2 ** min(attempt, 8)))


def has_conflict(plan: Plan) -> bool:
    return any(r.action == Action.CONFLICT for r in plan.observation.results.values())


def commit_message(template: str, now: dt.datetime) -> str:
    return template.replace("{time}", utc_stamp(now.timestamp()))


def pending_ref(now: dt.datetime) -> str:
    return PENDING_PREFIX + file_stamp(now.timestamp())


def author_for(plan: Plan, hostname: str) -> str:
    return plan.repo.manifest.capture.author or f"tether <tether@{hostname}>"


def ledger_updates(
    settings: Settings, plan: Plan, revision: str, store: SecretStore, when: str
) -> dict[str, LedgerEntry | None]:
    """What the repo now describes for each captured destination (None: forget it)."""
    updates: dict[str, LedgerEntry | None] = {}
    for path, read in plan.observation.reads.items():
        result = plan.observation.results[path]
        if result.action not in (*COMMITTED, Action.UNCHANGED) or read.repo is None:
            continue
        names = plan.repo.manifest.secret_names_for(path)
        used = read.used  # classify rendered it back with these values
        updates[read.dest] = LedgerEntry.found(
            read.probe,
            path=path,
            hash=read.host_hash or settings.keyring.hash(read.host),
            revision=revision,
            time=when,
            blob=read.blob or git_blob_id(read.repo),
            secrets=used,
            secret_digest=settings.keyring.secret_digest(names, [(n, store.get(n)) for n in used]),
        )
    for dest, probe in plan.observation.refresh.items():
        known = settings.ledger.get(dest)
        if known is not None:
            updates[dest] = known._replace(sig=probe.sig)
    for path, result in plan.observation.results.items():
        if result.action == Action.DELETE:
            gone = destination_of(settings, path)
            if gone is not None:
                updates[gone] = None
    return updates


def results_json(
    plan: Plan | None, revision: str | None, pushed: bool, pending: str | None
) -> dict[str, object]:
    """The --json document; `findings` are masked (never a value)."""
    files = []
    if plan is not None:
        for path, result in sorted(plan.observation.results.items()):
            if result.action == Action.UNCHANGED and result.reason is None:
                continue
            files.append({"path": path, "action": str(result.action), "reason": result.reason})
    return {
        "revision": revision,
        "pushed": pushed,
        "files": files,
        "secrets": {
            "added": list(plan.added) if plan else [],
            "rotated": list(plan.rotated) if plan else [],
        },
        "pending_ref": pending,
        "findings": [f.text() for f in plan.findings] if plan else [],
        "held": [h.to_json() for h in plan.held] if plan else [],
        "allowlisted": list(plan.allowlisted) if plan else [],
    }


def counts(plan: Plan | None) -> dict[str, int]:
    found: dict[str, int] = {}
    if plan is not None:
        for result in plan.observation.results.values():
            found[str(result.action)] = found.get(str(result.action), 0) + 1
    return found
