"""Shortcuts on a request's way: each gives what the long way gives, for every input."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from preform_pipeline.api import PreFormClient
from preform_pipeline.api._http import _TARGET_SAFE, _quoted_target
from preform_pipeline.api._parse import MalformedResponse
from preform_pipeline.api._wire import _MAX_HEADERS, _head, _header_lines, _status_line
from preform_pipeline.api.client import _seg
from preform_pipeline.api.models import ModelInfo, _plain_model
from preform_pipeline.errors import ServerInternalError
from tests.unit.api.api_fakes import ScriptedServer, ok, scene_json

SCENE = "/scene/scene-1/"

#: Characters a request target or an id may hold, the odd ones well represented.
_TEXT = st.text(
    alphabet=st.sampled_from("aZ09_.-~/?&=%:@!$'()*+,; #\"<>[]\\^`{|}\n\tøé漢\x00"), max_size=20
)


class TestQuoting:
    """A target or an id that needs no quoting is sent as quote() would return it."""

    @given(_TEXT)
    def test_a_target_is_what_quote_makes_of_it(self, target: str) -> None:
        assert _quoted_target(target) == quote(target, safe=_TARGET_SAFE)

    @given(_TEXT.filter(bool))
    def test_an_id_is_what_quote_makes_of_it(self, value: str) -> None:
        assert _seg(value) == quote(value, safe="")

    def test_an_id_that_could_change_the_path_is_still_quoted(self) -> None:
        assert _seg("../scene 1") == "..%2Fscene%201"
        assert _quoted_target("/scene/a b/") == "/scene/a%20b/"


def _reader(data: bytes, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data), buffer_size=buffer_size)


def _line_by_line(data: bytes) -> tuple[object, bytes]:
    """What the line-by-line reader makes of ``data``: (status, headers) or the error, and
    what is left to read."""
    reader = _reader(data)
    try:
        while True:
            version, status = _status_line(reader)
            headers = _header_lines(reader)
            if not 100 <= status < 200:
                break
        result: object = (version, status, headers)
    except httpx.RemoteProtocolError as exc:
        result = str(exc)
    return result, reader.read()


def _in_one_piece(data: bytes, buffer_size: int = io.DEFAULT_BUFFER_SIZE) -> tuple[object, bytes]:
    reader = _reader(data, buffer_size)
    try:
        while True:
            version, status, headers, fields = _head(reader)
            # The headers by lower-case name, the last of a repeated one: what the
            # answer's length, encoding and connection are read from.
            assert fields == {name.lower(): value for name, value in headers}
            if not 100 <= status < 200:
                break
        result: object = (version, status, headers)
    except httpx.RemoteProtocolError as exc:
        result = str(exc)
    return result, reader.read()


_HEADS = {
    "plain": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "bare LF": b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
    "one bare LF inside": b"HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\r\n{}",
    "no headers": b"HTTP/1.0 204 No Content\r\n\r\n",
    "continue first": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-A:  b \r\n\r\nbody",
    "spaces and colons": b"HTTP/1.1 200 OK\r\nLocation: http://h:1/a\r\nX-Y :\tz\r\n\r\n",
    "malformed header": b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    "empty header name": b"HTTP/1.1 200 OK\r\n : x\r\n\r\n",
    "not HTTP": b"SPDY/3 200 OK\r\n\r\n",
    "empty status line": b"\r\n\r\n",
    "too many headers": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (_MAX_HEADERS + 1) + b"\r\n",
    "as many as allowed": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * _MAX_HEADERS + b"\r\n",
    "closed in the head": b"HTTP/1.1 200 OK\r\nA: 1\r\n",
    "a name repeated in two cases": b"HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
    "malformed after too many": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (_MAX_HEADERS + 1)
    + b"bad\r\n\r\n",
    "malformed as the one too many": b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * _MAX_HEADERS
    + b"bad\r\n\r\n",
    "a status line with a latin-1 reason": b"HTTP/1.1 200 \xc9t\xe9\r\n\r\n",
    "a latin-1 status line that is not HTTP": b"\xc9T\xc9/1 200\r\n\r\n",
    "a latin-1 header line without a colon": b"HTTP/1.1 200 OK\r\n\xe9t\xe9\r\n\r\n",
    "closed at once": b"",
}


def _same(got: tuple[object, bytes], expected: tuple[object, bytes]) -> None:
    """The same result or error; after a good head, the same body left to read (after an
    error the connection is closed, whatever is left)."""
    assert got[0] == expected[0]
    if not isinstance(expected[0], str):
        assert got[1] == expected[1]


class TestAnswerHead:
    """An answer's head read in one piece gives the line-by-line reading: the same status,
    headers and errors, and the body left where it was."""

    @pytest.mark.parametrize("name", sorted(_HEADS))
    def test_the_head_in_one_piece_reads_as_line_by_line(self, name: str) -> None:
        data = _HEADS[name]
        _same(_in_one_piece(data), _line_by_line(data))

    @pytest.mark.parametrize("name", sorted(_HEADS))
    def test_a_head_split_across_reads_reads_the_same(self, name: str) -> None:
        data = _HEADS[name]
        _same(_in_one_piece(data, buffer_size=8), _line_by_line(data))

    def test_the_headers_come_stripped_in_their_order(self) -> None:
        result, rest = _in_one_piece(_HEADS["continue first"])
        assert result == ("HTTP/1.1", 201, [("X-A", "b")])
        assert rest == b"body"


class TestSceneModelIds:
    """The import check reads a scene's model ids with getScene's request and its errors."""

    def test_the_ids_come_in_the_scenes_order_from_one_get(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, ok(scene_json(model_ids=("m-2", "m-0", "m-1"))))

        assert client.get_scene_model_ids("scene-1") == ("m-2", "m-0", "m-1")
        assert [(s.method, s.path) for s in server.calls()] == [("GET", SCENE)]

    def test_a_scene_without_models_has_no_ids(
        self, server: ScriptedServer, client: PreFormClient
    ) -> None:
        server.on("GET", SCENE, ok({"id": "scene-1"}))

        assert client.get_scene_model_ids("scene-1") == ()

    @pytest.mark.parametrize(
        "answer",
        [
            [],
            {"id": "scene-1", "models": {"m-1": {}}},
            {"id": "scene-1", "models": ["m-1"]},
            {"id": "scene-1", "models": [{"name": "no id"}]},
            {"id": "scene-1", "models": [{"id": 7}]},
        ],
        ids=["not an object", "models not a list", "a model not an object", "no id",
             "an id not a string"],
    )
    def test_a_malformed_scene_fails_as_get_scene_fails(
        self, server: ScriptedServer, client: PreFormClient, answer: object
    ) -> None:
        server.on("GET", SCENE, ok(answer), ok(answer))

        with pytest.raises(ServerInternalError) as ids:
            client.get_scene_model_ids("scene-1")
        with pytest.raises(ServerInternalError) as scene:
            client.get_scene("scene-1")

        assert str(ids.value) == str(scene.value)
        assert ids.value.hint == scene.value.hint


def _general(data: dict[str, Any]) -> object:
    """What the general readers make of a model: the ModelInfo, or the error's text."""
    try:
        return ModelInfo._read(data)
    except MalformedResponse as exc:
        return str(exc)


def _read(data: dict[str, Any]) -> object:
    try:
        return ModelInfo.from_json(data)
    except MalformedResponse as exc:
        return str(exc)


_POINT = st.fixed_dictionaries({"x": st.floats(allow_nan=False), "y": st.floats(allow_nan=False),
                                 "z": st.floats(allow_nan=False)})
_ODD = st.one_of(st.none(), st.integers(-3, 3), st.booleans(), st.text(max_size=3),
                 st.floats(allow_nan=False), st.just([]), st.just({}))
_MODEL = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=5), _ODD)},
    optional={
        "name": st.one_of(st.text(max_size=5), _ODD),
        "units": st.sampled_from(["MILLIMETERS", "INCHES"]) | _ODD,
        "original_file": st.text(max_size=5) | _ODD,
        "raw_mesh_hash": st.text(max_size=5) | _ODD,
        "canonical_model_hash": st.text(max_size=5) | _ODD,
        "lock": st.sampled_from(["NONE", "FULL"]) | _ODD,
        "visible": st.booleans() | _ODD,
        "has_supports": st.booleans() | _ODD,
        "in_bounds": st.booleans() | _ODD,
        "scale": st.floats(allow_nan=False) | _ODD,
        "position": _POINT | _ODD,
        "orientation": _POINT | _ODD,
        "bounding_box": st.fixed_dictionaries(
            {}, optional={"min_corner": _POINT | _ODD, "max_corner": _POINT | _ODD}) | _ODD,
    },
)


class TestPlainModels:
    """A model read in one pass is the ModelInfo the general readers make, or the same error."""

    @given(_MODEL)
    def test_any_model_reads_as_the_general_readers_read_it(
        self, data: dict[str, Any]
    ) -> None:
        got, expected = _read(data), _general(data)
        assert got == expected
        if isinstance(got, ModelInfo):
            assert isinstance(expected, ModelInfo)
            assert got.raw is data and expected.raw is data

    def test_a_servers_usual_model_takes_the_one_pass(self) -> None:
        point = {"x": 1.0, "y": 2.0, "z": 3.0}
        data = {"id": "m-1", "name": "upper", "units": "MILLIMETERS", "scale": 1.0,
                "position": point, "orientation": point, "visible": True,
                "bounding_box": {"min_corner": point, "max_corner": point}}
        assert _plain_model(data) == _general(data)


_P = {"x": 1.5, "y": -2.0, "z": 0.25}
_USUAL = {
    "id": "m-1", "name": "C-1 upper", "units": "MILLIMETERS", "original_file": "/a/b.stl",
    "raw_mesh_hash": "h1", "canonical_model_hash": "h2", "lock": "NONE", "visible": True,
    "has_supports": False, "in_bounds": True, "scale": 1.0, "position": _P,
    "orientation": {"x": 0.0, "y": 90.0, "z": 45.0},
    "bounding_box": {"min_corner": _P, "max_corner": {"x": 9.0, "y": 8.0, "z": 7.0}},
}
_MISSING = object()
_ODD_VALUES = [_MISSING, None, 0, 2, True, False, "t", 1.5, [], {}, {"x": 1, "y": 2.0, "z": 3.0}]


def _label(odd: object) -> str:
    """A test id for an odd value, the same in every worker process."""
    return "missing" if odd is _MISSING else f"{type(odd).__name__}:{odd!r}"[:30]


def _variants() -> list[tuple[str, dict[str, Any]]]:
    """The usual model with one field missing or of another type (the box's corners too)."""
    found = []
    for key in _USUAL:
        for odd in _ODD_VALUES:
            data = dict(_USUAL)
            if odd is _MISSING:
                del data[key]
            else:
                data[key] = odd
            found.append((f"{key}={_label(odd)}", data))
    for corner in ("min_corner", "max_corner"):
        for odd in _ODD_VALUES:
            box: dict[str, Any] = dict(_USUAL["bounding_box"])  # type: ignore[arg-type]
            if odd is _MISSING:
                del box[corner]
            else:
                box[corner] = odd
            found.append((f"{corner}={_label(odd)}", {**_USUAL, "bounding_box": box}))
    return found


class TestOneOddField:
    """A usual model with any one field missing or odd reads as the general readers read it."""

    @pytest.mark.parametrize(("name", "data"), _variants(), ids=[n for n, _ in _variants()])
    def test_it_reads_as_the_general_readers_read_it(
        self, name: str, data: dict[str, Any]
    ) -> None:
        got, expected = _read(data), _general(data)
        assert got == expected, name
        if isinstance(expected, ModelInfo):
            # An integer scale is read as a float by both (equal either way, not the same).
            assert isinstance(got, ModelInfo) and type(got.scale) is type(expected.scale)
