"""Redaction quality and speed on a generated, labeled homelab tree.

    python bench/redact_bench.py [--files 1000] [--seed 7] [--json]

Generates the tree (bench/labeled_tree.py) in a temp folder, runs `tether redact configs` on
it exactly as a user would (store written, files rewritten), then reports:

- recall: planted secret values still present in the output (target 0);
- over-redaction: look-alikes that are not secrets but were changed (target < 2%), and
  placeholders whose value is not a planted secret (extra replacements);
- round-trip fidelity: files whose rendered output (placeholders filled from the store)
  is byte-identical to the original (target 100%);
- time: the whole command, and the pure `redact()` function alone.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from labeled_tree import generate

from tether.commands.redact import run
from tether.secrets.redact import PLACEHOLDER_TEXT, redact
from tether.secrets.render import render
from tether.secrets.store import load_store


class _TagLoader(yaml.SafeLoader):
    pass


_TagLoader.add_multi_constructor("!", lambda loader, _suffix, node: loader.construct_scalar(node))


def _ini(text: str) -> None:
    configparser.ConfigParser(interpolation=None).read_string(text)


PARSERS: dict[str, Callable[[str], object]] = {
    ".yml": lambda t: list(yaml.load_all(t, Loader=_TagLoader)),
    ".yaml": lambda t: list(yaml.load_all(t, Loader=_TagLoader)),
    ".json": json.loads,
    ".toml": tomllib.loads,
    ".ini": _ini,
    ".xml": ET.fromstring,
}


def parses(path: Path, text: str) -> bool | None:
    parser = PARSERS.get(path.suffix)
    if parser is None:
        return None
    try:
        parser(text)
    except Exception:
        return False
    return True


def bench(files: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="tether-redact-bench-") as tmp:
        root = Path(tmp) / "repo"
        labels = generate(root, files, seed)
        originals = {
            p: p.read_bytes() for p in sorted((root / "configs").rglob("*")) if p.is_file()
        }
        size = sum(len(b) for b in originals.values())

        started = time.perf_counter()
        for path, data in originals.items():
            redact(data.decode("utf-8"), str(path.relative_to(root)))
        pure = time.perf_counter() - started

        store_file = Path(tmp) / "store" / "secrets.env"
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = run([root / "configs"], check=False, secrets_file=store_file, environ={})
        command = time.perf_counter() - started
        assert code == 0, code
        store = load_store(store_file, {})

        outputs = {p: p.read_text(encoding="utf-8") for p in originals}
        by_path: dict[str, list[str]] = {}
        for secret in labels.secrets:
            by_path.setdefault(str(secret["path"]), []).append(str(secret["value"]))
        left = Counter(
            str(s["kind"])
            for s in labels.secrets
            if str(s["value"]) in outputs[root / str(s["path"])]
        )
        changed = Counter(
            str(d["kind"])
            for d in labels.decoys
            if str(d["text"]) not in outputs[root / str(d["path"])]
        )
        extra = 0
        placeholders = 0
        for path, text in outputs.items():
            planted = by_path.get(str(path.relative_to(root)), [])
            for match in PLACEHOLDER_TEXT.finditer(text):
                placeholders += 1
                value = store.get(match["name"]) or ""
                if not any(value == p or p in value for p in planted):
                    extra += 1
        identical = sum(
            1 for path, data in originals.items()
            if render(outputs[path].encode("utf-8"), store.get).data == data
        )  # fmt: skip
        checked = [(parses(p, d.decode()), parses(p, outputs[p])) for p, d in originals.items()]
        parsed = [(a, b) for a, b in checked if a is not None]
    secrets, decoys = len(labels.secrets), len(labels.decoys)
    return {
        "files": files,
        "bytes": size,
        "planted_secrets": secrets,
        "secrets_left": sum(left.values()),
        "secrets_left_by_kind": dict(left),
        "recall": (secrets - sum(left.values())) / secrets,
        "decoys": decoys,
        "decoys_changed": sum(changed.values()),
        "decoys_changed_by_kind": dict(changed),
        "over_redaction": sum(changed.values()) / decoys,
        "placeholders": placeholders,
        "extra_replacements": extra,
        "round_trip_identical": identical / len(originals),
        "parse_checked": len(parsed),
        "parse_same": sum(1 for a, b in parsed if a == b),
        "originals_parsing": sum(1 for a, _ in parsed if a),
        "command_seconds": round(command, 3),
        "redact_function_seconds": round(pure, 3),
        "files_per_second": round(files / command, 1),
        "mb_per_second_function": round(size / pure / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = bench(args.files, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"files                 {result['files']} ({result['bytes']} bytes)")
    print(f"planted secrets       {result['planted_secrets']}")
    print(f"secrets left          {result['secrets_left']}  {result['secrets_left_by_kind']}")
    print(f"recall                {result['recall']:.2%}")
    print(f"look-alikes changed   {result['decoys_changed']} of {result['decoys']}  "
          f"({result['over_redaction']:.2%})  {result['decoys_changed_by_kind']}")  # fmt: skip
    print(f"extra replacements    {result['extra_replacements']} of {result['placeholders']}")
    print(f"round-trip identical  {result['round_trip_identical']:.2%}")
    print(f"parses iff original   {result['parse_same']} of {result['parse_checked']} "
          f"(YAML/JSON/TOML/INI/XML; {result['originals_parsing']} originals parse)")  # fmt: skip
    print(f"tether redact         {result['command_seconds']} s  "
          f"({result['files_per_second']} files/s)")  # fmt: skip
    print(f"redact() alone        {result['redact_function_seconds']} s  "
          f"({result['mb_per_second_function']} MB/s)")  # fmt: skip


if __name__ == "__main__":
    main()
