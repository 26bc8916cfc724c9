"""Shorter ways through an answer and a model's path: each gives what the long way gives."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from preform_pipeline.api import paths
from preform_pipeline.api._http import _decode
from preform_pipeline.api._wire import _head, _length, _persistent
from preform_pipeline.api.paths import FolderResolver, same_machine_path, to_server_path
from preform_pipeline.servers.pathmap import PathMapper

posix_only = pytest.mark.skipif(os.name != "posix", reason="the short ways are POSIX's")

#: JSON texts, odd characters and lone surrogates' escapes among them.
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _loads(content: bytes) -> object:
    """What ``json.loads`` makes of ``content``: the value, or the error's type."""
    try:
        return ("value", json.loads(content))
    except ValueError as exc:
        return ("error", type(exc))


def _short(content: bytes) -> object:
    try:
        return ("value", _decode(content))
    except ValueError as exc:
        return ("error", type(exc))


class TestJsonBodies:
    """An answer's body decodes as ``json.loads`` decodes it, whatever its bytes."""

    @given(_JSON_VALUES, st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le",
                                          "utf-8-sig", "utf-16"]))
    def test_a_json_text_in_any_encoding_reads_the_same(self, value: Any, encoding: str) -> None:
        content = json.dumps(value, ensure_ascii=False).encode(encoding, "surrogatepass")

        assert _short(content) == _loads(content)

    @given(st.binary(max_size=12))
    def test_any_bytes_read_the_same_or_fail_the_same(self, content: bytes) -> None:
        if not content.strip():
            assert _decode(content) is None
            return
        assert _short(content) == _loads(content)

    @pytest.mark.parametrize(
        "content",
        [b'{"a":1}', b"[1,2]", b"{", b"[", b'{"a":1} x', "[\"\u00e9\"]".encode(),
         b'["\\ud800"]', b"[\xff]", "[1]".encode("utf-16-le"), "{}".encode("utf-32-le"),
         b"{\x00}", b'{"a":\n1}\n', b'["\xed\xa0\x80"]'],
    )
    def test_objects_and_arrays_read_the_same(self, content: bytes) -> None:
        assert _short(content) == _loads(content)


class TestHeaderValues:
    """A plain length and a missing Connection header read as the general checks read them."""

    @given(st.text(alphabet="0123456789 ,+-x\u0663", max_size=8))
    def test_a_length_is_what_the_general_check_makes_of_it(self, value: str) -> None:
        values = {v.strip() for v in value.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            with pytest.raises(Exception, match="bad Content-Length"):
                _length(value)
        else:
            assert _length(value) == int(values.pop())

    @pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
    def test_no_connection_header_keeps_only_an_http_1_1_connection(self, version: str) -> None:
        assert _persistent(version, "") is (version == "HTTP/1.1")
        assert _persistent(version, "keep-alive") is True
        assert _persistent(version, "close") is False


class TestStatusLineErrors:
    """A status line that is not HTTP/1.x is quoted in the error as its bytes were read."""

    @pytest.mark.parametrize(
        ("data", "quoted"),
        [(b"SPDY/3 200 OK\r\n\r\n", b"SPDY/3 200 OK\r\n"),
         (b"\xc9T\xc9/1 200\r\n\r\n", b"\xc9T\xc9/1 200\r\n"),
         (b"HTTP/1.1 OK\nA: 1\n\n", b"HTTP/1.1 OK\n")],
    )
    def test_the_error_quotes_the_bytes(self, data: bytes, quoted: bytes) -> None:
        reader = io.BufferedReader(io.BytesIO(data))

        with pytest.raises(httpx.RemoteProtocolError) as caught:
            _head(reader)

        assert str(caught.value) == f"not an HTTP/1.x status line: {quoted!r}"


#: Absolute POSIX path texts with the odd parts a path can hold.
_POSIX_PATHS = st.lists(
    st.sampled_from(["a", "b c", ".", "..", "", "é", "x.stl", "...", " "]), max_size=6
).map(lambda parts: "/" + "/".join(parts)) | st.sampled_from(["/", "//", "///", "//a/b", "/a//b/"])


@posix_only
class TestSameMachinePaths:
    """A server on this machine is sent the text the identity path map sends."""

    @given(_POSIX_PATHS)
    def test_an_absolute_path_is_sent_as_the_identity_map_sends_it(self, text: str) -> None:
        assert same_machine_path(Path(text)) == PathMapper().to_server(Path(text))

    def test_a_relative_path_is_made_absolute_against_the_current_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)

        assert same_machine_path(Path("a/../b.stl")) == PathMapper().to_server(Path("b.stl"))
        assert same_machine_path(Path("b.stl")) == str(tmp_path.resolve() / "b.stl")


@posix_only
class TestFolderResolverOddPlaces:
    """A file at the root, under ``//`` or in a folder reached by ``..`` resolves as
    ``Path.resolve()`` resolves it."""

    @pytest.mark.parametrize(
        "text", ["/", "/etc", "//etc/hosts", "//etc", "/etc/../etc/hosts", "/etc/.", "/etc/.."]
    )
    def test_it_is_what_resolve_gives(self, text: str) -> None:
        assert FolderResolver().resolve(Path(text)) == Path(text).resolve()

    def test_files_of_one_folder_share_its_resolution(self, tmp_path: Path) -> None:
        real = tmp_path / "real"
        real.mkdir()
        link = tmp_path / "link"
        link.symlink_to(real, target_is_directory=True)
        resolver = FolderResolver()

        first = resolver.resolve(link / "a.stl")
        # The folder's resolution is kept for the task: the next file joins it.
        link.unlink()
        link.symlink_to(tmp_path, target_is_directory=True)

        assert first == real.resolve() / "a.stl"
        assert resolver.resolve(link / "b.stl") == real.resolve() / "b.stl"


@posix_only
class TestSameMachinePathTexts:
    """A path given as text to a server on this machine is sent as the same path given as a
    ``Path`` is sent (the long way: a Path built, checked, then mapped)."""

    @given(_POSIX_PATHS)
    def test_an_absolute_text_is_sent_as_its_path_would_be(self, text: str) -> None:
        assert to_server_path(text, same_machine_path) == to_server_path(
            Path(text), same_machine_path)

    def test_a_relative_text_is_refused_as_a_relative_path_is(self) -> None:
        with pytest.raises(ValueError, match=r"'a/b\.stl' is a relative path"):
            to_server_path("a/b.stl", same_machine_path)

    def test_no_path_is_built_for_an_absolute_text(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # The point of the short way (issue 11, runner CPU per model): pinned, because its
        # answer is the long way's by design and no answer can tell the two apart.
        built: list[object] = []

        def counted(*args: Any) -> Path:
            built.append(args)
            return Path(*args)

        monkeypatch.setattr(paths, "Path", counted)

        assert to_server_path("/a/./b.stl", same_machine_path) == "/a/b.stl"
        assert built == []

    def test_another_map_is_given_the_path_as_written(self) -> None:
        # Only the same machine's map takes the short way: another one is handed the Path,
        # its ".." still in it, as before.
        def mapped(path: Path) -> str:
            return "/srv" + str(path)

        assert to_server_path("/a/../b.stl", mapped) == "/srv/a/../b.stl"


@posix_only
class TestFolderResolverTexts:
    """``resolve_text`` gives the text of the path ``resolve`` gives, links and odd places
    included."""

    @pytest.mark.parametrize(
        "text", ["/", "/etc", "//etc/hosts", "//etc", "/etc/../etc/hosts", "/etc/.", "/etc/..",
                 "/etc/../hosts", "/etc/./hosts", "a.stl"]
    )
    def test_it_is_the_text_of_what_resolve_gives(self, text: str) -> None:
        assert FolderResolver().resolve_text(Path(text)) == str(Path(text).resolve())

    @given(_POSIX_PATHS)
    def test_any_absolute_path_is_the_text_of_its_resolution(self, text: str) -> None:
        assert FolderResolver().resolve_text(Path(text)) == str(Path(text).resolve())

    def test_a_file_in_a_folder_at_the_root_is_not_given_a_second_slash(self) -> None:
        resolver = FolderResolver()

        # The folder "/etc/.." resolves to the root: its files are "/name", not "//name".
        assert resolver.resolve_text(Path("/etc/../hosts")) == "/hosts"
        assert resolver.resolve_text(Path("/etc/../passwd")) == "/passwd"

    def test_links_are_followed(self, tmp_path: Path) -> None:
        real = tmp_path / "real"
        real.mkdir()
        (real / "a.stl").write_bytes(b"solid a\nendsolid a\n")
        folder_link = tmp_path / "folder"
        folder_link.symlink_to(real, target_is_directory=True)
        file_link = tmp_path / "b.stl"
        file_link.symlink_to(real / "a.stl")
        resolver = FolderResolver()

        assert resolver.resolve_text(folder_link / "a.stl") == str(real.resolve() / "a.stl")
        assert resolver.resolve_text(file_link) == str(real.resolve() / "a.stl")

    def test_a_second_file_of_a_folder_builds_no_path(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        resolver = FolderResolver()
        resolver.resolve_text(tmp_path / "a.stl")
        built: list[object] = []

        def counted(*args: Any) -> Path:
            built.append(args)
            return Path(*args)

        monkeypatch.setattr(paths, "Path", counted)

        assert resolver.resolve_text(tmp_path / "b.stl") == str(tmp_path.resolve() / "b.stl")
        assert built == []

    def test_files_of_one_folder_share_its_resolution(self, tmp_path: Path) -> None:
        real = tmp_path / "real"
        real.mkdir()
        link = tmp_path / "link"
        link.symlink_to(real, target_is_directory=True)
        resolver = FolderResolver()

        first = resolver.resolve_text(link / "a.stl")
        # The folder's resolution is kept for the task: the next file joins it.
        link.unlink()
        link.symlink_to(tmp_path, target_is_directory=True)

        assert first == str(real.resolve() / "a.stl")
        assert resolver.resolve_text(link / "b.stl") == str(real.resolve() / "b.stl")
