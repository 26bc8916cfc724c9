"""A build the server refused for a path says which path map to check only when a mapping
made the path the server names (review of session 44: any FILE_NOT_FOUND or INVALID_PATH of a
mapped server was told to check every mapping, also when the server's words were about
something the map never touched)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from preform_pipeline.errors import RequestInfo, RequestRejectedError
from preform_pipeline.executor.runner import _BuildWorker
from preform_pipeline.servers.pathmap import PathMapper
from preform_pipeline.settings import PathMapping

MAPPER = PathMapper((PathMapping(PurePosixPath("/mnt/share"), "Z:\\models"),
                     PathMapping(PurePosixPath("/srv/other"), "Y:\\")), "printhost")


def _refused(code: str, said: str) -> RequestRejectedError:
    return RequestRejectedError(said, request=RequestInfo("POST", "http://h/x", "importModel"),
                                code=code, server_message=said)


class TestThePathMapHint:
    """The map to check is named for the path the server names, and only then."""

    def test_the_mapping_that_made_the_path_is_named(self) -> None:
        reason = _BuildWorker._reason(
            _refused("FILE_NOT_FOUND", "$.file: no file at 'Z:\\\\models\\\\a.stl'"), MAPPER)
        assert reason == (
            "importModel refused: FILE_NOT_FOUND: $.file: no file at 'Z:\\\\models\\\\a.stl' "
            "(server printhost is sent paths through its path_map: check that it sees "
            "/mnt/share as Z:\\models)")

    @pytest.mark.parametrize("said", [
        "$.file: the file is not a mesh this server reads",
        "$.file: no file at 'C:\\\\ProgramData\\\\Formlabs\\\\materials.json'",
    ], ids=["no-path", "a-path-no-mapping-made"])
    def test_a_path_no_mapping_made_names_no_map(self, said: str) -> None:
        reason = _BuildWorker._reason(_refused("INVALID_PATH", said), MAPPER)
        assert reason == f"importModel refused: INVALID_PATH: {said}"
        assert "path_map" not in reason
