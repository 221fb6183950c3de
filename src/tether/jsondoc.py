"""The shape every `--json` document shares: snake_case keys, `schema_version` first.

Each command's document is published as a JSON Schema in schema/output/<command>.json; a
change that renames or drops a key raises SCHEMA_VERSION there and here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

SCHEMA_VERSION = 1


def json_document(doc: Mapping[str, Any]) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, **doc}, indent=1)
