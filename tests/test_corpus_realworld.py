"""The real-world corpus (tests/corpus/realworld): labels consistent, tether measured on it.

Values never reach an assertion message: failures name paths and lines only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from testing import corpus

LABELS = corpus.load_labels()
SOURCES = corpus.load_sources()
FILES = corpus.corpus_files()
RECALL_TARGET = 0.97
PRECISION_TARGET = 0.97


def test_corpus_is_not_empty() -> None:
    assert len(FILES) >= 300  # issue 11: at least 300 real config files
    assert len(LABELS) >= 150


def test_every_label_names_a_line_holding_its_value() -> None:
    bad = []
    for label in LABELS:
        assert label.kind in corpus.KINDS, f"{label.path}:{label.line}: kind {label.kind!r}"
        data = (corpus.ROOT / label.path).read_bytes()
        if label.kind == "whole-file":
            ok = label.line == 1 and label.value.encode() in data
        else:
            lines = data.decode("utf-8").split("\n")
            ok = 1 <= label.line <= len(lines) and label.value in lines[label.line - 1]
        if not ok:
            bad.append(f"{label.path}:{label.line}")
    assert not bad, f"labels whose line does not hold the value: {bad}"


def test_labels_are_unique() -> None:
    keys = [(label.path, label.line, label.value) for label in LABELS]
    assert len(keys) == len(set(keys))


def test_every_file_has_a_source_row_and_a_licence() -> None:
    missing = [path for path in FILES if path not in SOURCES]
    assert not missing, f"files with no SOURCES.tsv row: {missing}"
    stale = sorted(set(SOURCES) - set(FILES))
    assert not stale, f"SOURCES.tsv rows with no file: {stale}"
    for source in SOURCES.values():
        owner_repo = source.repo.replace("/", "__")
        assert source.path == f"{corpus.FILES}/{owner_repo}/{source.original}", source.path
        assert len(source.commit) == 40, source.path
        assert source.licence in {
            "MIT",
            "Apache-2.0",
            "BSD-2-Clause",
            "BSD-3-Clause",
            "CC0-1.0",
            "Unlicense",
            "ISC",
            "0BSD",
        }, source.path
        assert (corpus.ROOT / "LICENSES" / f"{owner_repo}.txt").is_file(), source.repo


def test_every_labelled_path_is_a_corpus_file() -> None:
    assert {label.path for label in LABELS} <= set(FILES)


def test_the_scorer_counts_by_file_and_line() -> None:
    labels = [corpus.Label("files/a", 1, "x"), corpus.Label("files/a", 3, "y")]
    result = corpus.score({("files/a", 1), ("files/b", 2)}, labels)
    assert (result.true_positives, result.false_positives, result.false_negatives) == (1, 1, 1)
    assert result.recall == 0.5
    assert result.precision == 0.5
    assert "x" not in result.summary()


@pytest.fixture(scope="module")
def tether_found(tmp_path_factory: pytest.TempPathFactory) -> set[corpus.Pair]:
    tree = corpus.copy_files(tmp_path_factory.mktemp("realworld"))
    return corpus.tether_scan(tree)


def test_tether_scan_runs_on_every_file(tether_found: set[corpus.Pair]) -> None:
    assert {path for path, _ in tether_found} <= set(FILES)


def test_tether_scan_recall(tether_found: set[corpus.Pair]) -> None:
    result = corpus.score(tether_found, LABELS)
    missed, _ = corpus.misses(tether_found, LABELS)
    assert result.recall >= RECALL_TARGET, f"{result.summary()}; missed {missed[:20]}"


def test_tether_scan_precision(tether_found: set[corpus.Pair]) -> None:
    result = corpus.score(tether_found, LABELS)
    _, extra = corpus.misses(tether_found, LABELS)
    assert result.precision >= PRECISION_TARGET, f"{result.summary()}; extra {extra[:20]}"


def _redact_round_trip(path: str) -> tuple[bool, bool]:
    """(no labelled value left in the redacted text, render gives the bytes back)."""
    from tether.secrets.redact import redact  # noqa: PLC0415
    from tether.secrets.render import render  # noqa: PLC0415

    data = (corpus.ROOT / path).read_bytes()
    text = data.decode("utf-8")
    redaction = redact(text, Path(path).relative_to(corpus.FILES).as_posix())
    store = {secret.name: secret.value for secret in redaction.secrets}
    # By labelled line: a short password may also be a user or database name elsewhere in the
    # file (`MYSQL_USER=friendica`), which is not a secret and stays.
    lines = redaction.text.split("\n")
    clean = not any(
        label.value in redaction.text
        if label.kind == "whole-file"
        else label.value in lines[label.line - 1]
        for label in LABELS
        if label.path == path
    )
    back = render(redaction.text.encode("utf-8"), store.get).data
    return clean, back == data


def test_redact_removes_every_labelled_value() -> None:
    leaked = [path for path in FILES if not _redact_round_trip(path)[0]]
    assert not leaked, f"{len(leaked)} files keep a labelled value after redact: {leaked[:20]}"


def test_redact_then_render_gives_the_bytes_back() -> None:
    broken = [path for path in FILES if not _redact_round_trip(path)[1]]
    assert not broken, f"files not restored byte for byte: {broken}"


def _parse(path: str, text: str) -> None:
    if path.endswith((".yml", ".yaml")):
        list(yaml.safe_load_all(text))
    else:
        json.loads(text)


def test_structured_files_that_parse_still_parse_after_redact() -> None:
    from tether.secrets.redact import redact  # noqa: PLC0415

    checked, broken = 0, []
    for path in FILES:
        if not path.endswith((".yml", ".yaml", ".json")):
            continue
        text = (corpus.ROOT / path).read_text(encoding="utf-8")
        try:
            _parse(path, text)
        except (yaml.YAMLError, ValueError):
            continue  # templates ({{ }}, {% %}) that never parsed
        redacted = redact(text, Path(path).relative_to(corpus.FILES).as_posix()).text
        checked += 1
        try:
            _parse(path, redacted)
        except (yaml.YAMLError, ValueError):
            broken.append(path)
    assert checked >= 100
    assert not broken, f"files that no longer parse after redact: {broken}"


HOME = "/home/u"


def _blobs(remote: Path) -> list[bytes]:
    from dulwich.objects import Blob  # noqa: PLC0415
    from dulwich.repo import Repo  # noqa: PLC0415

    with Repo(str(remote)) as repo:
        store = repo.object_store
        return [obj.data for sha in store if isinstance(obj := store[sha], Blob)]


def _values_left(blobs: dict[str, bytes]) -> list[str]:
    """Paths (never values) whose captured blob keeps a labelled value: on its labelled line,
    or anywhere for a whole-file secret (a short password may also be a user name elsewhere)."""
    left = []
    for label in LABELS:
        blob = blobs.get(f"configs/{label.path}")
        if blob is None:
            left.append(f"{label.path} (not captured)")
            continue
        text = blob.decode("utf-8", "replace")
        lines = text.split("\n")
        line = lines[label.line - 1] if label.line <= len(lines) else ""
        if label.value in (text if label.kind == "whole-file" else line):
            left.append(f"{label.path}:{label.line}")
    return left


def test_capture_then_reconcile_gives_every_corpus_file_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole corpus as a host: capture (redact, scan, commit, push into a bare remote), then
    reconcile onto an empty folder with the store: every file byte for byte, nothing held or
    blocked; no labelled value in any pushed blob, nor in what either command printed."""
    from testing.gitrepos import commit, init_bare, ref_of  # noqa: PLC0415
    from tether.cli import main  # noqa: PLC0415
    from tether.exitcodes import ExitCode  # noqa: PLC0415
    from tether.git import objects as gitobjects  # noqa: PLC0415

    remote = init_bare(tmp_path / "remote.git")
    manifest = f"version: 1\ntarget:\n  home: {HOME}\n".encode()
    inventory = b"files/**\n"
    commit(remote, {"tether.yaml": manifest, "inventory/include-paths.txt": inventory}, "init")
    host = tmp_path / "host"
    corpus.copy_files(host / HOME.lstrip("/"))
    store = tmp_path / "secrets.env"
    common = ["--repo", str(remote), "--secrets-file", str(store), "--json"]

    code = main(
        ["capture", *common, "--target-root", str(host), "--state-dir", str(tmp_path / "s")]
    )
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == ExitCode.OK, [(f["path"], f["action"], f["reason"]) for f in doc["files"]]
    assert doc["held"] == [] and doc["findings"] == []
    assert {f["action"] for f in doc["files"]} == {"add"}
    assert len(doc["files"]) == len(FILES)

    head = ref_of(remote, "refs/heads/main")
    assert head is not None
    tree = gitobjects.list_tree(remote, head)
    with gitobjects.ObjectReader(remote) as reader:
        blobs = {path: reader.read_blob(blob) for path, (_mode, blob) in tree.items()}
    assert _values_left(blobs) == []
    whole = [label for label in LABELS if label.kind == "whole-file"]
    assert whole, "the corpus holds a Docker secret file"
    history = b"\0".join(_blobs(remote))  # every blob of the remote, the init commit's too
    # A password that is a plain word is often a user or role name too (`kibanaserver`), or
    # prose in another project's file (`'password'`): only the others are looked for anywhere.
    bare = {label.value: label.value.strip().strip("'\"") for label in LABELS}
    distinctive = {v for v, b in bare.items() if len(b) >= 8 and not b.isalpha()}
    looked_for = len(distinctive)  # a count: values never reach an assertion message
    assert looked_for >= 75
    assert [label.path for label in whole if label.value.encode() in history] == []
    assert sum(value.encode() in history for value in distinctive) == 0

    restored = tmp_path / "restored"
    restored.mkdir()
    code = main(["reconcile", "--apply", *common, "--target-root", str(restored),
                 "--state-dir", str(tmp_path / "s2")])  # fmt: skip
    applied = capsys.readouterr()
    assert code == ExitCode.OK, applied.err
    assert {f["action"] for f in json.loads(applied.out)["files"]} == {"create"}
    differ = [
        path
        for path in FILES
        if (restored / HOME.lstrip("/") / path).read_bytes() != (corpus.ROOT / path).read_bytes()
    ]
    assert differ == []
    printed = captured.out + captured.err + applied.out + applied.err
    assert sum(value in printed for value in distinctive) == 0
