"""A model file's content identity: what the duplicates rule compares."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

__all__ = ["content_hash"]

_HASH_CHUNK: Final = 1024 * 1024


def content_hash(path: Path) -> str:
    """``sha256:<hex>`` of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()
