"""FolderResolver gives the path Path.resolve() gives, for files, links and odd names alike."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from preform_pipeline.api.paths import FolderResolver

posix_only = pytest.mark.skipif(os.name != "posix", reason="symbolic links without privileges")


@pytest.fixture
def linked(tmp_path: Path) -> Path:
    """``tmp/link`` -> ``tmp/real``, which holds ``a.stl`` and ``alias.stl`` -> ``a.stl``."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.stl").write_bytes(b"solid a")
    (real / "b.stl").write_bytes(b"solid b")
    (tmp_path / "other.stl").write_bytes(b"solid o")
    (real / "alias.stl").symlink_to(tmp_path / "other.stl")
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    return link


@posix_only
class TestSameAsResolve:
    """Every kind of path comes back exactly as Path.resolve() would give it."""

    def test_files_of_a_linked_folder_resolve_to_the_real_folder(self, linked: Path) -> None:
        resolver = FolderResolver()

        got = [resolver.resolve(linked / name) for name in ("a.stl", "b.stl")]

        assert got == [(linked / "a.stl").resolve(), (linked / "b.stl").resolve()]
        assert got[0].parent.name == "real"

    def test_a_file_that_is_a_link_resolves_to_its_target(self, linked: Path) -> None:
        resolver = FolderResolver()
        resolver.resolve(linked / "a.stl")

        assert resolver.resolve(linked / "alias.stl") == (linked / "alias.stl").resolve()
        assert resolver.resolve(linked / "alias.stl").name == "other.stl"

    def test_a_missing_file_and_a_dot_dot_name_resolve_as_resolve_does(
        self, linked: Path
    ) -> None:
        resolver = FolderResolver()

        for path in (linked / "missing.stl", linked / "a.stl" / "..", linked / ".."):
            assert resolver.resolve(path) == path.resolve()

    def test_a_relative_path_resolves_against_the_current_folder(
        self, linked: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(linked)

        assert FolderResolver().resolve(Path("a.stl")) == Path("a.stl").resolve()
        assert FolderResolver().resolve(Path("a.stl")).is_absolute()
