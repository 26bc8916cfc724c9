"""A model file's content identity (store/content.py): what the duplicates rule compares."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


class TestContentHash:
    """The identity is ``sha256:`` and the digest of every byte of the file, however large."""

    @pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 - 7])
    def test_the_identity_is_the_sha256_of_the_whole_file(self, tmp_path: Path, size: int) -> None:
        from preform_pipeline.store.content import content_hash

        data = bytes((i * 7 + i // 1024) % 251 for i in range(size))
        path = tmp_path / "model.stl"
        path.write_bytes(data)
        assert content_hash(path) == "sha256:" + hashlib.sha256(data).hexdigest()

    def test_files_differing_in_their_last_byte_differ(self, tmp_path: Path) -> None:
        from preform_pipeline.store.content import content_hash

        data = b"\x01" * (2 * 1024 * 1024)
        first, second = tmp_path / "a.stl", tmp_path / "b.stl"
        first.write_bytes(data)
        second.write_bytes(data[:-1] + b"\x02")
        assert content_hash(first) != content_hash(second)
