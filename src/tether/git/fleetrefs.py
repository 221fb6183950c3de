"""Fleet status kept in git itself: `refs/tether/status/<host>`, one parentless commit holding
`status.json`, replaced (force-updated) on every report so the ref never grows a history.

The mirror never fetches these refs for reconcile (only heads and tags); `tether fleet`
fetches them on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.pack import UnpackedObject, pack_objects_to_data
from dulwich.refs import Ref, check_ref_format
from dulwich.repo import Repo

from tether.errors import GitError
from tether.git.objects import parse_identity
from tether.git.publish import REGULAR, PushResult
from tether.git.remote import Remote, connected, transport_errors, transport_failure

STATUS_PREFIX = "refs/tether/status/"
STATUS_FILE = "status.json"


def status_ref(host: str) -> str | None:
    """The ref of `host`'s report, or None when the name cannot be a ref component."""
    ref = STATUS_PREFIX + host
    ok = host and "/" not in host and check_ref_format(Ref(ref.encode()))
    return ref if ok else None


def _report_objects(document: bytes, author: str, when: int) -> list[Blob | Tree | Commit]:
    blob = Blob.from_string(document)
    tree = Tree()
    tree.add(STATUS_FILE.encode(), REGULAR, blob.id)
    commit = Commit()
    commit.tree = tree.id
    commit.parents = []  # parentless: the ref holds the latest report and nothing else
    commit.author = commit.committer = parse_identity(author)
    commit.author_time = commit.commit_time = when
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = b"tether status report\n"
    return [blob, tree, commit]


def push_status(
    remote: Remote, host: str, document: bytes, *, author: str, when: int | None = None
) -> PushResult:
    """Force-update `refs/tether/status/<host>` to a new one-commit report; nothing else moves.

    The three objects are sent as they are: no local repo is read or written."""
    ref = status_ref(host)
    if ref is None:
        raise GitError(f"host name {host!r} cannot name a git ref", hint="pass --host NAME")
    objects = _report_objects(document, author, int(time.time()) if when is None else when)
    commit_id = objects[-1].id
    raw_ref = Ref(ref.encode())

    def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
        return {**refs, raw_ref: commit_id}  # force: the previous report is simply replaced

    def generate(
        have: AbstractSet[ObjectID],
        want: AbstractSet[ObjectID],
        *,
        ofs_delta: bool = True,
        progress: Callable[[bytes], None] | None = None,
    ) -> tuple[int, Iterator[UnpackedObject]]:
        return pack_objects_to_data([(o, None) for o in objects], ofs_delta=ofs_delta)

    with connected(remote, "receive-pack") as (client, rpath):
        try:
            result = client.send_pack(
                rpath.encode() if isinstance(rpath, str) else rpath,
                update_refs,
                generate_pack_data=generate,
            )
        except transport_errors() as exc:
            raise transport_failure(remote, exc, "report to") from None
    status = (result.ref_status or {}).get(raw_ref)
    if status is not None:
        return PushResult("rejected", ref, commit_id.decode(), remote.scrub(str(status)))
    return PushResult("ok", ref, commit_id.decode())


@dataclass(frozen=True)
class HostReport:
    host: str
    commit: str
    document: bytes  # status.json as the host wrote it


def fetch_statuses(remote: Remote, mirror: Path) -> list[HostReport]:
    """Every host's report: fetch the status refs' objects into the mirror and read them."""
    prefix = STATUS_PREFIX.encode()
    with Repo(str(mirror)) as repo:
        store = repo.object_store

        def wants(refs: dict[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
            return sorted(
                {
                    sha
                    for ref, sha in refs.items()
                    if sha and ref.startswith(prefix) and ObjectID(sha) not in store
                }
            )

        with connected(remote, "upload-pack") as (client, rpath):
            try:
                result = client.fetch(rpath, repo, determine_wants=wants)  # type: ignore[arg-type]
            except transport_errors() as exc:
                raise transport_failure(remote, exc, "fetch the status refs of") from None
        reports = []
        for ref, sha in sorted(result.refs.items()):
            if sha is None or not ref.startswith(prefix):
                continue
            reports.append(HostReport(ref[len(prefix) :].decode(), sha.decode(), _read(repo, sha)))
    return reports


def _read(repo: Repo, sha: bytes) -> bytes:
    """status.json of a report commit; b"" when the commit holds something else."""
    try:
        commit = repo[ObjectID(sha)]
        if not isinstance(commit, Commit):
            return b""
        tree = repo[commit.tree]
        if not isinstance(tree, Tree) or STATUS_FILE.encode() not in tree:
            return b""
        _mode, blob_id = tree[STATUS_FILE.encode()]
        blob = repo[blob_id]
        return blob.as_raw_string() if isinstance(blob, Blob) else b""
    except KeyError:
        return b""


def commits_behind(mirror: Path, tip: str, revision: str, *, limit: int = 10_000) -> int | None:
    """How many commits `tip` has that `revision` lacks; None when `revision` is unknown here
    (not a commit of the mirror, e.g. a rewritten history) or more than `limit` apart."""
    with Repo(str(mirror)) as repo:
        if ObjectID(revision.encode()) not in repo.object_store:
            return None
        if revision == tip:
            return 0
        walker = repo.get_walker(
            include=[ObjectID(tip.encode())], exclude=[ObjectID(revision.encode())]
        )
        count = 0
        for _entry in walker:
            count += 1
            if count > limit:
                return None
        return count
