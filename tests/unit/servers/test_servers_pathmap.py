"""Path mapping: local paths become the paths a server opens."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from preform_pipeline.errors import ConfigError
from preform_pipeline.servers.pathmap import PathMapper, server_path_style
from preform_pipeline.settings import PathMapping

SHARE = PathMapping(PurePosixPath("/mnt/share"), "Z:\\")


class TestMappedServers:
    """A server elsewhere sees the pipeline's files through its own drive or share."""

    def test_a_posix_folder_maps_to_a_windows_drive_with_backslashes(self) -> None:
        mapper = PathMapper((SHARE,))
        assert mapper.to_server(PurePosixPath("/mnt/share/jobs/a b.stl")) == "Z:\\jobs\\a b.stl"

    def test_the_mapped_folder_itself_maps_to_the_drive_root(self) -> None:
        assert PathMapper((SHARE,)).to_server(PurePosixPath("/mnt/share")) == "Z:\\"

    def test_a_bare_drive_means_its_root(self) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/data"), "Y:"),))
        assert mapper.to_server(PurePosixPath("/data/x.stl")) == "Y:\\x.stl"

    def test_the_longest_matching_folder_wins_whatever_the_order(self) -> None:
        deep = PathMapping(PurePosixPath("/mnt/share/dental"), "\\\\nas\\dental")
        for mappings in ((SHARE, deep), (deep, SHARE)):
            mapper = PathMapper(mappings)
            assert mapper.to_server(PurePosixPath("/mnt/share/dental/c.stl")) == (
                "\\\\nas\\dental\\c.stl"
            )
            assert mapper.to_server(PurePosixPath("/mnt/share/other/c.stl")) == "Z:\\other\\c.stl"

    def test_a_folder_matches_whole_components_only(self) -> None:
        with pytest.raises(ConfigError, match="not inside any folder mapped"):
            PathMapper((SHARE,)).to_server(PurePosixPath("/mnt/share2/x.stl"))

    def test_dot_dot_is_resolved_before_matching(self) -> None:
        mapper = PathMapper((SHARE,))
        assert mapper.to_server(PurePosixPath("/mnt/share/a/../b.stl")) == "Z:\\b.stl"
        with pytest.raises(ConfigError):
            mapper.to_server(PurePosixPath("/mnt/share/../etc/passwd"))

    def test_a_posix_server_folder_keeps_forward_slashes(self) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/home/me/models"), "/srv/models/"),))
        assert mapper.to_server(PurePosixPath("/home/me/models/x/y.stl")) == "/srv/models/x/y.stl"

    def test_a_windows_client_maps_case_insensitively_to_a_posix_server(self) -> None:
        mapper = PathMapper((PathMapping(PureWindowsPath("D:/Jobs"), "/mnt/jobs"),))
        assert mapper.to_server(PureWindowsPath("d:\\jobs\\A.stl")) == "/mnt/jobs/A.stl"

    def test_an_unmapped_path_names_the_path_the_server_and_the_folders(self) -> None:
        mapper = PathMapper((SHARE,), server="printhost")
        with pytest.raises(ConfigError) as caught:
            mapper.to_server(PurePosixPath("/home/me/x.stl"))
        text = str(caught.value)
        assert "/home/me/x.stl" in text
        assert "printhost" in text
        assert "/mnt/share" in text
        assert "path_map" in text  # the hint says how to fix it


class TestLocalServers:
    """A local server without a map gets absolute local paths unchanged."""

    def test_identity_makes_a_relative_path_absolute(self) -> None:
        mapper = PathMapper()
        assert mapper.identity
        assert mapper.to_server("models/x.stl") == os.path.abspath("models/x.stl")

    def test_identity_keeps_an_absolute_path(self, tmp_path: Path) -> None:
        assert PathMapper().to_server(tmp_path / "x.stl") == str(tmp_path / "x.stl")


class TestPathStyle:
    """The separator follows the server folder's own style."""

    @pytest.mark.parametrize(
        ("folder", "sep"),
        [("Z:\\", "\\"), ("Z:", "\\"), ("\\\\nas\\share", "\\"), ("/srv", "/"), ("/", "/")],
    )
    def test_style(self, folder: str, sep: str) -> None:
        assert server_path_style(folder) == sep


class TestCheckHint:
    """What to check when a server did not find a path it was sent: the mapping that made the
    path its answer names, and nothing when no mapping made it."""

    MAPPER = PathMapper((PathMapping(PurePosixPath("/mnt/share"), "Z:\\"),
                         PathMapping(PurePosixPath("/mnt/share/cases"), "Z:\\cases"),
                         PathMapping(PurePosixPath("/srv/dental"), "\\\\nas\\dental"),
                         PathMapping(PurePosixPath("/srv/unix"), "/data/unix")),
                        "printhost")

    @pytest.mark.parametrize(("said", "local", "remote"), [
        ("$.file: no file at 'Z:\\\\models\\\\a.stl'", "/mnt/share", "Z:\\"),
        ("$.file: no file at 'z:\\cases\\a.stl'", "/mnt/share/cases", "Z:\\cases"),
        ("$.file: no file at '\\\\\\\\NAS\\\\dental\\\\a.stl'", "/srv/dental",
         "\\\\nas\\dental"),
        ("$.file: no file at '/data/unix/a.stl'", "/srv/unix", "/data/unix"),
    ], ids=["drive-repr", "longest-any-case", "share-repr", "posix"])
    def test_it_names_the_mapping_that_made_the_path(
        self, said: str, local: str, remote: str
    ) -> None:
        assert self.MAPPER.check_hint(said) == (
            f"server printhost is sent paths through its path_map: check that it sees "
            f"{local} as {remote}")

    @pytest.mark.parametrize("said", [
        "$.file: the file type is not supported",
        "$.file: no file at 'Y:\\\\a.stl'",
        "$.file: no file at '/data/unixes/a.stl'",
        "$.file: no file at '/srv/unix/a.stl'",
    ], ids=["no-path", "another-drive", "a-longer-folder", "the-local-side"])
    def test_a_path_no_mapping_made_has_none(self, said: str) -> None:
        assert self.MAPPER.check_hint(said) == ""

    def test_a_server_on_this_machine_has_none(self) -> None:
        assert PathMapper().check_hint("$.file: no file at '/mnt/share/a.stl'") == ""

    # s44-mutants: the folder as written in path_map (a trailing separator, the server's root)
    # and POSIX paths' case, which mutation found no test of.
    @pytest.mark.parametrize(("said", "remote"), [
        ("$.file: no file at '/data/INBOX/a.stl'", "/data/INBOX/"),
        ("$.file: no file at 'Y:\\\\INBOX\\\\a.stl'", "Y:\\INBOX\\"),
    ], ids=["posix", "drive"])
    def test_a_folder_written_with_a_trailing_separator_is_found(
        self, said: str, remote: str
    ) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/srv/inbox"), remote),), "printhost")
        assert mapper.check_hint(said) == (
            f"server printhost is sent paths through its path_map: check that it sees "
            f"/srv/inbox as {remote}")

    def test_a_map_to_the_servers_root_names_any_absolute_path_it_quotes(self) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/mnt/box"), "/"),), "printhost")
        assert mapper.check_hint("$.file: no file at '/cases/a.stl'") == (
            "server printhost is sent paths through its path_map: check that it sees "
            "/mnt/box as /")
        assert mapper.check_hint("$.file: the file type is not supported") == ""

    def test_a_posix_folder_in_another_case_is_another_folder(self) -> None:
        mapper = PathMapper((PathMapping(PurePosixPath("/srv/unix"), "/data/Unix"),), "printhost")
        assert mapper.check_hint("$.file: no file at '/data/unix/a.stl'") == ""
